// Command engine-exec starts and stops a dyad engine as the engine's own
// user, for a supervisor that holds neither CAP_SETUID nor CAP_SETGID nor
// CAP_KILL. It is the only set-user-ID and set-group-ID file of a dyad
// image, owned by the engine's user (never root): exec'd by root, it runs
// with that user as its effective IDs and gains nothing else.
//
//	engine-exec exec PATH ARGV0 [ARG...]   run PATH as the engine's user
//	engine-exec kill SIGNAL                signal the process of the pidfd on descriptor 3
//
// Before either, on the one thread that will exec or signal, it makes the
// real and saved IDs the engine's too, so that nothing of root is left; it
// checks that no supplementary group and no capability remains (the kernel
// clears the capabilities when the last root ID goes), and sets
// no_new_privs. Anything else is fatal: it never runs a program with more
// than the engine's user.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

func main() {
	if err := run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "engine-exec:", err)
		os.Exit(126)
	}
}

func run(args []string) error {
	if len(args) < 3 || (args[1] == "exec" && len(args) < 4) {
		return fmt.Errorf("usage: engine-exec exec PATH ARGV0 [ARG...] | engine-exec kill SIGNAL")
	}
	// Credentials are per thread in the kernel: change them on this
	// thread only, and exec or signal from it.
	runtime.LockOSThread()
	if err := becomeEngine(); err != nil {
		return err
	}
	switch args[1] {
	case "exec":
		if err := checkProgram(args[2]); err != nil {
			return err
		}
		return fmt.Errorf("exec %s: %w", args[2], syscall.Exec(args[2], args[3:], os.Environ()))
	case "kill":
		sig, err := strconv.Atoi(args[2])
		if err != nil || sig <= 0 || sig > 64 || len(args) != 3 {
			return fmt.Errorf("kill: %q is not a signal number", args[2])
		}
		if _, _, e := unix.RawSyscall6(unix.SYS_PIDFD_SEND_SIGNAL, 3, uintptr(sig), 0, 0, 0, 0); e != 0 {
			return fmt.Errorf("kill: signal %d to the pidfd on descriptor 3: %w", sig, e)
		}
		return nil
	}
	return fmt.Errorf("%q: want exec or kill", args[1])
}

// becomeEngine turns the calling thread wholly into the user and group
// whose set-user-ID and set-group-ID bits it runs under.
func becomeEngine() error {
	uid, gid := unix.Geteuid(), unix.Getegid()
	if uid == 0 || gid == 0 {
		return fmt.Errorf("effective user %d, group %d: this file must be set-user-ID and set-group-ID to a user and group other than root", uid, gid)
	}
	// Group first: once the user is not root, only the IDs already held
	// may be set, and the effective group is one of them either way.
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)); e != 0 {
		return fmt.Errorf("setresgid %d: %w", gid, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
		return fmt.Errorf("setresuid %d: %w", uid, e)
	}
	if r, e, s := unix.Getresuid(); r != uid || e != uid || s != uid {
		return fmt.Errorf("user IDs %d %d %d, want %d", r, e, s, uid)
	}
	if r, e, s := unix.Getresgid(); r != gid || e != gid || s != gid {
		return fmt.Errorf("group IDs %d %d %d, want %d", r, e, s, gid)
	}
	// Dropping supplementary groups needs CAP_SETGID, which the caller
	// lacks by design: a caller that has some must not have them.
	if groups, err := unix.Getgroups(); err != nil || len(groups) != 0 {
		return fmt.Errorf("supplementary groups %v (%v): start the container without any", groups, err)
	}
	// The inheritable set is the caller's to keep: empty it, then check
	// that the kernel emptied the others.
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	for _, d := range data {
		if d.Permitted|d.Effective|d.Inheritable != 0 {
			return fmt.Errorf("capabilities left: %+v", data)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear the ambient set: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	return nil
}

// checkProgram refuses to run a program anyone but root could have
// written, or one that would change its user again.
func checkProgram(path string) error {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	switch {
	case path == "" || path[0] != '/':
		return fmt.Errorf("%s: not an absolute path", path)
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return fmt.Errorf("%s: not a regular file", path)
	case st.Uid != 0 || st.Mode&0o022 != 0:
		return fmt.Errorf("%s: owned by %d with mode %#o: only root may be able to write it", path, st.Uid, st.Mode&0o7777)
	case st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0:
		return fmt.Errorf("%s: set-user-ID or set-group-ID", path)
	}
	return nil
}
