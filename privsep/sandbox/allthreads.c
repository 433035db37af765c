// Running landlock_restrict_self, or a capability drop, on every thread of
// a Go program that uses cgo.
//
// Landlock domains, like credentials, belong to a thread, and before
// Landlock ABI 8 (LANDLOCK_RESTRICT_SELF_TSYNC) the kernel restricts only
// the calling thread; capability sets are per thread too. The Go runtime's AllThreadsSyscall refuses to work in
// a cgo program, so this does what glibc does for setuid: it signals each
// thread in turn, and the signal handler makes the call on that thread.
//
// The state below is shared with the signal handler, which runs on the
// target thread. A round of use starts with dyad_ll_begin or
// dyad_caps_begin and ends with dyad_round_end; a second concurrent round
// is refused.

#define _GNU_SOURCE
#include <errno.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "allthreads.h"

#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446
#endif

// The signal used: SIGSYS, which the Go runtime never sends and which a
// seccomp filter without SECCOMP_RET_TRAP never raises.
#define DYAD_LL_SIGNAL SIGSYS

enum { OP_LANDLOCK = 1, OP_CAPS = 2 };

static atomic_int busy;
static atomic_int op;
static atomic_ullong caps_keep;
static atomic_int caps_leave_bounding;
static atomic_int caps_last;
static atomic_int ruleset_fd;
static atomic_uint restrict_flags;
static atomic_int target_tid;
static atomic_int done_tid;
static atomic_int done_errno;
static struct sigaction saved_action;

// drop_caps leaves the calling thread exactly caps_keep in its bounding
// (unless caps_leave_bounding), permitted and effective sets, and nothing
// in its inheritable and ambient sets. The bounding set goes first:
// dropping from it needs CAP_SETPCAP, which the capset below may remove.
static int drop_caps(void) {
	unsigned long long keep = atomic_load(&caps_keep);
	int last = atomic_load(&caps_last);
	// A thread may be asked twice (one made during the round by a thread
	// already done shows up in the next listing, with its creator's sets):
	// drop only what is still there, since dropping needs CAP_SETPCAP,
	// which keep may not hold.
	for (int c = 0; c <= last && !atomic_load(&caps_leave_bounding); c++) {
		if (keep & (1ULL << c)) {
			continue;
		}
		long in = syscall(SYS_prctl, PR_CAPBSET_READ, (long)c, 0L, 0L, 0L);
		if (in < 0) {
			return errno;
		}
		if (in == 1 && syscall(SYS_prctl, PR_CAPBSET_DROP, (long)c, 0L, 0L, 0L) != 0) {
			return errno;
		}
	}
	if (syscall(SYS_prctl, PR_CAP_AMBIENT, (long)PR_CAP_AMBIENT_CLEAR_ALL, 0L, 0L, 0L) != 0) {
		return errno;
	}
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof data);
	data[0].effective = data[0].permitted = (__u32)keep;
	data[1].effective = data[1].permitted = (__u32)(keep >> 32);
	if (syscall(SYS_capset, &hdr, data) != 0) {
		return errno;
	}
	return 0;
}

static void handler(int sig, siginfo_t *info, void *ucontext) {
	(void)sig;
	(void)ucontext;
	int saved_errno = errno;
	pid_t tid = (pid_t)syscall(SYS_gettid);
	// Act only on our own request: a tgkill from this process, for this
	// thread.
	if (info->si_code != SI_TKILL || info->si_pid != getpid() ||
	    tid != atomic_load(&target_tid)) {
		errno = saved_errno;
		return;
	}
	int err = 0;
	if (atomic_load(&op) == OP_CAPS) {
		err = drop_caps();
	} else if (syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L) != 0) {
		// landlock_restrict_self wants no_new_privs on the calling thread.
		err = errno;
	} else if (syscall(SYS_landlock_restrict_self, atomic_load(&ruleset_fd),
	                   atomic_load(&restrict_flags)) != 0) {
		err = errno;
	}
	atomic_store(&done_errno, err);
	atomic_store(&done_tid, (int)tid);
	errno = saved_errno;
}

static int install(void);

// claim starts a round of op, or refuses a second concurrent one.
static int claim(int which) {
	int expected = 0;
	if (!atomic_compare_exchange_strong(&busy, &expected, 1)) {
		return EBUSY;
	}
	atomic_store(&op, which);
	return 0;
}

int dyad_ll_begin(int fd, unsigned int flags) {
	int err = claim(OP_LANDLOCK);
	if (err != 0) {
		return err;
	}
	atomic_store(&ruleset_fd, fd);
	atomic_store(&restrict_flags, flags);
	return install();
}

int dyad_caps_begin(unsigned long long keep, int last, int leave_bounding) {
	int err = claim(OP_CAPS);
	if (err != 0) {
		return err;
	}
	atomic_store(&caps_keep, keep);
	atomic_store(&caps_leave_bounding, leave_bounding);
	atomic_store(&caps_last, last);
	return install();
}

// install installs the handler for one round; busy is held.
static int install(void) {
	atomic_store(&target_tid, 0);
	atomic_store(&done_tid, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = handler;
	// SA_ONSTACK: a Go thread may be running on a small goroutine stack;
	// the handler must run on the signal stack the runtime gives each
	// thread.
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigfillset(&sa.sa_mask);
	if (sigaction(DYAD_LL_SIGNAL, &sa, &saved_action) != 0) {
		int err = errno;
		atomic_store(&busy, 0);
		return err;
	}
	return 0;
}

int dyad_round_end(void) {
	int err = 0;
	if (sigaction(DYAD_LL_SIGNAL, &saved_action, NULL) != 0) {
		err = errno;
	}
	atomic_store(&busy, 0);
	return err;
}

int dyad_ll_signal(int pid, int tid) {
	atomic_store(&done_tid, 0);
	atomic_store(&target_tid, tid);
	if (syscall(SYS_tgkill, pid, tid, DYAD_LL_SIGNAL) != 0) {
		return errno;
	}
	return 0;
}

int dyad_ll_done(int tid, int *err) {
	if (atomic_load(&done_tid) != tid) {
		return 0;
	}
	*err = atomic_load(&done_errno);
	return 1;
}
