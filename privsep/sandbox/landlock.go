package sandbox

// #include "allthreads.h"
import "C"

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrLandlockUnsupported means the kernel has no Landlock (before Linux
// 5.13, or not enabled at boot with lsm=).
var ErrLandlockUnsupported = errors.New("the kernel does not support landlock")

// Landlock is the filesystem a process may still reach once confined:
// nothing but the paths listed, each with everything beneath it.
type Landlock struct {
	ReadOnly  []string // may be read (files) and listed (directories)
	ReadWrite []string // may also be written, created in, removed from, truncated, renamed within
}

// LandlockABI returns the Landlock ABI version of the running kernel, or an
// error wrapping ErrLandlockUnsupported.
func LandlockABI() (int, error) {
	v, err := landlockABI()
	if err != nil {
		return 0, fmt.Errorf("sandbox: %w", err)
	}
	return v, nil
}

func landlockABI() (int, error) {
	v, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if e != 0 {
		return 0, fmt.Errorf("%w: landlock_create_ruleset: %v", ErrLandlockUnsupported, e)
	}
	return int(v), nil
}

// Access rights by the Landlock ABI version that introduced them.
const (
	fsRightsV1 = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE |
		unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR |
		unix.LANDLOCK_ACCESS_FS_REMOVE_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_FILE |
		unix.LANDLOCK_ACCESS_FS_MAKE_CHAR | unix.LANDLOCK_ACCESS_FS_MAKE_DIR |
		unix.LANDLOCK_ACCESS_FS_MAKE_REG | unix.LANDLOCK_ACCESS_FS_MAKE_SOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_SYM
	fsRightsV2 = fsRightsV1 | unix.LANDLOCK_ACCESS_FS_REFER
	fsRightsV3 = fsRightsV2 | unix.LANDLOCK_ACCESS_FS_TRUNCATE
	fsRightsV5 = fsRightsV3 | unix.LANDLOCK_ACCESS_FS_IOCTL_DEV

	// rights that apply to a file, as opposed to a directory
	fsFileRights = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE |
		unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_TRUNCATE |
		unix.LANDLOCK_ACCESS_FS_IOCTL_DEV

	fsReadOnly  = unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR
	fsReadWrite = fsReadOnly | unix.LANDLOCK_ACCESS_FS_WRITE_FILE |
		unix.LANDLOCK_ACCESS_FS_REMOVE_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_FILE |
		unix.LANDLOCK_ACCESS_FS_MAKE_DIR | unix.LANDLOCK_ACCESS_FS_MAKE_REG |
		unix.LANDLOCK_ACCESS_FS_MAKE_SOCK | unix.LANDLOCK_ACCESS_FS_REFER |
		unix.LANDLOCK_ACCESS_FS_TRUNCATE
)

// handledFS returns every filesystem right the kernel of ABI version abi
// can deny. All of them are handled, so all of them are denied except
// where a rule allows them.
func handledFS(abi int) uint64 {
	switch {
	case abi >= 5:
		return fsRightsV5
	case abi >= 3:
		return fsRightsV3
	case abi == 2:
		return fsRightsV2
	}
	return fsRightsV1
}

// applyLandlock restricts every thread of the process to l.
func applyLandlock(l *Landlock) error {
	abi, err := landlockABI()
	if err != nil {
		return err
	}
	handled := handledFS(abi)
	attr := unix.LandlockRulesetAttr{Handled_access_fs: handled}
	// The fields after Handled_access_fs are zero, which older kernels
	// accept from a larger structure.
	fd, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr), 0)
	if e != 0 {
		return fmt.Errorf("landlock: create ruleset: %w", e)
	}
	ruleset := int(fd)
	defer unix.Close(ruleset)
	for _, p := range l.ReadOnly {
		if err := addPathRule(ruleset, p, fsReadOnly&handled); err != nil {
			return err
		}
	}
	for _, p := range l.ReadWrite {
		if err := addPathRule(ruleset, p, fsReadWrite&handled); err != nil {
			return err
		}
	}
	if abi >= 8 {
		// The kernel restricts every thread itself, and all of them
		// already have no_new_privs (from the seccomp filter).
		_, _, e := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(ruleset), unix.LANDLOCK_RESTRICT_SELF_TSYNC, 0)
		if e != 0 {
			return fmt.Errorf("landlock: restrict all threads (TSYNC): %w", e)
		}
		return nil
	}
	return restrictAllThreads(ruleset)
}

// addPathRule allows access beneath path (or on path, if it is a file).
func addPathRule(ruleset int, path string, access uint64) error {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("landlock: open %s: %w", path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("landlock: stat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		access &= fsFileRights
	}
	attr := unix.LandlockPathBeneathAttr{Allowed_access: access, Parent_fd: int32(fd)}
	_, _, e := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(ruleset), unix.LANDLOCK_RULE_PATH_BENEATH,
		uintptr(unsafe.Pointer(&attr)), 0, 0, 0)
	if e != 0 {
		return fmt.Errorf("landlock: allow %s: %w", path, e)
	}
	return nil
}

// restrictAllThreads enforces ruleset on every thread, for kernels whose
// landlock_restrict_self restricts the calling thread only. Each thread is
// made to call it from a signal handler (see allthreads.c). A thread
// created meanwhile by a thread already restricted inherits the
// restriction; one created by a thread not yet restricted shows up in the
// next listing of /proc/self/task, so the listing is repeated until it
// holds no thread left to restrict.
func restrictAllThreads(ruleset int) error {
	if e := C.dyad_ll_begin(C.int(ruleset), 0); e != 0 {
		return fmt.Errorf("landlock: install signal handler: %w", unix.Errno(e))
	}
	err := signalEachThread("landlock")
	if e := C.dyad_round_end(); e != 0 && err == nil {
		err = fmt.Errorf("landlock: restore signal handler: %w", unix.Errno(e))
	}
	return err
}

const (
	maxThreadListings = 100
	threadTimeout     = 2 * time.Second
)

func signalEachThread(what string) error {
	pid := os.Getpid()
	// The listing is read again and again through one descriptor opened
	// now: once the calling thread is restricted, it can no longer open
	// /proc.
	dir := fmt.Sprintf("/proc/%d/task", pid)
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: open %s: %w", what, dir, err)
	}
	tasks := os.NewFile(uintptr(fd), dir)
	defer tasks.Close()
	done := map[int]bool{}
	for range maxThreadListings {
		if _, err := tasks.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("%s: rewind %s: %w", what, dir, err)
		}
		names, err := tasks.Readdirnames(-1)
		if err != nil {
			return fmt.Errorf("%s: list %s: %w", what, dir, err)
		}
		left := 0
		for _, name := range names {
			tid, err := strconv.Atoi(name)
			if err != nil {
				return fmt.Errorf("%s: %s: unexpected entry %q", what, dir, name)
			}
			if done[tid] {
				continue
			}
			left++
			if err := restrictThreadBySignal(what, pid, tid); err != nil {
				return err
			}
			done[tid] = true
		}
		if left == 0 {
			return nil
		}
	}
	return fmt.Errorf("%s: new threads kept appearing after %d listings", what, maxThreadListings)
}

// restrictThreadBySignal has thread tid act on itself and waits for it.
// A thread that exits meanwhile needs nothing more.
func restrictThreadBySignal(what string, pid, tid int) error {
	if e := C.dyad_ll_signal(C.int(pid), C.int(tid)); e != 0 {
		if unix.Errno(e) == unix.ESRCH {
			return nil
		}
		return fmt.Errorf("%s: signal thread %d: %w", what, tid, unix.Errno(e))
	}
	deadline := time.Now().Add(threadTimeout)
	for {
		var cerr C.int
		if C.dyad_ll_done(C.int(tid), &cerr) != 0 {
			if cerr != 0 {
				return fmt.Errorf("%s: thread %d: %w", what, tid, unix.Errno(cerr))
			}
			return nil
		}
		if time.Now().After(deadline) {
			// stat is not subject to landlock
			var st unix.Stat_t
			if err := unix.Stat(fmt.Sprintf("/proc/%d/task/%d", pid, tid), &st); err == unix.ENOENT {
				return nil
			}
			return fmt.Errorf("%s: thread %d did not act within %v", what, tid, threadTimeout)
		}
		time.Sleep(50 * time.Microsecond)
	}
}
