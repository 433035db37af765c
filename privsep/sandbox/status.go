package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"syscall"

	"github.com/dyad-project/dyad/internal/procstatus"
)

// Status is what the kernel reports, in /proc/PID/status, of the
// credentials and confinement of a process or thread.
type Status = procstatus.Status

// Seccomp modes as /proc/PID/status reports them.
const (
	SeccompDisabled = procstatus.SeccompDisabled
	SeccompStrict   = procstatus.SeccompStrict
	SeccompFilter   = procstatus.SeccompFilter
)

// ReadStatus reads /proc/PID/status: for the whole process, that is for
// its main thread.
func ReadStatus(pid int) (Status, error) {
	s, err := procstatus.Read(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Status{}, fmt.Errorf("sandbox: %w", err)
	}
	return s, nil
}

// ReadThreadStatus reads /proc/PID/task/TID/status, the status of one thread.
func ReadThreadStatus(pid, tid int) (Status, error) {
	s, err := procstatus.Read(fmt.Sprintf("/proc/%d/task/%d/status", pid, tid))
	if err != nil {
		return Status{}, fmt.Errorf("sandbox: %w", err)
	}
	return s, nil
}

// Threads lists the thread IDs of process pid, in increasing order.
func Threads(pid int) ([]int, error) {
	tids, err := threads(pid)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	return tids, nil
}

func threads(pid int) ([]int, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list threads: %w", err)
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			return nil, fmt.Errorf("%s: unexpected entry %q", dir, e.Name())
		}
		tids = append(tids, tid)
	}
	sort.Ints(tids)
	return tids, nil
}

// eachThread calls check with the status of every thread of process pid.
// Threads that exit while it runs are skipped: they no longer matter.
func eachThread(pid int, check func(tid int, s Status) error) error {
	tids, err := threads(pid)
	if err != nil {
		return err
	}
	for _, tid := range tids {
		s, err := procstatus.Read(fmt.Sprintf("/proc/%d/task/%d/status", pid, tid))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			continue // the thread exited
		}
		if err != nil {
			return err
		}
		if err := check(tid, s); err != nil {
			return err
		}
	}
	return nil
}
