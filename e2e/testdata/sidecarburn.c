// sidecarburn: the sidecar regression of make gate-power (e2e/power_test.go), never loaded
// otherwise. Preloaded into the emulated sidecars (LD_PRELOAD into HAProxy, which sends every
// byte, plain or TLS, with send(2)), it makes each proxy spend PATHCOST_SELFTEST_BURN_NS_PER_KB
// nanoseconds of CPU per 1024 bytes it sends, measured on the sending thread's CPU clock (not
// wall time: a thread preempted while spinning would otherwise burn less than asked), as
// tcpload's --selftest-burn-per-kb does for the server and client.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

static ssize_t (*real_send)(int, const void *, size_t, int);
static long long per_kb;       /* ns of CPU per 1024 bytes sent; 0: burn nothing */
static __thread long long debt; /* ns still owed by this thread (negative: paid ahead) */
static volatile unsigned long long sink;

/* a debt below this is carried over: each spin reads the thread clock a few times */
#define BURN_SLICE_NS 20000LL

__attribute__((constructor)) static void init(void) {
	real_send = (ssize_t(*)(int, const void *, size_t, int))dlsym(RTLD_NEXT, "send");
	const char *s = getenv("PATHCOST_SELFTEST_BURN_NS_PER_KB");
	per_kb = s ? atoll(s) : 0;
	if (per_kb < 0)
		per_kb = 0;
}

static long long thread_ns(void) {
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
		return -1;
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void burn(ssize_t n) {
	debt += (long long)n * per_kb / 1024;
	if (debt < BURN_SLICE_NS)
		return;
	long long start = thread_ns();
	if (start < 0) {
		debt = 0; /* no thread clock: nothing can be measured, burn nothing */
		return;
	}
	unsigned long long x = sink;
	for (;;) {
		for (int i = 0; i < 2000; i++)
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		long long used = thread_ns() - start;
		if (used >= debt) {
			debt -= used;
			break;
		}
	}
	sink = x;
}

ssize_t send(int fd, const void *buf, size_t len, int flags) {
	if (!real_send) {
		errno = ENOSYS;
		return -1;
	}
	ssize_t n = real_send(fd, buf, len, flags);
	if (n > 0 && per_kb > 0)
		burn(n);
	return n;
}
