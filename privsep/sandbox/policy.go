package sandbox

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// A SyscallPolicy is a seccomp allow-list: the system calls a process may
// make, on which arguments, and what happens to the others.
//
// A call that no rule matches fails with DefaultErrno (EPERM if zero)
// rather than killing the process: the Go runtime and libc probe newer
// system calls and fall back when they are refused, and a filter that kills
// by default breaks on every new kernel or libc. Only a short list of
// dangerous calls kills the process (see Dangerous).
type SyscallPolicy struct {
	Rules        []Rule
	DefaultErrno syscall.Errno
}

// Action is what the filter does with a system call a rule matches.
type Action int

const (
	// ActAllow lets the call through.
	ActAllow Action = iota + 1
	// ActErrno fails the call with Rule.Errno.
	ActErrno
	// ActKill kills the whole process with SIGSYS.
	ActKill
)

func (a Action) String() string {
	switch a {
	case ActAllow:
		return "allow"
	case ActErrno:
		return "errno"
	case ActKill:
		return "kill"
	}
	return "invalid action"
}

// Rule applies Action to the system call named Syscall (libseccomp's name,
// as in the kernel's syscall table) when all of Args hold; with no Args it
// applies to every call. Several rules for one system call with the same
// action are alternatives: the action applies if any of them matches.
type Rule struct {
	Syscall string
	Action  Action
	Errno   syscall.Errno // for ActErrno
	Args    []Arg
}

// Op is the comparison an Arg makes.
type Op int

const (
	// Equal holds when the argument equals Value.
	Equal Op = iota + 1
	// MaskedEqual holds when the argument ANDed with Mask equals Value.
	MaskedEqual
	// EqualSelfPID holds when the argument is the process ID of the process
	// that installs the filter (Value is unused): it lets a process signal
	// itself and no one else.
	EqualSelfPID
)

// Arg is a condition on argument Index (0 to 5) of a system call.
type Arg struct {
	Index uint
	Op    Op
	Value uint64
	Mask  uint64
}

// Allowing returns a copy of p that also allows the system calls named,
// whatever their arguments. A daemon uses it to add what its grant needs,
// such as clock_adjtime for the NTP actuator.
func (p SyscallPolicy) Allowing(names ...string) SyscallPolicy {
	p.Rules = append(append([]Rule(nil), p.Rules...), allow(names...)...)
	return p
}

// Dangerous lists the system calls that kill any confined process on the
// spot: no dyad process after confinement has a use for them, and each
// is either a way out of the sandbox or a large attack surface in the
// kernel. (The supervisor, which spawns its children, is allowed execve.)
func Dangerous() []string {
	return []string{
		"execve", "execveat",
		"ptrace", "process_vm_readv", "process_vm_writev",
		"mount", "umount2", "pivot_root", "chroot",
		"unshare", "setns",
		"bpf", "perf_event_open", "userfaultfd",
		"init_module", "finit_module", "delete_module",
		"kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff",
		"keyctl", "add_key", "request_key",
		"personality", "open_by_handle_at",
	}
}

// EngineSyscalls is the policy of an engine: it runs the Go runtime and
// does I/O on the descriptors it was given, and nothing else. It cannot
// create sockets, open files for writing, change credentials or
// capabilities, fork, or signal any process but itself.
func EngineSyscalls() SyscallPolicy {
	var r []Rule
	r = append(r, goRuntime()...)
	r = append(r, threadsOnly()...)
	r = append(r, signalSelfOnly()...)
	r = append(r, openReadOnly()...)
	r = append(r, confinement()...)
	r = append(r, socketIO()...)
	r = append(r, kill(Dangerous()...)...)
	return SyscallPolicy{Rules: r}
}

// UDPClientSyscalls is the policy of an engine that talks to servers
// itself, such as the NTP engine: the engine's, plus sockets of IPv4 and
// IPv6 datagrams (no stream, raw, packet, netlink or unix socket), bound,
// connected and given options. Name lookups go through such sockets too.
func UDPClientSyscalls() SyscallPolicy { return clientSyscalls(unix.SOCK_DGRAM) }

// UDPTCPClientSyscalls is UDPClientSyscalls with IPv4 and IPv6 stream
// sockets too, such as the DNS engine needs to ask an upstream again over
// TCP. (The listeners it serves, it was given.)
func UDPTCPClientSyscalls() SyscallPolicy { return clientSyscalls(unix.SOCK_DGRAM, unix.SOCK_STREAM) }

func clientSyscalls(types ...int) SyscallPolicy {
	p := EngineSyscalls()
	var r []Rule
	for _, domain := range []int{unix.AF_INET, unix.AF_INET6} {
		for _, typ := range types {
			r = append(r, Rule{Syscall: "socket", Action: ActAllow, Args: []Arg{
				{Index: 0, Op: Equal, Value: uint64(domain)},
				// The type without SOCK_NONBLOCK and SOCK_CLOEXEC.
				{Index: 1, Op: MaskedEqual, Mask: 0xf, Value: uint64(typ)},
			}})
		}
	}
	r = append(r, allow("bind", "connect", "setsockopt")...)
	p.Rules = append(r, p.Rules...)
	return p
}

// ActuatorSyscalls is the policy of an actuator: the engine's, plus
// netlink, unix and IPv4 sockets, opening files for writing, and the file
// operations of an atomic replace (write a temporary file, sync, rename),
// plus sethostname. A daemon adds what its grant needs with Allowing.
func ActuatorSyscalls() SyscallPolicy {
	var r []Rule
	r = append(r, goRuntime()...)
	r = append(r, threadsOnly()...)
	r = append(r, signalSelfOnly()...)
	r = append(r, confinement()...)
	r = append(r, socketIO()...)
	r = append(r, socketDomains(unix.AF_NETLINK, unix.AF_UNIX, unix.AF_INET)...)
	r = append(r, allow(
		"bind", "connect", "listen", "setsockopt",
		"open", "openat", "pwrite64",
		"rename", "renameat", "renameat2", "unlink", "unlinkat", "mkdir", "mkdirat",
		"fsync", "fdatasync", "ftruncate",
		"fchmod", "fchmodat", "fchown", "fchownat",
		"sethostname",
	)...)
	r = append(r, kill(Dangerous()...)...)
	return SyscallPolicy{Rules: r}
}

// SupervisorSyscalls is the policy of a supervisor: the Go runtime, plus
// starting, signalling and reaping children (fork, execve, wait,
// credentials, capability and prctl work, pidfds). It opens no sockets.
//
// A seccomp filter is inherited by children and survives execve, and the
// kernel applies every filter a process has: a child can never make a call
// its supervisor's filter refuses, even before it confines itself. So pass
// the policies of the children this supervisor starts: the result is the
// union of the supervisor's own list and theirs (see Union), in which a
// child's rule restricted to its own PID allows any PID.
func SupervisorSyscalls(children ...SyscallPolicy) SyscallPolicy {
	var r []Rule
	r = append(r, goRuntime()...)
	r = append(r, confinement()...)
	r = append(r, Rule{
		// fork, but no new namespaces
		Syscall: "clone", Action: ActAllow,
		Args: []Arg{{Index: 0, Op: MaskedEqual, Mask: cloneNewNamespaces, Value: 0}},
	})
	r = append(r, allow(
		"execve", "wait4", "waitid",
		"socketpair", "sendmsg", "recvmsg", // a fresh pipe for each engine, handed to the actuator
		"kill", "tgkill", "pidfd_open", "pidfd_send_signal",
		"prctl", "capget", "capset",
		"setuid", "setgid", "setgroups", "setresuid", "setresgid",
		"dup", "dup2", "dup3", "close_range",
		"open", "openat", // /dev/null for children without stdio
		"seccomp",
	)...)
	var dangerous []string
	for _, name := range Dangerous() {
		if name != "execve" {
			dangerous = append(dangerous, name)
		}
	}
	r = append(r, kill(dangerous...)...)
	own := SyscallPolicy{Rules: r}
	return Union(append([]SyscallPolicy{own}, children...)...)
}

// Union returns a policy that allows every call any of policies allows: a
// filter for a process whose children run those policies. A rule
// restricted to the caller's own PID loses that restriction (the PIDs of
// the children differ), an errno or kill rule survives only for system
// calls that no policy allows on any arguments, and DefaultErrno is the
// first one set.
func Union(policies ...SyscallPolicy) SyscallPolicy {
	var out SyscallPolicy
	allowed := map[string]bool{}
	for _, p := range policies {
		if out.DefaultErrno == 0 {
			out.DefaultErrno = p.DefaultErrno
		}
		for _, r := range p.Rules {
			if r.Action == ActAllow {
				allowed[r.Syscall] = true
			}
		}
	}
	decided := map[string]bool{} // an errno or kill rule was kept
	for _, p := range policies {
		for _, r := range p.Rules {
			switch {
			case r.Action == ActAllow:
				r.Args = withoutSelfPID(r.Args)
				out.Rules = append(out.Rules, r)
			case allowed[r.Syscall] || decided[r.Syscall]:
				// allowed somewhere, or already refused
			default:
				decided[r.Syscall] = true
				out.Rules = append(out.Rules, r)
			}
		}
	}
	return out
}

// withoutSelfPID drops EqualSelfPID conditions from args.
func withoutSelfPID(args []Arg) []Arg {
	var out []Arg
	for _, a := range args {
		if a.Op != EqualSelfPID {
			out = append(out, a)
		}
	}
	return out
}

// cloneNewNamespaces are the clone flags that create namespaces.
const cloneNewNamespaces = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// openWriteFlags are the open flags that write to, create or change a file.
const openWriteFlags = unix.O_WRONLY | unix.O_RDWR | unix.O_CREAT | unix.O_TRUNC | unix.O_APPEND

// goRuntime is what a Go program (and the libc a cgo build links) needs
// to run at all: memory, threads, scheduling, signals, time, and I/O on
// descriptors it already holds. Thread creation, signals to others and
// opening files are in separate rule sets, since their conditions differ
// from one policy to another.
func goRuntime() []Rule {
	r := allow(
		// memory
		"brk", "mmap", "munmap", "mprotect", "madvise", "mremap",
		// threads and scheduling
		"futex", "set_robust_list", "rseq", "set_tid_address", "gettid",
		"sched_yield", "sched_getaffinity", "arch_prctl",
		// signals
		"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
		"restart_syscall", "getpid",
		// time
		"clock_gettime", "clock_getres", "gettimeofday", "time",
		"nanosleep", "clock_nanosleep",
		// identity and system information, read only
		"getppid", "getuid", "geteuid", "getgid", "getegid",
		"getresuid", "getresgid", "getgroups", "capget", "uname", "getrandom",
		"getcwd",
		// descriptors
		"read", "readv", "pread64", "write", "writev", "close", "close_range",
		"fcntl", "dup", "dup2", "dup3", "lseek",
		"fstat", "newfstatat", "statx", "getdents64", "readlinkat", "readlink",
		"pipe2", "eventfd2",
		"epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
		// the end
		"exit", "exit_group",
	)
	r = append(r,
		// glibc's pthread_create tries clone3 first and falls back to
		// clone only on ENOSYS; clone3's flags are in memory, out of a
		// filter's reach.
		Rule{Syscall: "clone3", Action: ActErrno, Errno: unix.ENOSYS},
		// resource limits of this process only (pid 0)
		Rule{Syscall: "prlimit64", Action: ActAllow, Args: []Arg{{Index: 0, Op: Equal, Value: 0}}},
	)
	return r
}

// threadsOnly allows clone for new threads and nothing else: no new
// process, no new namespace.
func threadsOnly() []Rule {
	return []Rule{{
		Syscall: "clone", Action: ActAllow,
		Args: []Arg{{Index: 0, Op: MaskedEqual, Mask: unix.CLONE_THREAD | cloneNewNamespaces, Value: unix.CLONE_THREAD}},
	}}
}

// signalSelfOnly allows the signals the Go runtime sends: to its own
// threads (preemption) and to itself (re-raising a fatal signal).
func signalSelfOnly() []Rule {
	return []Rule{
		{Syscall: "tgkill", Action: ActAllow, Args: []Arg{{Index: 0, Op: EqualSelfPID}}},
		{Syscall: "kill", Action: ActAllow, Args: []Arg{{Index: 0, Op: EqualSelfPID}}},
	}
}

// openReadOnly allows open and openat only with none of the flags that
// write to, create or truncate a file.
func openReadOnly() []Rule {
	return []Rule{
		{Syscall: "openat", Action: ActAllow, Args: []Arg{{Index: 2, Op: MaskedEqual, Mask: openWriteFlags, Value: 0}}},
		{Syscall: "open", Action: ActAllow, Args: []Arg{{Index: 1, Op: MaskedEqual, Mask: openWriteFlags, Value: 0}}},
	}
}

// confinement is what Confine itself calls once the seccomp filter is in
// place: it applies landlock after seccomp, so that it can still read
// /proc to check the filter on every thread. Each of these calls can only
// restrict the caller further.
func confinement() []Rule {
	return append(
		allow("landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self"),
		Rule{Syscall: "prctl", Action: ActAllow, Args: []Arg{{Index: 0, Op: Equal, Value: unix.PR_SET_NO_NEW_PRIVS}}},
	)
}

// socketIO is I/O on sockets already open: no socket creation, no bind,
// connect or setsockopt.
func socketIO() []Rule {
	return allow(
		"sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
		"accept", "accept4", "getsockopt", "getsockname", "getpeername", "shutdown",
	)
}

// socketDomains allows socket for the address families listed.
func socketDomains(domains ...int) []Rule {
	var r []Rule
	for _, d := range domains {
		r = append(r, Rule{Syscall: "socket", Action: ActAllow, Args: []Arg{{Index: 0, Op: Equal, Value: uint64(d)}}})
	}
	return r
}

func allow(names ...string) []Rule {
	r := make([]Rule, len(names))
	for i, n := range names {
		r[i] = Rule{Syscall: n, Action: ActAllow}
	}
	return r
}

func kill(names ...string) []Rule {
	r := make([]Rule, len(names))
	for i, n := range names {
		r[i] = Rule{Syscall: n, Action: ActKill}
	}
	return r
}
