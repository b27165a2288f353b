//go:build linux

package tcpload

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// newBuffer returns the engine's read/write buffer of n bytes: an anonymous private mapping that
// tcpload itself never writes, as the seed's server sends from a static buffer it never writes.
//
// Until something writes into it, every page of such a mapping reads as the kernel's one shared
// zero page, so a sender copies each 4 KB of its 100 kB writes from the same page, which stays
// in the cache: the seed's C server does exactly that. A buffer filled with a pattern is 25
// distinct pages; it cost tcpload's server about 19-21 µs per 102400-byte write against 16-18 µs
// with the zero page and the C server's 17.6 µs (perf stat, 2026-12-06, README). A receiver's
// reads write into its buffer, which then gets pages of its own, as the seed's client's does.
func newBuffer(n int) ([]byte, error) {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("map a %d-byte buffer: %w", n, err)
	}
	return b, nil
}

// freeBuffer unmaps a buffer from newBuffer (nil: nothing to do). b must be the slice newBuffer
// returned, never a re-slice of it (the engine only slices it for the length of one call): then
// munmap cannot fail, and its error is not looked at.
func freeBuffer(b []byte) {
	if b != nil {
		_ = unix.Munmap(b)
	}
}
