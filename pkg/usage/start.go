package usage

import "fmt"

// ProcStart returns when live process pid started, in clock ticks after boot (field 22 of
// /proc/PID/stat; 0 means the calling process): with the pid it names one process across pid
// reuse. A process that is gone, a zombie or a dead task is an error.
func (f *FS) ProcStart(pid int) (uint64, error) {
	p, err := f.proc(pid)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", f.procPath(pid, "stat"), err)
	}
	st, err := safely(p.Stat)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", f.procPath(pid, "stat"), err)
	}
	if st.State == "Z" || st.State == "X" {
		return 0, fmt.Errorf("process %d has exited (state %s)", pid, st.State)
	}
	return st.Starttime, nil
}

// ProcStart is FS.ProcStart on /proc.
func ProcStart(pid int) (uint64, error) {
	f, err := Default()
	if err != nil {
		return 0, err
	}
	return f.ProcStart(pid)
}
