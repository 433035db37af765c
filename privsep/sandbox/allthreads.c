// Running landlock_restrict_self on every thread of a Go program that uses
// cgo.
//
// Landlock domains, like credentials, belong to a thread, and before
// Landlock ABI 8 (LANDLOCK_RESTRICT_SELF_TSYNC) the kernel restricts only
// the calling thread. The Go runtime's AllThreadsSyscall refuses to work in
// a cgo program, so this does what glibc does for setuid: it signals each
// thread in turn, and the signal handler makes the call on that thread.
//
// The state below is shared with the signal handler, which runs on the
// target thread; dyad_ll_begin and dyad_ll_end bracket one round of use,
// and a second concurrent round is refused.

#define _GNU_SOURCE
#include <errno.h>
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

static atomic_int busy;
static atomic_int ruleset_fd;
static atomic_uint restrict_flags;
static atomic_int target_tid;
static atomic_int done_tid;
static atomic_int done_errno;
static struct sigaction saved_action;

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
	// landlock_restrict_self wants no_new_privs on the calling thread.
	if (syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L) != 0) {
		err = errno;
	} else if (syscall(SYS_landlock_restrict_self, atomic_load(&ruleset_fd),
	                   atomic_load(&restrict_flags)) != 0) {
		err = errno;
	}
	atomic_store(&done_errno, err);
	atomic_store(&done_tid, (int)tid);
	errno = saved_errno;
}

int dyad_ll_begin(int fd, unsigned int flags) {
	int expected = 0;
	if (!atomic_compare_exchange_strong(&busy, &expected, 1)) {
		return EBUSY;
	}
	atomic_store(&ruleset_fd, fd);
	atomic_store(&restrict_flags, flags);
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

int dyad_ll_end(void) {
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
