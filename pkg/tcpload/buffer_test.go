//go:build linux

package tcpload

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// anonKB returns the Anonymous: kB of the mapping of /proc/self/smaps that holds b: how much of
// it has memory of its own (pages that read as the kernel's zero page do not count).
func anonKB(t *testing.T, b []byte) int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	require.NoError(t, err)
	defer f.Close()
	addr := uint64(uintptr(unsafe.Pointer(&b[0])))
	sc := bufio.NewScanner(f)
	found := false
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		// a mapping's first line starts with its range, "start-end"; the lines after it are
		// "Name: value"
		if lo, hi, ok := strings.Cut(fields[0], "-"); ok {
			l, err1 := strconv.ParseUint(lo, 16, 64)
			h, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 == nil && err2 == nil {
				found = l <= addr && addr < h
				continue
			}
		}
		if found && strings.HasPrefix(line, "Anonymous:") {
			kb, err := strconv.Atoi(fields[1])
			require.NoError(t, err)
			return kb
		}
	}
	require.NoError(t, sc.Err())
	t.Fatalf("no mapping holds %#x in /proc/self/smaps", addr)
	return 0
}

func TestBufferSendsFromTheZeroPage(t *testing.T) {
	const n = 102400
	b, err := newBuffer(n)
	require.NoError(t, err)
	defer freeBuffer(b)
	require.Len(t, b, n)

	// the kernel may have merged the mapping with a neighbour of the Go heap; a flag the
	// neighbours lack (MADV_DONTFORK, which touches no page) gives b a mapping of its own
	require.NoError(t, unix.Madvise(b, unix.MADV_DONTFORK))
	require.Zero(t, anonKB(t, b), "a new buffer has no page of its own")
	// a sender copies from it: every page reads as the kernel's zero page, none gets memory
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	require.NoError(t, unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 4*n))
	sent, err := unix.Write(fds[0], b)
	require.NoError(t, err)
	require.Positive(t, sent)
	for _, x := range b {
		if x != 0 {
			t.Fatalf("the buffer reads %d, want zeros", x)
		}
	}
	assert.Zero(t, anonKB(t, b), "sending from it and reading it give it no page of its own")

	// a receiver writes into it: the pages its reads fill get memory of their own
	got, err := unix.Read(fds[1], b)
	require.NoError(t, err)
	require.Positive(t, got)
	assert.GreaterOrEqual(t, anonKB(t, b), got/4096*4, "%d bytes read into it", got)

	freeBuffer(nil) // nothing to do
}
