package sandbox

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// ExecStage replaces the process with /proc/self/exe running args (args[0]
// is argv0) in environment env. Only keep remains in the bounding set, and
// the inheritable and ambient sets are emptied; since the process stays
// root, the new image's permitted and effective sets are then exactly keep
// on every thread. That is why the launcher execs rather than calling
// capset, which changes one thread only.
//
// A process's bounding set only ever shrinks, and so does its children's:
// keep must hold the supervisor's own capabilities and every capability
// its children keep (CAP_NET_ADMIN for an actuator, say), which the
// supervisor, being root, then also holds.
//
// files become descriptors 3, 4, ... of the new image; every other
// descriptor above 2 is closed by the execve.
//
// ExecStage returns only on failure, and the process should then exit.
func ExecStage(args []string, env []string, keep []Cap, files []*os.File) error {
	return execStage(selfExe, args, env, keep, files)
}

// execStage is ExecStage with the binary as a parameter, for tests.
func execStage(path string, args, env []string, keep []Cap, files []*os.File) error {
	if len(args) == 0 {
		return errors.New("sandbox: exec stage: no argv0")
	}
	fds := make([]int, len(files))
	for i, f := range files {
		if f == nil {
			return fmt.Errorf("sandbox: exec %s: file %d is nil", args[0], i)
		}
		fds[i] = int(f.Fd())
	}
	failed := make(chan error, 1)
	// The work happens on a thread of its own, which is discarded if the
	// execve fails: its capabilities and descriptor table are no longer
	// those of the rest of the process.
	go func() {
		runtime.LockOSThread()
		failed <- execOnThisThread(path, args, env, keep, fds)
		// No UnlockOSThread: the thread exits with the goroutine.
	}()
	err := <-failed
	runtime.KeepAlive(files)
	return err
}

// execOnThisThread does the work of ExecStage on the calling thread, which
// must be locked and is tainted afterwards.
func execOnThisThread(path string, args, env []string, keep []Cap, fds []int) error {
	fail := func(err error) error {
		return fmt.Errorf("sandbox: exec %s: %w", args[0], err)
	}
	// Arrange the descriptors in a private copy of the descriptor table,
	// so that the rest of the runtime, which keeps running until the
	// execve, never sees its own descriptors (the netpoller's epoll and
	// event descriptors among them) replaced under it. The execve runs
	// with this thread's table.
	if err := unix.Unshare(unix.CLONE_FILES); err != nil {
		return fail(fmt.Errorf("unshare descriptor table: %w", err))
	}
	if err := arrangeFiles(fds); err != nil {
		return fail(err)
	}
	if err := restrictThread(keep, false); err != nil {
		return fail(err)
	}
	if err := syscall.Exec(path, args, env); err != nil {
		return fail(fmt.Errorf("execve %s: %w", path, err))
	}
	return fail(errors.New("execve returned"))
}

// arrangeFiles makes fds[i] descriptor 3+i, without close-on-exec, and marks
// every other descriptor above 2 close-on-exec.
func arrangeFiles(fds []int) error {
	n := len(fds)
	// First move every source above the target range, so that no dup3
	// onto 3+i destroys a source still to be moved.
	high := make([]int, n)
	for i, fd := range fds {
		h, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3+n)
		if err != nil {
			return fmt.Errorf("duplicate descriptor %d: %w", fd, err)
		}
		high[i] = h
	}
	for i, h := range high {
		if err := unix.Dup3(h, 3+i, 0); err != nil {
			return fmt.Errorf("move descriptor %d to %d: %w", fds[i], 3+i, err)
		}
	}
	err := unix.CloseRange(uint(3+n), ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) {
		err = cloexecFrom(3 + n)
	}
	if err != nil {
		return fmt.Errorf("mark descriptors close-on-exec: %w", err)
	}
	return nil
}

// cloexecFrom marks every open descriptor from min up close-on-exec, for
// kernels without close_range (before 5.11).
func cloexecFrom(min int) error {
	// A raw, blocking descriptor: os.Open would register it with the
	// netpoller, which belongs to the other descriptor table.
	dirfd, err := unix.Open("/proc/thread-self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /proc/thread-self/fd: %w", err)
	}
	f := os.NewFile(uintptr(dirfd), "/proc/thread-self/fd")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || fd < min || fd == dirfd {
			continue
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && !errors.Is(err, unix.EBADF) {
			return fmt.Errorf("descriptor %d: %w", fd, err)
		}
	}
	return nil
}
