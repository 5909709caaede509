// SPDX-License-Identifier: MIT
/*
 * pvio-bench net: the network path of a sim domU against the same traffic
 * without virtualization, measured in the same run (paired runs, the
 * ratio is the median of the pairs' ratios).
 *
 *  tx-N    guest -> dom0: the guest's netfront sends N-byte frames as fast
 *          as the ring lets it; pvio-backd writes them into vif<dom>.0.
 *          Counted where they arrive: the TAP's rx_packets.
 *          Baseline: one process writes the same frames into a TAP with
 *          io_uring (as pvio-backd does, a batch per submission).
 *  rx-N    dom0 -> guest: a packet socket sends N-byte frames out of
 *          vif<dom>.0; pvio-backd reads them from the TAP and copies them
 *          into the guest's rx buffers; the guest counts what it takes.
 *          Baseline: the same sender into a plain TAP, one process reading
 *          it with io_uring. The sender keeps at most WINDOW frames
 *          unreceived (closed loop): it measures what the path carries,
 *          not how fast a queue overflows.
 *  tcp     one TCP stream between the guest's network namespace (where
 *          pvio-netfront is eth0) and dom0, each way. Baseline: the same
 *          stream over a veth pair between the same two namespaces.
 *
 * CPUs (two on these machines): pvio-backd runs on CPU 1, the guest and
 * the packet sender on CPU 0; baselines put their TAP reader or writer on
 * CPU 1 and the sender on CPU 0. TCP endpoints float.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <liburing.h>

#include <pvio/netfront.h>
#include <pvio/platform.h>
#include <pvio/ring.h>
#include <pvio/xenbus.h>

#include "bench.h"
#include "guard.h"

#define DOM_PPS		71u	/* the library guest (vif71.0) */
#define DOM_TCP		72u	/* pvio-netfront in a namespace (vif72.0) */
#define BATCH		64u	/* frames per send()/recv()/sendmmsg() */
#define WINDOW		768u	/* rx: frames sent, not yet received (< txqueuelen) */
#define VNET_HDR	sizeof(struct virtio_net_hdr)
#define TAP_READS	64u	/* as pvio-backd: reads posted on the TAP */
#define TCP_CHUNK	(128u << 10)

enum test_kind { T_TX, T_RX, T_TCP_UP, T_TCP_DOWN };

struct test {
	const char *name;
	enum test_kind kind;
	uint32_t len;		/* frame bytes (pps tests) */
	const char *what;
};

static const struct test tests[] = {
	{ "tx-64", T_TX, 64, "guest -> vif TAP, 64 B frames" },
	{ "tx-1514", T_TX, 1514, "guest -> vif TAP, 1514 B frames" },
	{ "rx-64", T_RX, 64, "vif TAP -> guest, 64 B frames" },
	{ "rx-1514", T_RX, 1514, "vif TAP -> guest, 1514 B frames" },
	{ "tcp-guest-to-dom0", T_TCP_UP, 0, "TCP stream, guest ns -> dom0" },
	{ "tcp-dom0-to-guest", T_TCP_DOWN, 0, "TCP stream, dom0 -> guest ns" },
};
#define NR_TESTS (sizeof(tests) / sizeof(tests[0]))

/* Shared by the parent, the guest and the packet sender (MAP_SHARED). */
struct shm {
	_Atomic uint64_t received;	/* rx: frames taken by the receiver */
	_Atomic int stop;		/* rx: the receiver is done */
	uint64_t sent, lost;		/* rx: the sender's account */
};

/* A guest command, and its answer. */
struct gcmd {
	int kind;			/* T_TX, T_RX, or -1: exit */
	uint32_t len, ms, spin_us;
};

struct gres {
	int error;
	uint64_t frames, ns;
	uint64_t notifies;		/* sent by the frontend */
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* An IPv4/UDP frame of @len bytes to @dst (sent to the discard port). */
static void make_frame(uint8_t *f, uint32_t len, const uint8_t dst[6])
{
	static const uint8_t src[6] = { 0x00, 0x16, 0x3e, 0x00, 0x00, 0xfe };
	uint32_t ip_len = len - 14, sum = 0, i;
	uint8_t *ip = f + 14, *udp = ip + 20;

	memset(f, 0, len);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x08;				/* IPv4 */
	ip[0] = 0x45;
	ip[2] = (uint8_t)(ip_len >> 8);
	ip[3] = (uint8_t)ip_len;
	ip[6] = 0x40;				/* DF */
	ip[8] = 64;
	ip[9] = 17;				/* UDP */
	ip[12] = 10, ip[13] = 253, ip[14] = 0, ip[15] = 2;
	ip[16] = 10, ip[17] = 253, ip[18] = 0, ip[19] = 1;
	for (i = 0; i < 20; i += 2)
		sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	ip[10] = (uint8_t)(~sum >> 8);
	ip[11] = (uint8_t)~sum;
	udp[0] = 0x00, udp[1] = 9;
	udp[2] = 0x00, udp[3] = 9;
	udp[4] = (uint8_t)((ip_len - 20) >> 8);
	udp[5] = (uint8_t)(ip_len - 20);
	for (i = 42; i < len; i++)
		f[i] = (uint8_t)i;
}

static uint64_t if_stat(const char *ifname, const char *stat)
{
	char p[256], buf[32];
	ssize_t n;
	int fd;

	snprintf(p, sizeof(p), "/sys/class/net/%s/statistics/%s", ifname, stat);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	return strtoull(buf, NULL, 10);
}

/* ---- the guest: the netfront library, one queue --------------------------------- */

/* Nothing to do: arm for @what and sleep on the queue (100 ms at most).
 * Return 0, or the queue's error. */
static int guest_sleep(struct pvio_netfront_queue *q, unsigned int what)
{
	int n = pvio_netfront_arm(q, what);

	if (n == 0) {
		struct pollfd pfd = { pvio_netfront_queue_fd(q), POLLIN, 0 };

		poll(&pfd, 1, 100);
	}
	return n < 0 ? n : 0;
}

static int guest_tx(struct pvio_netfront_queue *q, const struct gcmd *c,
		    struct gres *r)
{
	static const uint8_t dst[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };
	struct pvio_netfront_frame f[BATCH];
	uint64_t t0, deadline, spin_ns = (uint64_t)c->spin_us * 1000u;
	uint8_t *frame = malloc(c->len);
	unsigned int i;

	make_frame(frame, c->len, dst);	/* another host's MAC: dropped early */
	memset(f, 0, sizeof(f));
	for (i = 0; i < BATCH; i++) {
		f[i].data = frame;
		f[i].len = c->len;
	}
	t0 = pvio_now_ns();
	deadline = t0 + (uint64_t)c->ms * 1000000u;
	for (;;) {
		uint64_t now = pvio_now_ns(), spin_end;
		int n = pvio_netfront_send(q, f, BATCH);

		if (n > 0) {
			r->frames += (uint64_t)n;
			if (now >= deadline)
				break;
			continue;
		}
		if (n != -EAGAIN) {
			r->error = n;
			break;
		}
		if (now >= deadline)
			break;
		/* the ring is full: poll it a while, then sleep for room */
		spin_end = now + spin_ns;
		while ((n = pvio_netfront_send(q, f, BATCH)) == -EAGAIN &&
		       pvio_now_ns() < spin_end)
			;
		if (n > 0) {
			r->frames += (uint64_t)n;
			continue;
		}
		n = guest_sleep(q, PVIO_NETFRONT_ARM_TX);
		if (n < 0) {
			r->error = n;
			break;
		}
	}
	r->ns = pvio_now_ns() - t0;
	free(frame);
	usleep(20000);			/* the last frames reach the TAP */
	return r->error;
}

static int guest_rx(struct pvio_netfront_queue *q, struct shm *sh,
		    const struct gcmd *c, struct gres *r)
{
	struct pvio_netfront_frame f[BATCH];
	uint64_t t0 = 0, deadline = 0, idle_until;
	char *bufs = malloc((size_t)BATCH * 2048u);
	unsigned int i;

	for (i = 0; i < BATCH; i++)
		f[i] = (struct pvio_netfront_frame){ .data = bufs + (size_t)i * 2048u,
						     .size = 2048 };
	idle_until = pvio_now_ns() + 5000000000ull;	/* the first frame */
	for (;;) {
		uint64_t now = pvio_now_ns();
		int n = pvio_netfront_recv(q, f, BATCH);

		if (n > 0) {
			if (!t0) {
				t0 = now;
				deadline = t0 + (uint64_t)c->ms * 1000000u;
			} else {
				r->frames += (uint64_t)n;
			}
			atomic_fetch_add_explicit(&sh->received, (uint64_t)n,
						  memory_order_release);
			if (now >= deadline)
				break;
			continue;
		}
		if (n < 0) {
			r->error = n;
			break;
		}
		if ((t0 && now >= deadline) || (!t0 && now >= idle_until)) {
			if (!t0)
				r->error = -ETIMEDOUT;
			break;
		}
		n = guest_sleep(q, PVIO_NETFRONT_ARM_RX);
		if (n < 0) {
			r->error = n;
			break;
		}
	}
	r->ns = t0 ? pvio_now_ns() - t0 : 0;
	atomic_store(&sh->stop, 1);
	/* drain what is still coming, uncounted */
	for (i = 0; i < 50; i++) {
		while (pvio_netfront_recv(q, f, BATCH) > 0)
			;
		usleep(1000);
	}
	free(bufs);
	return r->error;
}

static void guest_proc(struct bench_world *bw, struct shm *sh, int cmd_r,
		       int res_w)
{
	struct pvio_netfront_opts fo = { .flags = PVIO_NETFRONT_F_THREAD };
	struct pvio_platform *p = NULL;
	struct pvio_netfront *dev = NULL;
	struct pvio_netfront_queue *q = NULL;
	struct pvio_xs *x = NULL;
	struct gres r = { 0 };
	char err[PVIO_NETFRONT_ERR_MAX] = "";
	struct gcmd c;
	int rc, i;

	bench_pin(0);
	rc = pvio_platform_open(&p, bw->spec, DOM_PPS, 0);
	if (!rc)
		rc = pvio_xs_open(&x, p);
	if (!rc)
		rc = pvio_netfront_open(&dev, p, x, 0, &fo, err, sizeof(err));
	for (i = 0; !rc && i < 500 && !pvio_netfront_link_up(dev); i++)
		usleep(10000);
	if (!rc && !pvio_netfront_link_up(dev))
		rc = -ETIMEDOUT;
	if (rc)
		fprintf(stderr, "pvio-bench: guest: %s\n", err[0] ? err : strerror(-rc));
	else
		q = pvio_netfront_queue(dev, 0);
	r.error = rc;
	bench_write(res_w, &r, sizeof(r));	/* ready, or not */
	while (!rc && bench_read(cmd_r, &c, sizeof(c)) == 0 && c.kind >= 0) {
		struct pvio_netfront_stats s0, s1;

		memset(&r, 0, sizeof(r));
		pvio_netfront_queue_stats(q, &s0);
		if (c.kind == T_TX)
			guest_tx(q, &c, &r);
		else
			guest_rx(q, sh, &c, &r);
		pvio_netfront_queue_stats(q, &s1);
		r.notifies = (s1.tx_notifies - s0.tx_notifies) +
			     (s1.rx_notifies - s0.rx_notifies);
		bench_write(res_w, &r, sizeof(r));
	}
	pvio_netfront_close(dev);
	pvio_xs_close(x);
	pvio_platform_close(p);
	_exit(rc ? 1 : 0);
}

/* ---- the packet sender: dom0 -> a TAP, closed loop --------------------------------- */

static void sender_proc(struct shm *sh, const char *ifname, uint32_t len)
{
	static const uint8_t dst[6] = { 0x00, 0x16, 0x3e, 0x00, 0x00, DOM_PPS };
	struct sockaddr_ll sll = { .sll_family = AF_PACKET,
				   .sll_protocol = htons(ETH_P_ALL) };
	struct mmsghdr msgs[BATCH];
	struct iovec iov;
	uint8_t *frame = malloc(len);
	uint64_t last_rx = 0, stuck_since = 0;
	unsigned int i;
	int s, one = 1;

	bench_pin(0);
	make_frame(frame, len, dst);
	s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	sll.sll_ifindex = (int)if_nametoindex(ifname);
	if (s < 0 || !sll.sll_ifindex ||
	    bind(s, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		fprintf(stderr, "pvio-bench: packet socket on %s: %s\n", ifname,
			strerror(errno));
		_exit(1);
	}
	/* straight to the device, as pktgen: the qdisc is not what we measure */
	setsockopt(s, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
	iov = (struct iovec){ frame, len };
	memset(msgs, 0, sizeof(msgs));
	for (i = 0; i < BATCH; i++) {
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	while (!atomic_load_explicit(&sh->stop, memory_order_acquire)) {
		uint64_t rx = atomic_load_explicit(&sh->received, memory_order_acquire);
		uint64_t out = sh->sent - rx - sh->lost;
		int n;

		if (out + BATCH > WINDOW) {
			/* a frame dropped on the way never comes back: after
			 * 20 ms without progress, write the window off */
			uint64_t now = pvio_now_ns();

			if (rx != last_rx || !stuck_since) {
				last_rx = rx;
				stuck_since = now;
			} else if (now - stuck_since > 20000000u) {
				sh->lost += out;
				stuck_since = 0;
			}
			sched_yield();
			continue;
		}
		stuck_since = 0;
		n = sendmmsg(s, msgs, BATCH, MSG_DONTWAIT);
		if (n > 0)
			sh->sent += (uint64_t)n;
		else
			sched_yield();
	}
	close(s);
	free(frame);
	_exit(0);
}

static pid_t start_sender(struct shm *sh, const char *ifname, uint32_t len)
{
	pid_t pid;

	atomic_store(&sh->received, 0);
	atomic_store(&sh->stop, 0);
	sh->sent = sh->lost = 0;
	fflush(NULL);
	pid = pvio_guard_fork();
	if (pid == 0)
		sender_proc(sh, ifname, len);
	return pid;
}

/* ---- the baselines: one process on a plain TAP ---------------------------------- */

static int tap_create(char *name, size_t len)
{
	struct ifreq ifr;
	int fd, hdr = (int)VNET_HDR, s;

	snprintf(name, len, "pvbt%d", (int)getpid());
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	memcpy(ifr.ifr_name, name, strnlen(name, IFNAMSIZ - 1));
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0)
		goto fail;
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		if (s >= 0)
			close(s);
		goto fail;
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
		close(s);
		goto fail;
	}
	close(s);
	return fd;
fail:
	hdr = -errno;
	close(fd);
	return hdr;
}

/* Write @len-byte frames into the TAP for @ms: what pvio-backd's tx does
 * without a guest. Returns frames written per second, or -errno. */
static double base_tx(int tap, uint32_t len, unsigned int ms, int *err)
{
	static const uint8_t dst[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };
	struct io_uring ring;
	uint8_t *buf = calloc(1, VNET_HDR + len);
	uint64_t t0, deadline, done = 0;
	unsigned int i;

	*err = 0;
	make_frame(buf + VNET_HDR, len, dst);
	if (io_uring_queue_init(256, &ring, 0)) {
		*err = -EIO;
		free(buf);
		return 0;
	}
	t0 = pvio_now_ns();
	deadline = t0 + (uint64_t)ms * 1000000u;
	while (pvio_now_ns() < deadline) {
		struct io_uring_cqe *cqe;
		unsigned int head, n = 0;

		for (i = 0; i < BATCH; i++)
			io_uring_prep_write(io_uring_get_sqe(&ring), tap, buf,
					    VNET_HDR + len, 0);
		io_uring_submit_and_wait(&ring, BATCH);
		io_uring_for_each_cqe(&ring, head, cqe) {
			n++;
			if (cqe->res > 0)
				done++;
			else if (cqe->res != -EAGAIN && cqe->res != -ENOBUFS)
				*err = cqe->res;
		}
		io_uring_cq_advance(&ring, n);
		if (*err)
			break;
	}
	t0 = pvio_now_ns() - t0;
	io_uring_queue_exit(&ring);
	free(buf);
	return (double)done / ((double)t0 / 1e9);
}

/* Read frames from the TAP for @ms after the first, TAP_READS reads
 * posted as pvio-backd does; publishes the count for the sender. */
static double base_rx(int tap, struct shm *sh, unsigned int ms, int *err)
{
	struct io_uring ring;
	char *bufs = malloc((size_t)TAP_READS * (VNET_HDR + 65536));
	uint64_t t0 = 0, deadline = 0, got = 0, idle_until;
	unsigned int i;

	*err = 0;
	if (io_uring_queue_init(256, &ring, 0)) {
		*err = -EIO;
		free(bufs);
		return 0;
	}
	for (i = 0; i < TAP_READS; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

		io_uring_prep_read(sqe, tap, bufs + (size_t)i * (VNET_HDR + 65536),
				   VNET_HDR + 65536, 0);
		io_uring_sqe_set_data64(sqe, i);
	}
	idle_until = pvio_now_ns() + 5000000000ull;
	for (;;) {
		struct __kernel_timespec ts = { 0, 100000000 };
		struct io_uring_cqe *cqe;
		unsigned int head, n = 0, frames = 0;
		uint64_t now;

		io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, NULL);
		now = pvio_now_ns();
		io_uring_for_each_cqe(&ring, head, cqe) {
			uint64_t k = io_uring_cqe_get_data64(cqe);
			struct io_uring_sqe *sqe;

			n++;
			if (cqe->res > (int)VNET_HDR)
				frames++;
			else if (cqe->res != -EAGAIN)
				*err = cqe->res;
			sqe = io_uring_get_sqe(&ring);
			io_uring_prep_read(sqe, tap, bufs + k * (VNET_HDR + 65536),
					   VNET_HDR + 65536, 0);
			io_uring_sqe_set_data64(sqe, k);
		}
		io_uring_cq_advance(&ring, n);
		if (frames) {
			if (!t0) {
				t0 = now;
				deadline = t0 + (uint64_t)ms * 1000000u;
			} else {
				got += frames;
			}
			atomic_fetch_add_explicit(&sh->received, frames,
						  memory_order_release);
		}
		if (*err || (t0 && now >= deadline) || (!t0 && now >= idle_until))
			break;
	}
	atomic_store(&sh->stop, 1);
	io_uring_queue_exit(&ring);
	free(bufs);
	if (!t0) {
		*err = *err ? *err : -ETIMEDOUT;
		return 0;
	}
	return (double)got / ((double)(pvio_now_ns() - t0) / 1e9);
}

/* ---- TCP: one stream between two network namespaces ------------------------------ */

static int enter_netns(const char *ns)
{
	char p[256];
	int fd, rc = 0;

	if (!ns)
		return 0;
	snprintf(p, sizeof(p), "/run/netns/%s", ns);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	return rc;
}

static void unpin(void)
{
	cpu_set_t set;
	long i, n = sysconf(_SC_NPROCESSORS_ONLN);

	CPU_ZERO(&set);
	for (i = 0; i < n && i < CPU_SETSIZE; i++)
		CPU_SET(i, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/*
 * A stream of @ms from a process in namespace @src_ns (NULL: dom0) to
 * @dst_ip, listened on in namespace @dst_ns. Returns Gbit/s as the
 * receiver counts them, or a negative errno.
 */
static double tcp_stream(const char *src_ns, const char *dst_ns,
			 const char *dst_ip, unsigned int ms)
{
	int res[2], port_p[2];
	pid_t rx, tx;
	uint16_t port = 0;
	double gbps = -EIO;

	if (pipe(res) || pipe(port_p))
		return -errno;
	fflush(NULL);
	rx = pvio_guard_fork();
	if (rx == 0) {
		struct sockaddr_in sa = { .sin_family = AF_INET };
		socklen_t sl = sizeof(sa);
		char *buf = malloc(256u << 10);
		uint64_t bytes = 0, t0 = 0;
		double g = -EIO;
		ssize_t n;
		int l, c;

		unpin();
		inet_pton(AF_INET, dst_ip, &sa.sin_addr);
		l = enter_netns(dst_ns) ? -1 : socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    listen(l, 1) < 0 || getsockname(l, (struct sockaddr *)&sa, &sl) < 0) {
			port = 0;
			bench_write(port_p[1], &port, sizeof(port));
			_exit(1);
		}
		port = ntohs(sa.sin_port);
		bench_write(port_p[1], &port, sizeof(port));
		c = accept(l, NULL, NULL);
		while (c >= 0 && (n = read(c, buf, 256u << 10)) > 0) {
			if (!t0)
				t0 = pvio_now_ns();
			else
				bytes += (uint64_t)n;
		}
		if (c >= 0 && n == 0 && t0)
			g = (double)bytes * 8 / (double)(pvio_now_ns() - t0);
		bench_write(res[1], &g, sizeof(g));
		_exit(0);
	}
	close(port_p[1]);
	close(res[1]);
	if (bench_read(port_p[0], &port, sizeof(port)) || !port)
		goto out;
	tx = pvio_guard_fork();
	if (tx == 0) {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
		char *buf = malloc(TCP_CHUNK);
		uint64_t deadline;
		int s, i;

		unpin();
		memset(buf, 0x6b, TCP_CHUNK);
		inet_pton(AF_INET, dst_ip, &sa.sin_addr);
		if (enter_netns(src_ns))
			_exit(1);
		for (i = 0; i < 100; i++) {	/* neighbours resolve */
			s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0)
				break;
			close(s);
			s = -1;
			usleep(20000);
		}
		if (s < 0)
			_exit(1);
		deadline = pvio_now_ns() + (uint64_t)ms * 1000000u;
		while (pvio_now_ns() < deadline)
			if (bench_write(s, buf, TCP_CHUNK))
				_exit(1);
		close(s);
		_exit(0);
	}
	waitpid(tx, NULL, 0);
	if (bench_read(res[0], &gbps, sizeof(gbps)))
		gbps = -EIO;
out:
	kill(rx, SIGKILL);
	waitpid(rx, NULL, 0);
	close(port_p[0]);
	close(res[0]);
	return gbps;
}

/* ---- orchestration --------------------------------------------------------------- */

struct net_opts {
	unsigned int ms, runs, spin_us;
	bool json, no_tcp;
	unsigned int only;	/* bitmask of tests, 0: all */
};

struct npoint {
	double v[32], base[32], ratio[32];	/* pps, or Gbit/s for TCP */
	struct bench_stat3 s, sb;
	double ratio_med;
	double notif_per_pkt;		/* both sides (TCP: pvio-backd's) */
	uint64_t lost;			/* rx: frames the sender wrote off */
	bool done;
};

static int sh_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int sh_run(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	return rc == 0 ? 0 : -EIO;
}

struct env {
	struct bench_world bw;
	struct shm *sh;
	pid_t guest, netfront;
	int cmd_w, res_r;
	int tap;
	char tap_name[32];
	char ns[64], veth[2][32];
	const struct net_opts *o;
};

static uint64_t vif_notifies(struct env *e, unsigned int dom)
{
	static char buf[1 << 16];

	if (bench_backd_stats(&e->bw, (int)dom, 0, buf, sizeof(buf)))
		return 0;
	return bench_json_sum(buf, "notifications_sent");
}

static uint64_t vif_packets(struct env *e, unsigned int dom)
{
	static char buf[1 << 16];

	if (bench_backd_stats(&e->bw, (int)dom, 0, buf, sizeof(buf)))
		return 0;
	return bench_json_sum(buf, "tx") + bench_json_sum(buf, "rx");
}

static int guest_cmd(struct env *e, int kind, uint32_t len, struct gres *r)
{
	struct gcmd c = { kind, len, e->o->ms, e->o->spin_us };

	if (bench_write(e->cmd_w, &c, sizeof(c)) || bench_read(e->res_r, r, sizeof(*r)))
		return -EIO;
	return r->error;
}

/* One pair of a pps test: pvio, then the baseline. */
static int pps_pair(struct env *e, const struct test *t, unsigned int run,
		    struct npoint *pt, double *notif, double *pkts)
{
	char vif[32];
	struct gres r;
	uint64_t n0, n1, c0, c1;
	pid_t snd;
	int rc, err;

	snprintf(vif, sizeof(vif), "vif%u.0", DOM_PPS);
	n0 = vif_notifies(e, DOM_PPS);
	if (t->kind == T_TX) {
		c0 = if_stat(vif, "rx_packets");
		rc = guest_cmd(e, T_TX, t->len, &r);
		c1 = if_stat(vif, "rx_packets");
		if (rc)
			return rc;
		/* delivered, over the guest's sending time */
		pt->v[run] = (double)(c1 - c0) / ((double)r.ns / 1e9);
		*pkts += (double)(c1 - c0);
	} else {
		snd = start_sender(e->sh, vif, t->len);
		rc = guest_cmd(e, T_RX, t->len, &r);
		atomic_store(&e->sh->stop, 1);
		waitpid(snd, NULL, 0);
		if (rc)
			return rc;
		pt->v[run] = (double)r.frames / ((double)r.ns / 1e9);
		pt->lost += e->sh->lost;
		*pkts += (double)r.frames;
	}
	n1 = vif_notifies(e, DOM_PPS);
	*notif += (double)(r.notifies + (n1 - n0));

	bench_pin(1);			/* where pvio-backd runs */
	if (t->kind == T_TX) {
		c0 = if_stat(e->tap_name, "rx_packets");
		base_tx(e->tap, t->len, e->o->ms, &err);
		c1 = if_stat(e->tap_name, "rx_packets");
		/* what reached the TAP, as for pvio */
		pt->base[run] = (double)(c1 - c0) / ((double)e->o->ms / 1e3);
	} else {
		snd = start_sender(e->sh, e->tap_name, t->len);
		pt->base[run] = base_rx(e->tap, e->sh, e->o->ms, &err);
		waitpid(snd, NULL, 0);
	}
	bench_pin(0);
	if (err)
		return err;
	pt->ratio[run] = pt->base[run] > 0 ? pt->v[run] / pt->base[run] : 0;
	return 0;
}

static int tcp_setup(struct env *e)
{
	const char *nf = bench_prog_path("pvio-netfront", "PVIO_NETFRONT");
	int i, pid = (int)getpid();	/* up to 7 digits: "pvbv" + 7 fit IFNAMSIZ */

	snprintf(e->ns, sizeof(e->ns), "pvio-bench-%d", pid);
	snprintf(e->veth[0], sizeof(e->veth[0]), "pvbv%d", pid);
	snprintf(e->veth[1], sizeof(e->veth[1]), "pvbw%d", pid);
	if (bench_attach_vif(&e->bw, DOM_TCP))
		return -EIO;
	/* registered before it is made (a kill may land in between); the
	 * veth pair is made once the namespace is ours alone */
	pvio_guard_cmd("ip link del %s 2>/dev/null; ip netns del %s 2>/dev/null",
		       e->veth[0], e->ns);
	if (sh_run("ip netns add %s", e->ns)) {
		/* it existed: not ours */
		pvio_guard_cmd_cancel("ip link del %s 2>/dev/null; ip netns del %s 2>/dev/null",
				      e->veth[0], e->ns);
		return -EIO;
	}
	fflush(NULL);
	e->netfront = pvio_guard_fork();
	if (e->netfront == 0) {
		char dom[16], spin[16], logp[PVIO_PATH_BUF];
		FILE *f;

		snprintf(dom, sizeof(dom), "%u", DOM_TCP);
		snprintf(spin, sizeof(spin), "%u", e->o->spin_us);
		snprintf(logp, sizeof(logp), "%s/netfront.log", e->bw.dir);
		f = freopen("/dev/null", "w", stdout);
		f = freopen(logp, "w", stderr);
		(void)f;
		if (enter_netns(e->ns))
			_exit(127);
		execl(nf, "pvio-netfront", "-p", e->bw.spec, "-d", dom, "-i", "eth0",
		      "--spin-us", spin, "-l", "warn", (char *)NULL);
		fprintf(stderr, "pvio-bench: cannot run %s: %s\n", nf, strerror(errno));
		_exit(127);
	}
	for (i = 0; i < 500; i++) {
		if (sh_run("ip -n %s link show eth0 >/dev/null 2>&1", e->ns) == 0)
			break;
		usleep(10000);
	}
	return sh_run("ip -n %s link set lo up && "
		      "ip -n %s addr add 10.250.0.2/24 dev eth0 && ip -n %s link set eth0 up && "
		      "ip addr add 10.250.0.1/24 dev vif%u.0 && "
		      "ip link add %s type veth peer name %s netns %s && "
		      "ip addr add 10.251.0.1/24 dev %s && ip link set %s up && "
		      "ip -n %s addr add 10.251.0.2/24 dev %s && ip -n %s link set %s up",
		      e->ns, e->ns, e->ns, DOM_TCP, e->veth[0], e->veth[1], e->ns,
		      e->veth[0], e->veth[0], e->ns, e->veth[1], e->ns, e->veth[1]);
}

static void tcp_teardown(struct env *e)
{
	if (e->netfront > 0) {
		kill(e->netfront, SIGTERM);
		waitpid(e->netfront, NULL, 0);
		e->netfront = 0;
	}
	if (e->veth[0][0])
		sh_run("ip link del %s 2>/dev/null", e->veth[0]);
	if (e->ns[0])
		sh_run("ip netns del %s 2>/dev/null", e->ns);
	e->ns[0] = e->veth[0][0] = 0;
}

static int tcp_pair(struct env *e, const struct test *t, unsigned int run,
		    struct npoint *pt, double *notif, double *pkts)
{
	bool up = t->kind == T_TCP_UP;
	uint64_t n0 = vif_notifies(e, DOM_TCP), p0 = vif_packets(e, DOM_TCP);
	double g;

	g = tcp_stream(up ? e->ns : NULL, up ? NULL : e->ns,
		       up ? "10.250.0.1" : "10.250.0.2", e->o->ms);
	if (g <= 0)
		return -EIO;
	pt->v[run] = g;
	*notif += (double)(vif_notifies(e, DOM_TCP) - n0);
	*pkts += (double)(vif_packets(e, DOM_TCP) - p0);
	g = tcp_stream(up ? e->ns : NULL, up ? NULL : e->ns,
		       up ? "10.251.0.1" : "10.251.0.2", e->o->ms);
	if (g <= 0)
		return -EIO;
	pt->base[run] = g;
	pt->ratio[run] = pt->v[run] / pt->base[run];
	return 0;
}

static void print_results(const struct net_opts *o, struct npoint *pts)
{
	unsigned int i;
	bool first = true;

	if (o->json) {
		printf("{\"benchmark\": \"pvio-bench net\", \"time_ms\": %u, \"runs\": %u, "
		       "\"results\": [", o->ms, o->runs);
		for (i = 0; i < NR_TESTS; i++) {
			const struct test *t = &tests[i];
			struct npoint *pt = &pts[i];

			if (!pt->done)
				continue;
			if (t->kind == T_TX || t->kind == T_RX)
				printf("%s\n  {\"test\": \"%s\", \"frame_bytes\": %u, "
				       "\"pvio\": {\"pps\": %.0f, \"pps_min\": %.0f, "
				       "\"pps_max\": %.0f, \"gbit_s\": %.3f, "
				       "\"notifications_per_packet\": %.4f, \"lost\": %llu}, "
				       "\"baseline_tap_io_uring\": {\"pps\": %.0f, \"gbit_s\": %.3f}, "
				       "\"ratio\": %.3f}",
				       first ? "" : ",", t->name, t->len, pt->s.med, pt->s.min,
				       pt->s.max, pt->s.med * t->len * 8 / 1e9, pt->notif_per_pkt,
				       (unsigned long long)pt->lost, pt->sb.med,
				       pt->sb.med * t->len * 8 / 1e9, pt->ratio_med);
			else
				printf("%s\n  {\"test\": \"%s\", \"pvio\": {\"gbit_s\": %.3f, "
				       "\"gbit_s_min\": %.3f, \"gbit_s_max\": %.3f, "
				       "\"backend_notifications_per_packet\": %.4f}, "
				       "\"baseline_veth\": {\"gbit_s\": %.3f}, \"ratio\": %.3f}",
				       first ? "" : ",", t->name, pt->s.med, pt->s.min, pt->s.max,
				       pt->notif_per_pkt, pt->sb.med, pt->ratio_med);
			first = false;
		}
		printf("\n]}\n");
		return;
	}
	printf("pvio-bench net: sim domU netfront <-> pvio-backd <-> vif TAP; baselines in the "
	       "same run:\nframes into / out of a plain TAP with io_uring from one process, TCP "
	       "over a veth pair;\n%u ms x %u paired runs; ratio = median of pvio/baseline "
	       "pairs\n", o->ms, o->runs);
	printf("%-18s | %11s %8s %9s | %11s %8s | %6s\n", "test", "pvio pps", "Gbit/s",
	       "notif/pkt", "base pps", "Gbit/s", "ratio");
	for (i = 0; i < NR_TESTS; i++) {
		const struct test *t = &tests[i];
		struct npoint *pt = &pts[i];

		if (!pt->done)
			continue;
		if (t->kind == T_TX || t->kind == T_RX)
			printf("%-18s | %11.0f %8.3f %9.4f | %11.0f %8.3f | %5.2fx\n", t->name,
			       pt->s.med, pt->s.med * t->len * 8 / 1e9, pt->notif_per_pkt,
			       pt->sb.med, pt->sb.med * t->len * 8 / 1e9, pt->ratio_med);
		else
			printf("%-18s | %11s %8.3f %9.4f | %11s %8.3f | %5.2fx\n", t->name, "-",
			       pt->s.med, pt->notif_per_pkt, "(veth)", pt->sb.med, pt->ratio_med);
	}
	printf("notif/pkt: event-channel notifications (guest and pvio-backd; TCP: pvio-backd "
	       "only) per packet\n");
}

int bench_net(int argc, char **argv)
{
	struct net_opts o = { .ms = 1000, .runs = 3, .spin_us = 50 };
	struct npoint pts[NR_TESTS];
	struct env e;
	struct gres r;
	int cmd[2], res[2], rc = 0, i;
	unsigned int ti, run;

	memset(pts, 0, sizeof(pts));
	memset(&e, 0, sizeof(e));
	e.o = &o;
	e.tap = -1;
	for (i = 1; i < argc; i++) {
		if (bench_opt_common(argc, argv, &i, &o.ms, &o.runs, &o.spin_us,
				     &o.json))
			continue;
		if (!strcmp(argv[i], "--test") && i + 1 < argc) {
			for (ti = 0; ti < NR_TESTS; ti++)
				if (!strcmp(argv[i + 1], tests[ti].name))
					break;
			if (ti == NR_TESTS)
				pvio_usage_error("pvio-bench", "no test '%s'", argv[i + 1]);
			o.only |= 1u << ti;
			i++;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			bench_usage(stdout);
			exit(0);
		} else {
			pvio_usage_error("pvio-bench", "net: unknown option '%s'", argv[i]);
		}
	}
	if (geteuid() != 0) {
		fprintf(stderr, "pvio-bench net: needs root (TAP devices, namespaces)\n");
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	e.sh = mmap(NULL, sizeof(*e.sh), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (e.sh == MAP_FAILED)
		return 1;
	memset(e.sh, 0, sizeof(*e.sh));
	e.tap = tap_create(e.tap_name, sizeof(e.tap_name));
	if (e.tap < 0) {
		fprintf(stderr, "pvio-bench: cannot create a TAP: %s\n", strerror(-e.tap));
		return 1;
	}
	if (bench_world_up(&e.bw, o.spin_us, false) ||
	    bench_attach_vif(&e.bw, DOM_PPS) || pipe(cmd) || pipe(res)) {
		bench_world_down(&e.bw);
		close(e.tap);
		return 1;
	}
	fflush(NULL);
	e.guest = pvio_guard_fork();
	if (e.guest == 0) {
		close(cmd[1]);
		close(res[0]);
		guest_proc(&e.bw, e.sh, cmd[0], res[1]);
	}
	close(cmd[0]);
	close(res[1]);
	e.cmd_w = cmd[1];
	e.res_r = res[0];
	bench_pin(0);
	if (bench_read(e.res_r, &r, sizeof(r)) || r.error) {
		fprintf(stderr, "pvio-bench: the guest's netfront did not connect\n");
		rc = 1;
	}
	for (ti = 0; ti < NR_TESTS && !rc && !interrupted; ti++) {
		const struct test *t = &tests[ti];
		struct npoint *pt = &pts[ti];
		double notif = 0, pkts = 0;

		if (o.only && !(o.only & (1u << ti)))
			continue;
		if ((t->kind == T_TCP_UP || t->kind == T_TCP_DOWN) && !e.ns[0] &&
		    tcp_setup(&e)) {
			fprintf(stderr, "pvio-bench: cannot set up the TCP namespaces\n");
			rc = 1;
			break;
		}
		for (run = 0; run < o.runs && !rc && !interrupted; run++) {
			int err = (t->kind == T_TX || t->kind == T_RX)
					  ? pps_pair(&e, t, run, pt, &notif, &pkts)
					  : tcp_pair(&e, t, run, pt, &notif, &pkts);

			if (err) {
				fprintf(stderr, "pvio-bench: %s: %s\n", t->name, strerror(-err));
				rc = 1;
			}
		}
		if (rc || interrupted)
			break;
		pt->s = bench_stat3(pt->v, o.runs);
		pt->sb = bench_stat3(pt->base, o.runs);
		pt->ratio_med = bench_stat3(pt->ratio, o.runs).med;
		pt->notif_per_pkt = pkts ? notif / pkts : 0;
		pt->done = true;
	}
	if (getenv("PVIO_BENCH_DEBUG")) {
		static char buf[1 << 16];

		if (!bench_backd_stats(&e.bw, -1, -1, buf, sizeof(buf)))
			fputs(buf, stderr);
	}
	{
		struct gcmd c = { -1, 0, 0, 0 };

		bench_write(e.cmd_w, &c, sizeof(c));
	}
	waitpid(e.guest, NULL, 0);
	tcp_teardown(&e);
	bench_world_down(&e.bw);
	close(e.tap);
	if (interrupted)
		return 130;
	if (rc)
		return 1;
	print_results(&o, pts);
	return 0;
}
