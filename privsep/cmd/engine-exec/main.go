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
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

func main() {
	if err := run(os.Args); err != nil {
		os.Stderr.WriteString("engine-exec: " + err.Error() + "\n")
		os.Exit(126)
	}
}

func run(args []string) error {
	if len(args) < 3 || (args[1] == "exec" && len(args) < 4) {
		return errors.New("usage: engine-exec exec PATH ARGV0 [ARG...] | engine-exec kill SIGNAL")
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
		return fail("exec ", args[2], ": ", syscall.Exec(args[2], args[3:], os.Environ()).Error())
	case "kill":
		sig, err := strconv.Atoi(args[2])
		if err != nil || sig <= 0 || sig > 64 || len(args) != 3 {
			return fail("kill: ", strconv.Quote(args[2]), " is not a signal number")
		}
		if _, _, e := unix.RawSyscall6(unix.SYS_PIDFD_SEND_SIGNAL, 3, uintptr(sig), 0, 0, 0, 0); e != 0 {
			return fail("kill: signal ", args[2], " to the pidfd on descriptor 3: ", e.Error())
		}
		return nil
	}
	return fail(strconv.Quote(args[1]), ": want exec or kill")
}

// becomeEngine turns the calling thread wholly into the user and group
// whose set-user-ID and set-group-ID bits it runs under.
func becomeEngine() error {
	// Only root may use it: to root it gives nothing, and to anyone
	// else it would give the engine's user, and so a way to signal the
	// engine.
	if unix.Getuid() != 0 || unix.Getgid() != 0 {
		return fail("run by user ", itoa(unix.Getuid()), ", group ", itoa(unix.Getgid()), ": only root may run this")
	}
	uid, gid := unix.Geteuid(), unix.Getegid()
	if uid == 0 || gid == 0 {
		return fail("effective user ", itoa(uid), ", group ", itoa(gid), ": this file must be set-user-ID and set-group-ID to a user and group other than root")
	}
	// Group first: once the user is not root, only the IDs already held
	// may be set, and the effective group is one of them either way.
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)); e != 0 {
		return fail("setresgid ", itoa(gid), ": ", e.Error())
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
		return fail("setresuid ", itoa(uid), ": ", e.Error())
	}
	if r, e, s := unix.Getresuid(); r != uid || e != uid || s != uid {
		return fail("user IDs ", itoa(r), " ", itoa(e), " ", itoa(s), ", want ", itoa(uid))
	}
	if r, e, s := unix.Getresgid(); r != gid || e != gid || s != gid {
		return fail("group IDs ", itoa(r), " ", itoa(e), " ", itoa(s), ", want ", itoa(gid))
	}
	// Dropping supplementary groups needs CAP_SETGID, which the caller
	// lacks by design: a caller that has some must not have them.
	groups, err := unix.Getgroups()
	if err != nil {
		return fail("getgroups: ", err.Error())
	}
	if len(groups) != 0 {
		list := make([]string, len(groups))
		for i, g := range groups {
			list[i] = itoa(g)
		}
		return fail("supplementary groups [", strings.Join(list, " "), "]: start the container without any")
	}
	// Empty every set (the kernel has emptied the permitted and
	// effective sets with the last root ID; the inheritable set is the
	// caller's), then read them back.
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fail("capset: ", err.Error())
	}
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fail("capget: ", err.Error())
	}
	for _, d := range data {
		if d.Permitted|d.Effective|d.Inheritable != 0 {
			return errors.New("capabilities are left after the change of user")
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fail("clear the ambient set: ", err.Error())
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fail("set no_new_privs: ", err.Error())
	}
	// The set-ID exec cleared the parent-death signal the supervisor
	// asked for: ask again, and make sure the parent did not die in
	// between. (One that died earlier leaves the engine a closed pipe to
	// the actuator, on which it exits.)
	parent := unix.Getppid()
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fail("set the parent-death signal: ", err.Error())
	}
	if unix.Getppid() != parent {
		return errors.New("the supervisor is gone")
	}
	return nil
}

// checkProgram refuses to run a program anyone but root could have
// written, or one that would change its user again.
func checkProgram(path string) error {
	if path == "" || path[0] != '/' {
		return fail(path, ": not an absolute path")
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fail(path, ": ", err.Error())
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return fail(path, ": not a regular file")
	case st.Uid != 0 || st.Mode&0o022 != 0:
		return fail(path, ": owned by ", itoa(int(st.Uid)), " with mode ", strconv.FormatUint(uint64(st.Mode&0o7777), 8), ": only root may be able to write it")
	case st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0:
		return fail(path, ": set-user-ID or set-group-ID")
	}
	return nil
}

// fail makes an error of its parts. The program does without fmt, which
// would double its size in every image.
func fail(parts ...string) error { return errors.New(strings.Join(parts, "")) }

func itoa(n int) string { return strconv.Itoa(n) }
