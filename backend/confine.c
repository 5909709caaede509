// SPDX-License-Identifier: MIT
/*
 * Confinement: after setup pvio-backd keeps only what serving guests
 * needs, so that a guest that found a bug in it gets a process that can
 * do little more than pvio-backd already does (docs/security.md).
 *
 *  - capabilities (confine_caps, before any thread exists): the bounding
 *    set and the main thread keep CAP_NET_ADMIN only (TAP devices made for
 *    vifs attached later: TUNSETIFF, link up, bridge); every other
 *    capability goes, ambient ones too. Worker threads drop even that
 *    (confine_worker): they move data through fds they were given.
 *  - no_new_privs: nothing exec'd could gain privileges (and seccomp
 *    without CAP_SYS_ADMIN needs it).
 *  - seccomp (confine_filter, after setup, on every thread at once): an
 *    allow-list of the system calls the daemon makes; anything else
 *    raises SIGSYS, whose handler names the call and lets the signal kill
 *    the process. Threads only (clone with CLONE_THREAD; clone3 answers
 *    ENOSYS so that glibc falls back to clone), sockets of the families
 *    used (AF_UNIX: xenstore, the sim world, the control socket; AF_INET:
 *    interface ioctls; AF_NETLINK: glibc's interface lookups).
 *
 * What stays allowed is what serving a device attached later needs: the
 * main thread opens its target file or block device (open/openat) and
 * creates its TAP (ioctl, CAP_NET_ADMIN). ioctl numbers are not filtered:
 * the Xen drivers' libraries (evtchn, gntdev, privcmd) use many, and the
 * fds they reach were opened before the filter.
 *
 * Sanitizer builds (ASan's LeakSanitizer stops the world with clone and
 * ptrace at exit) get the few calls their runtime makes, nothing more.
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cap-ng.h>
#include <seccomp.h>

#include "private.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CONFINE_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CONFINE_SANITIZER 1
#endif
#endif

/* ---- capabilities ------------------------------------------------------------ */

int confine_caps(void)
{
	bool net_admin;
	int rc;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	/* ambient capabilities would survive an exec: none */
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	capng_get_caps_process();
	net_admin = capng_have_capability(CAPNG_PERMITTED, CAP_NET_ADMIN);
	capng_clear(CAPNG_SELECT_BOTH);
	if (net_admin &&
	    capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED |
			 CAPNG_BOUNDING_SET, CAP_NET_ADMIN))
		return -EINVAL;
	/* the bounding set needs CAP_SETPCAP to shrink: an unprivileged
	 * daemon (sim, without TAPs) has nothing to drop there anyway */
	rc = capng_apply(CAPNG_SELECT_BOTH);
	if (rc && capng_apply(CAPNG_SELECT_CAPS))
		return -EPERM;
	return 0;
}

void confine_worker(void)
{
	/* libcap-ng's state is per thread: this thread's sets */
	capng_clear(CAPNG_SELECT_CAPS);
	if (capng_apply(CAPNG_SELECT_CAPS))
		log_warn("worker: cannot drop its capabilities");
}

/* ---- the system call filter --------------------------------------------------- */

/* Every thread, after setup. */
static const char *const allowed[] = {
	/* I/O on the fds it has; the targets of devices attached later */
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv",
	"pwritev", "preadv2", "pwritev2", "close", "close_range", "open",
	"openat", "fstat", "newfstatat", "stat", "lstat", "statx", "lseek",
	"fstatfs", "statfs",	/* may a target block? (blk-xenbus.c) */
	"fsync", "fdatasync", "fallocate", "ftruncate", "fcntl", "dup", "dup3", "pipe2",
	"ioctl", "access", "faccessat", "faccessat2", "readlink",
	"readlinkat", "getdents64", "unlink", "unlinkat", "mkdir", "mkdirat",
	"umask",
	/* memory: ring and grant mappings, the Xen libraries' buffers */
	"mmap", "munmap", "mprotect", "madvise", "mremap", "brk", "mlock",
	"munlock",
	/* threads and time */
	"futex", "set_robust_list", "get_robust_list", "rseq",
	"set_tid_address", "sched_yield", "sched_getaffinity", "gettid",
	"getpid", "getuid", "geteuid", "getgid", "getegid", "tgkill", "tkill",
	"exit", "exit_group", "restart_syscall", "clock_gettime",
	"clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday",
	"getrandom", "uname", "sysinfo", "getrlimit", "prlimit64",
	/* a control-work thread empties its own capability sets (it can
	 * only lower them: no_new_privs, the bounding set) */
	"capset",
	/* signals */
	"rt_sigprocmask", "rt_sigaction", "rt_sigreturn", "sigaltstack",
	/* the event loops */
	"epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait",
	"epoll_pwait2", "poll", "ppoll", "select", "pselect6", "eventfd2",
	"timerfd_create", "timerfd_settime", "timerfd_gettime", "signalfd4",
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	/* sockets (the families: below) */
	"connect", "accept", "accept4", "bind", "listen", "sendmsg",
	"recvmsg", "sendto", "recvfrom", "shutdown", "setsockopt",
	"getsockopt", "getsockname", "getpeername", "socketpair",
};

#ifdef HAVE_LIBRBD
/* librados, for RBD disks attached later (backend/target-rbd.c): its
 * messenger's epoll set (epoll_create), the client's admin socket
 * (chmod), and statfs on its configuration and log directories; the
 * monitors may be IPv6 (AF_INET6 below) */
static const char *const allowed_rbd[] = {
	"epoll_create", "chmod", "fchmod", "statfs", "fstatfs",
};
#endif

#ifdef CONFINE_SANITIZER
/* LeakSanitizer at exit: a tracer (clone, not a thread) lists the threads
 * (getdents, not getdents64, on x86_64) and ptrace-stops them */
static const char *const allowed_sanitizer[] = {
	"ptrace", "wait4", "waitid", "clone", "prctl", "sched_getparam",
	"sched_setaffinity", "getppid", "kill", "execve", "getdents",
};
#endif

static void on_sigsys(int sig, siginfo_t *si, void *uctx)
{
	static const char head[] = "pvio-backd: confinement: forbidden system call ";
	char num[16];
	int n = (int)sizeof(num), nr = si->si_syscall;
	struct sigaction dfl = { .sa_handler = SIG_DFL };

	num[--n] = '\n';
	do {
		num[--n] = (char)('0' + nr % 10);
		nr /= 10;
	} while (nr && n);
	if (write(2, head, sizeof(head) - 1) < 0 ||
	    write(2, num + n, sizeof(num) - (size_t)n) < 0) {
		/* nothing else to tell it with */
	}
	/* die of it (SIGSYS, as SECCOMP_RET_KILL would), once we return */
	sigaction(SIGSYS, &dfl, NULL);
	raise(SIGSYS);
}

static int allow(scmp_filter_ctx ctx, const char *const *names, size_t n)
{
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		int nr = seccomp_syscall_resolve_name(names[i]);

		if (nr == __NR_SCMP_ERROR)
			continue;	/* not on this architecture */
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (rc)
			return rc;
	}
	return 0;
}

int confine_filter(void)
{
	static const int families[] = { AF_UNIX, AF_INET, AF_NETLINK,
#if defined(HAVE_LIBRBD) || defined(HAVE_LIBNBD)
					AF_INET6,	/* remote disks' servers */
#endif
	};
	struct sigaction sa = { .sa_sigaction = on_sigsys,
				.sa_flags = SA_SIGINFO };
	scmp_filter_ctx ctx;
	unsigned int i;
	int rc;

	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return -errno;
	ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx)
		return -ENOMEM;
	/* every thread, the workers too */
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (!rc)
		rc = allow(ctx, allowed, sizeof(allowed) / sizeof(allowed[0]));
#ifdef HAVE_LIBRBD
	if (!rc)
		rc = allow(ctx, allowed_rbd,
			   sizeof(allowed_rbd) / sizeof(allowed_rbd[0]));
#endif
#ifdef CONFINE_SANITIZER
	if (!rc)
		rc = allow(ctx, allowed_sanitizer,
			   sizeof(allowed_sanitizer) / sizeof(allowed_sanitizer[0]));
#else
	/* threads, not processes */
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
				      SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD,
					      CLONE_THREAD));
	/* only to name a thread */
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
				      SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
#endif
	/* its flags are out of a filter's reach: glibc falls back to clone */
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS),
				      SCMP_SYS(clone3), 0);
	for (i = 0; !rc && i < sizeof(families) / sizeof(families[0]); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
				      SCMP_A0(SCMP_CMP_EQ,
					      (scmp_datum_t)families[i]));
	if (!rc)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	return rc;
}

/*
 * A test's fault point (tests/integration/test-backd-confine.sh): a
 * system call the filter does not allow, harmless without the filter
 * (there is no such swap file).
 */
void confine_test_fault(void)
{
	const char *v = getenv("PVIO_BACKD_TEST_FORBIDDEN_SYSCALL");
	long rc;

	if (!v || strcmp(v, "1"))
		return;
	log_warn("test fault point: a forbidden system call (swapoff)");
	rc = syscall(SYS_swapoff, "/nonexistent/pvio-test");
	log_warn("test fault point: swapoff returned %ld (%s): not confined",
		 rc, strerror(errno));
}
