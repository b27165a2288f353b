//go:build linux

package tcpload

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// burner is the self-test knob Config.BurnPerKB: it owes perKB of CPU per 1024 bytes moved and
// pays the debt by spinning on the loop's thread, measured with the thread's CPU clock (not wall
// time: a thread preempted while spinning would otherwise burn less than asked).
type burner struct {
	perKB time.Duration
	debt  int64 // ns of thread CPU still owed (negative: paid ahead)
}

// burnSlice is the smallest debt worth a spin (each spin reads the thread clock a few times).
const burnSlice = 20 * time.Microsecond

// burnSink keeps the spin loop from being optimised away.
var burnSink uint64

// moved records n bytes read or written and spins when the debt is worth it.
func (b *burner) moved(n int) {
	if b.perKB <= 0 {
		return
	}
	b.debt += int64(n) * int64(b.perKB) / 1024
	if b.debt < int64(burnSlice) {
		return
	}
	start := threadCPU()
	if start < 0 {
		b.debt = 0 // no thread clock: nothing can be measured, burn nothing
		return
	}
	x := burnSink
	for {
		for i := 0; i < 2000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
		if used := threadCPU() - start; used >= b.debt {
			b.debt -= used
			break
		}
	}
	burnSink = x
}

// threadCPU is the calling thread's CPU time in ns (-1 when the clock cannot be read). It goes
// through RawSyscall like the loop's other calls (see poll).
func threadCPU() int64 {
	var ts unix.Timespec
	if _, _, errno := unix.RawSyscall(unix.SYS_CLOCK_GETTIME, unix.CLOCK_THREAD_CPUTIME_ID, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return -1
	}
	return ts.Nano()
}
