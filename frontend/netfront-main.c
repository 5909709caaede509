// SPDX-License-Identifier: MIT
/*
 * pvio-netfront: a vif of this domain as a TAP device in the current
 * network namespace. It runs the netfront handshake (libpvio), creates the
 * TAP (IFF_VNET_HDR, so offloads travel as virtio-net headers), gives it
 * the vif's MAC, and moves frames both ways in batches, without copying
 * them in user space: the TAP is read straight into the tx pool's granted
 * pages (up to 64 frames per publication and at most one notification),
 * and received frames are written to the TAP straight from the rx pool's
 * pages, which then go back on the ring. The carrier
 * follows the backend's Connected state. SIGTERM/SIGINT: Closing -> Closed,
 * the TAP goes away with its last fd. SIGUSR1: the counters to the log.
 *
 * Exit status: 0 after a signal; 1 when the device could not be set up or
 * ended (the backend closed it or broke the protocol); 2 for bad usage.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <pvio/netfront.h>
#include <pvio/netif.h>
#include <pvio/platform.h>
#include <pvio/ring.h>
#include <pvio/xenbus.h>

#include "util.h"

#define BATCH		64u
#define ROUND_BATCHES	4u	/* per direction and queue, per round */
#define VNET_HLEN	((uint32_t)sizeof(struct virtio_net_hdr))
#define PAGE		4096u
/* scratch: a virtio-net header and the largest frame either way */
#define SCRATCH		(VNET_HLEN + PVIO_NETFRONT_MAX_RX_FRAME)

static const char *prog = "pvio-netfront";

#define die_usage(...) pvio_usage_error(prog, __VA_ARGS__)

struct nq {
	unsigned int idx;
	struct pvio_netfront_queue *q;
	int tap;
	/* tx: pool pages reserved for the next TAP read (nr 0: none) */
	struct pvio_netfront_txbuf rsv;
	struct virtio_net_hdr tx_vh;
	uint32_t tx_max;		/* bytes a reservation holds */
	bool tx_blocked;
	/* rx: frames in the pool */
	struct pvio_netfront_rxbuf rxb[BATCH];
	/* the rare frame that needs work on a contiguous copy */
	uint8_t *scratch;
	/* our own counters */
	uint64_t tx_dropped, tx_sw_csum, rx_dropped, tap_errors;
};

static struct {
	const char *spec;
	unsigned int domid;
	bool have_domid;
	unsigned int devid;
	char ifname[IFNAMSIZ];
	unsigned int queues;
	unsigned int flags;
	unsigned int mtu;
	unsigned int timeout_ms;
	unsigned int spin_us;
} opt = {
	.ifname = "eth0",
	.queues = 1,
	.mtu = 1500,
	.spin_us = 50,
};

static struct pvio_netfront *dev;
static struct pvio_netfront_info info;
static struct nq nqs[PVIO_NETFRONT_MAX_QUEUES];
static unsigned int nr_nq;
static bool link_changed, dead_event;

static void usage(FILE *f)
{
	fprintf(f,
"usage: pvio-netfront [options]\n"
"Run vif DEVID of this domain as a TAP device in the current network\n"
"namespace.\n\n"
"  -p, --platform P   sim, sim:DIR or xen (default: $PVIO_PLATFORM, else sim)\n"
"  -d, --domid N      the domain this process plays on sim\n"
"                     (default: $PVIO_DOMID)\n"
"      --devid N      the vif, /local/domain/<self>/device/vif/N (default 0)\n"
"  -i, --ifname NAME  the TAP device (default eth0)\n"
"  -q, --queues N     queues to ask for, 1..%u (default 1), a TAP queue each\n"
"      --split        separate tx/rx event channels when offered (default)\n"
"      --no-split     one event channel per queue\n"
"      --offload      checksum offload and GSO when offered (default)\n"
"      --no-offload   no checksum offload, GSO or scatter-gather: checksums\n"
"                     are computed in software\n"
"      --no-gso       checksum offload only\n"
"      --mtu N        68..65535 (default 1500, at most the vif's)\n"
"      --timeout MS   each handshake wait (default 10000)\n"
"      --spin-us N    poll the rings and the TAP this long after the last\n"
"                     frame before sleeping (default 50; 0: never poll)\n"
"  -l, --log-level L  err|warn|info|debug (default info)\n"
"      --version\n"
"  -h, --help\n", PVIO_NETFRONT_MAX_QUEUES);
}

static void parse_args(int argc, char **argv)
{
	enum { O_DEVID = 256, O_SPLIT, O_NO_SPLIT, O_OFFLOAD, O_NO_OFFLOAD,
	       O_NO_GSO, O_MTU, O_TIMEOUT, O_SPIN };
	static const struct option o[] = {
		{ "platform", required_argument, NULL, 'p' },
		{ "domid", required_argument, NULL, 'd' },
		{ "devid", required_argument, NULL, O_DEVID },
		{ "ifname", required_argument, NULL, 'i' },
		{ "queues", required_argument, NULL, 'q' },
		{ "split", no_argument, NULL, O_SPLIT },
		{ "no-split", no_argument, NULL, O_NO_SPLIT },
		{ "offload", no_argument, NULL, O_OFFLOAD },
		{ "no-offload", no_argument, NULL, O_NO_OFFLOAD },
		{ "no-gso", no_argument, NULL, O_NO_GSO },
		{ "mtu", required_argument, NULL, O_MTU },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "spin-us", required_argument, NULL, O_SPIN },
		{ "log-level", required_argument, NULL, 'l' },
		PVIO_VERSION_OPTION,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *env;
	int c, lvl;
	size_t i;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":p:d:i:q:l:h", o, NULL)) != -1) {
		switch (c) {
		case PVIO_OPT_VERSION:
			pvio_version("pvio-netfront");
		case 'p':
			if (strcmp(optarg, "xen") && strcmp(optarg, "sim") &&
			    strncmp(optarg, "sim:", 4))
				die_usage("bad --platform '%s' (sim, sim:DIR "
					  "or xen)", optarg);
			opt.spec = optarg;
			break;
		case 'd':
			if (pvio_parse_uint(optarg, 1, 0x7fef, &opt.domid))
				die_usage("bad --domid '%s' (1..32751)",
					  optarg);
			opt.have_domid = true;
			break;
		case O_DEVID:
			if (pvio_parse_uint(optarg, 0, 0xffff, &opt.devid))
				die_usage("bad --devid '%s' (0..65535)",
					  optarg);
			break;
		case 'i':
			if (strlen(optarg) == 0 || strlen(optarg) >= IFNAMSIZ)
				die_usage("bad --ifname '%s' (1..%d "
					  "characters)", optarg, IFNAMSIZ - 1);
			for (i = 0; optarg[i]; i++)
				if (optarg[i] == '/' || optarg[i] == ':' ||
				    optarg[i] <= ' ' || optarg[i] == '%')
					die_usage("bad --ifname '%s'", optarg);
			snprintf(opt.ifname, sizeof(opt.ifname), "%s", optarg);
			break;
		case 'q':
			if (pvio_parse_uint(optarg, 1, PVIO_NETFRONT_MAX_QUEUES,
					    &opt.queues))
				die_usage("bad --queues '%s' (1..%u)", optarg,
					  PVIO_NETFRONT_MAX_QUEUES);
			break;
		case O_SPLIT:
			opt.flags &= ~(unsigned int)PVIO_NETFRONT_F_NO_SPLIT;
			break;
		case O_NO_SPLIT:
			opt.flags |= PVIO_NETFRONT_F_NO_SPLIT;
			break;
		case O_OFFLOAD:
			opt.flags &= ~(unsigned int)(PVIO_NETFRONT_F_NO_CSUM |
						     PVIO_NETFRONT_F_NO_GSO |
						     PVIO_NETFRONT_F_NO_SG);
			break;
		case O_NO_OFFLOAD:
			opt.flags |= PVIO_NETFRONT_F_NO_CSUM |
				     PVIO_NETFRONT_F_NO_GSO |
				     PVIO_NETFRONT_F_NO_SG;
			break;
		case O_NO_GSO:
			opt.flags |= PVIO_NETFRONT_F_NO_GSO;
			break;
		case O_MTU:
			if (pvio_parse_uint(optarg, 68, 65535, &opt.mtu))
				die_usage("bad --mtu '%s' (68..65535)", optarg);
			break;
		case O_TIMEOUT:
			if (pvio_parse_uint(optarg, 1, 3600000,
					    &opt.timeout_ms))
				die_usage("bad --timeout '%s' (1..3600000 ms)",
					  optarg);
			break;
		case O_SPIN:
			if (pvio_parse_uint(optarg, 0, 1000000, &opt.spin_us))
				die_usage("bad --spin-us '%s' (0..1000000)",
					  optarg);
			break;
		case 'l':
			lvl = pvio_log_parse_level(optarg);
			if (lvl < 0)
				die_usage("bad --log-level '%s' "
					  "(err|warn|info|debug)", optarg);
			pvio_log_level = lvl;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			pvio_usage_bad_option(prog, c, argv);
		}
	}
	if (optind != argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (!opt.spec) {
		env = getenv("PVIO_PLATFORM");
		opt.spec = env && *env ? env : NULL;
	}
	if (!opt.have_domid && (env = getenv("PVIO_DOMID")) && *env) {
		if (pvio_parse_uint(env, 1, 0x7fef, &opt.domid))
			die_usage("bad $PVIO_DOMID '%s' (1..32751)", env);
		opt.have_domid = true;
	}
	if ((!opt.spec || strncmp(opt.spec, "sim", 3) == 0) && !opt.have_domid)
		die_usage("which domain? --domid or $PVIO_DOMID (pvio-ctl run "
			  "sets it)");
}

/* ---- the TAP ------------------------------------------------------------- */

static int tap_open(const char *name, bool multi)
{
	struct ifreq ifr;
	int fd, hdr = (int)VNET_HLEN;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (multi)
		ifr.ifr_flags |= IFF_MULTI_QUEUE;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 ||
	    ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return fd;
}

static int sock_ioctl(unsigned long req, struct ifreq *ifr)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;

	if (s < 0)
		return -errno;
	snprintf(ifr->ifr_name, sizeof(ifr->ifr_name), "%s", opt.ifname);
	if (ioctl(s, req, ifr) < 0)
		rc = -errno;
	close(s);
	return rc;
}

/* Offloads, MAC, MTU, up: all by ioctl. */
static int tap_configure(void)
{
	unsigned int off = 0, mtu = opt.mtu < info.mtu ? opt.mtu : info.mtu;
	struct ifreq ifr;
	int rc;

	/* What the kernel may hand us is what we may put on the ring (the
	 * rest of PVIO_NET_TUN_OFFLOADS is then off). IPv6 checksums the
	 * backend cannot take are filled in here. */
	if (info.features & PVIO_NETFRONT_FEAT_TX_CSUM) {
		off |= TUN_F_CSUM;
		if (info.features & PVIO_NETFRONT_FEAT_TX_GSO_TCPV4)
			off |= TUN_F_TSO4;
		if (info.features & PVIO_NETFRONT_FEAT_TX_GSO_TCPV6)
			off |= TUN_F_TSO6;
	}
	off &= PVIO_NET_TUN_OFFLOADS;
	if (ioctl(nqs[0].tap, TUNSETOFFLOAD, off) < 0) {
		rc = -errno;
		log_err("%s: TUNSETOFFLOAD %#x: %s", opt.ifname, off,
			strerror(-rc));
		return rc;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
	memcpy(ifr.ifr_hwaddr.sa_data, info.mac, 6);
	rc = sock_ioctl(SIOCSIFHWADDR, &ifr);
	if (rc) {
		log_err("%s: cannot set the MAC address: %s", opt.ifname,
			strerror(-rc));
		return rc;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_mtu = (int)mtu;
	rc = sock_ioctl(SIOCSIFMTU, &ifr);
	if (rc) {
		log_err("%s: cannot set MTU %u: %s", opt.ifname, mtu,
			strerror(-rc));
		return rc;
	}
	memset(&ifr, 0, sizeof(ifr));
	rc = sock_ioctl(SIOCGIFFLAGS, &ifr);
	if (!rc) {
		ifr.ifr_flags |= IFF_UP;
		rc = sock_ioctl(SIOCSIFFLAGS, &ifr);
	}
	if (rc) {
		log_err("%s: cannot set it up: %s", opt.ifname, strerror(-rc));
		return rc;
	}
	log_debug("%s: offloads %#x, mtu %u", opt.ifname, off, mtu);
	return 0;
}

static void set_carrier(bool up)
{
	int on = up;

	if (ioctl(nqs[0].tap, TUNSETCARRIER, &on) < 0)
		log_warn("%s: TUNSETCARRIER: %s", opt.ifname, strerror(errno));
	log_info("%s: carrier %s (backend %s)", opt.ifname, up ? "on" : "off",
		 up ? "Connected" : "not Connected");
}

/* ---- TAP -> ring --------------------------------------------------------- */

/* RFC 1071 over the frame from @start, stored at start + @offset: the
 * kernel's CHECKSUM_PARTIAL convention (the field holds the pseudo-header
 * sum), for positions pvio_net_from_vnet() does not know. */
static int csum_at(uint8_t *f, uint32_t len, uint32_t start, uint32_t offset)
{
	uint32_t s = 0, i;
	uint16_t c;

	if (start >= len || offset + 2 > len - start)
		return -EINVAL;
	for (i = start; i + 1 < len; i += 2)
		s += (uint32_t)(f[i] << 8 | f[i + 1]);
	if (i < len)
		s += (uint32_t)f[i] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	c = (uint16_t)~s;
	f[start + offset] = (uint8_t)(c >> 8);
	f[start + offset + 1] = (uint8_t)c;
	return 0;
}

/*
 * One frame from the TAP into netif terms: true to send it. Checksums the
 * backend cannot take are computed here.
 */
static bool tx_prepare(struct nq *n, uint8_t *buf, uint32_t got,
		       struct pvio_netfront_frame *f)
{
	const struct virtio_net_hdr *vh = (const struct virtio_net_hdr *)buf;
	uint8_t *frame = buf + VNET_HLEN;
	uint32_t len = got - VNET_HLEN;
	struct pvio_net_hdrs h;
	bool sw = false;

	if (got < VNET_HLEN + PVIO_NETFRONT_MIN_FRAME ||
	    len > PVIO_NETFRONT_MAX_TX_FRAME)
		return false;
	f->data = frame;
	f->len = len;
	if (pvio_net_from_vnet(vh, frame, len, &f->off)) {
		/* a checksum at an unusual place: fill it, send plain */
		if (vh->gso_type != VIRTIO_NET_HDR_GSO_NONE ||
		    !(vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) ||
		    csum_at(frame, len, vh->csum_start, vh->csum_offset))
			return false;
		memset(&f->off, 0, sizeof(f->off));
		f->off.data_validated = true;
		n->tx_sw_csum++;
		return true;
	}
	if (f->off.csum_blank) {
		if (!(info.features & PVIO_NETFRONT_FEAT_TX_CSUM))
			sw = true;
		else if (!(info.features & PVIO_NETFRONT_FEAT_TX_CSUM_IPV6) &&
			 pvio_net_parse(frame, len, &h) == 0 && h.ipv6)
			sw = true;
	}
	if (sw) {
		/* no GSO without checksum offload: TUNSETOFFLOAD says so */
		if (f->off.gso_type || pvio_net_csum_fill(frame, len))
			return false;
		f->off.csum_blank = false;
		f->off.data_validated = true;
		n->tx_sw_csum++;
	}
	if (len > PVIO_PAGE_SIZE && !(info.features & PVIO_NETFRONT_FEAT_SG))
		return false;
	return true;
}

/* Gather a reservation's first @len bytes (after the header) into the
 * scratch buffer, header first. */
static uint8_t *gather_tx(struct nq *n, uint32_t len)
{
	uint32_t done = 0;
	unsigned int i;

	memcpy(n->scratch, &n->tx_vh, VNET_HLEN);
	for (i = 0; done < len; i++) {
		uint32_t c = len - done < PAGE ? len - done : PAGE;

		memcpy(n->scratch + VNET_HLEN + done, n->rsv.iov[i].iov_base, c);
		done += c;
	}
	return n->scratch;
}

/*
 * The frame just read into the reservation (@got bytes with the header):
 * committed in place when the backend can take it as it is; else (a
 * checksum to compute here, headers out of the first page) copied out and
 * sent the copying way. Return -errno once the device is dead.
 */
static int tx_one(struct nq *n, uint32_t got)
{
	uint32_t len = got - VNET_HLEN, head;
	const uint8_t *frame = n->rsv.iov[0].iov_base;
	struct pvio_netfront_frame f;
	struct pvio_net_offload off;
	struct pvio_net_hdrs h;
	bool sw = false;
	int rc;

	if (got < VNET_HLEN + PVIO_NETFRONT_MIN_FRAME ||
	    len > PVIO_NETFRONT_MAX_TX_FRAME) {
		pvio_netfront_tx_cancel(n->q, &n->rsv);
		n->tx_dropped++;
		return 0;
	}
	head = len < PAGE ? len : PAGE;
	if (pvio_net_from_vnet_head(&n->tx_vh, frame, head, len, &off) == 0) {
		if (off.csum_blank) {
			if (!(info.features & PVIO_NETFRONT_FEAT_TX_CSUM))
				sw = true;
			else if (!(info.features &
				   PVIO_NETFRONT_FEAT_TX_CSUM_IPV6) &&
				 pvio_net_parse_head(frame, head, len, &h) == 0 &&
				 h.ipv6)
				sw = true;
		}
		if (!sw) {
			rc = pvio_netfront_tx_commit(n->q, &n->rsv, len, &off);
			if (rc == -EINVAL || rc == -EMSGSIZE) {
				n->tx_dropped++;	/* not for this backend */
				return 0;
			}
			return rc;
		}
	}
	/* the slow way: the reservation's room takes the copy at once */
	gather_tx(n, len);
	pvio_netfront_tx_cancel(n->q, &n->rsv);
	if (!tx_prepare(n, n->scratch, got, &f)) {
		n->tx_dropped++;
		return 0;
	}
	rc = pvio_netfront_send(n->q, &f, 1);
	if (rc == 1)
		return 0;
	if (rc == -EPROTO || rc == -ENOTCONN)
		return rc;
	n->tx_dropped++;
	return 0;
}

/*
 * TAP -> ring: read frames into reserved pool pages, up to ROUND_BATCHES
 * batches, one publication per batch. Return -errno when the device is
 * dead, 1 when the budget ran out with the TAP perhaps not drained
 * (edge-triggered: come back), else 0 (TAP empty, or the ring full:
 * tx_blocked).
 */
static int tx_work(struct nq *n)
{
	struct iovec iov[1 + PVIO_NETFRONT_TX_PAGES];
	unsigned int k, queued = 0;
	int rc = 0, more = 1;

	for (k = 0; k < ROUND_BATCHES * BATCH; k++) {
		ssize_t got;

		if (!n->rsv.nr) {
			rc = pvio_netfront_tx_reserve(n->q, &n->rsv, n->tx_max);
			if (rc == -EAGAIN) {
				n->tx_blocked = true;
				rc = 0;
				more = 0;
				break;
			}
			if (rc < 0)
				break;
		}
		n->tx_blocked = false;
		iov[0].iov_base = &n->tx_vh;
		iov[0].iov_len = VNET_HLEN;
		memcpy(iov + 1, n->rsv.iov, n->rsv.nr * sizeof(iov[0]));
		got = readv(n->tap, iov, (int)(1 + n->rsv.nr));
		if (got < 0) {
			if (errno == EINTR) {
				k--;
				continue;
			}
			if (errno != EAGAIN)
				n->tap_errors++;
			more = 0;	/* kept for the next frame */
			break;
		}
		rc = tx_one(n, (uint32_t)got);
		if (rc < 0)
			break;
		if (++queued % BATCH == 0)
			pvio_netfront_tx_push(n->q);
	}
	if (queued % BATCH)
		pvio_netfront_tx_push(n->q);
	return rc < 0 ? rc : more;
}

/* ---- ring -> TAP --------------------------------------------------------- */

/* One received frame to the TAP, from the pool. */
static void rx_one(struct nq *n, const struct pvio_netfront_rxbuf *b)
{
	struct iovec iov[1 + PVIO_NETFRONT_RX_SLOTS];
	struct virtio_net_hdr vh;
	unsigned int i;
	int rc;

	/* Linux netfront would recompute the pseudo-header sum of a GSO
	 * frame that is not csum_blank */
	if (b->off.gso_type && !b->off.csum_blank) {
		n->rx_dropped++;
		return;
	}
	rc = pvio_net_to_vnet_head(b->iov[0].iov_base, b->iov[0].iov_len,
				   b->len, &b->off, &vh);
	if (rc && b->nr > 1) {
		/* headers split across slots: look at a contiguous copy */
		uint32_t done = 0;

		for (i = 0; i < b->nr; i++) {
			memcpy(n->scratch + done, b->iov[i].iov_base,
			       b->iov[i].iov_len);
			done += (uint32_t)b->iov[i].iov_len;
		}
		rc = pvio_net_to_vnet(n->scratch, done, &b->off, &vh);
	}
	if (rc) {
		n->rx_dropped++;
		return;
	}
	iov[0].iov_base = &vh;
	iov[0].iov_len = VNET_HLEN;
	memcpy(iov + 1, b->iov, b->nr * sizeof(iov[0]));
	if (writev(n->tap, iov, (int)(1 + b->nr)) < 0)
		n->rx_dropped++;	/* down, or no room */
}

/* Up to ROUND_BATCHES batches to the TAP. Return -errno when the device
 * is dead, 1 when the budget ran out, else 0. */
static int rx_work(struct nq *n)
{
	unsigned int batches;

	for (batches = 0; batches < ROUND_BATCHES; batches++) {
		int got = pvio_netfront_recv_zc(n->q, n->rxb, BATCH), k;

		if (got < 0)
			return got;
		for (k = 0; k < got; k++)
			rx_one(n, &n->rxb[k]);
		if (got)
			pvio_netfront_rx_release(n->q, n->rxb, (unsigned int)got);
		if (got < (int)BATCH)
			return 0;
	}
	return 1;
}

/* ---- the event loop ------------------------------------------------------ */

static void on_event(struct pvio_netfront *d, enum pvio_netfront_event ev,
		     void *opaque)
{
	(void)d;
	(void)opaque;
	if (ev == PVIO_NETFRONT_EV_LINK)
		link_changed = true;
	else if (ev == PVIO_NETFRONT_EV_DEAD)
		dead_event = true;
}

/*
 * One round of a queue: both directions within their budgets, then (if
 * @arm) arm. Return -errno once dead, 1 if there is more to do now (the
 * queue gets another round after the others), 0 when idle (armed: sleep
 * on its fds).
 */
static int queue_work(struct nq *n, bool arm)
{
	int rx, tx, ready;

	rx = rx_work(n);
	if (rx < 0)
		return rx;
	tx = tx_work(n);
	if (tx < 0)
		return tx;
	if (rx || tx)
		return 1;
	if (!arm)
		return 0;
	ready = pvio_netfront_arm(n->q, PVIO_NETFRONT_ARM_RX |
				  (n->tx_blocked ? PVIO_NETFRONT_ARM_TX : 0));
	if (ready < 0)
		return ready;
	return ready ? 1 : 0;
}

static const char *feat_str(uint32_t f, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s%s%s%s%s",
		 f & PVIO_NETFRONT_FEAT_SG ? " sg" : "",
		 f & PVIO_NETFRONT_FEAT_TX_CSUM ? " tx-csum" : "",
		 f & PVIO_NETFRONT_FEAT_TX_CSUM_IPV6 ? " tx-csum6" : "",
		 f & PVIO_NETFRONT_FEAT_TX_GSO_TCPV4 ? " tso4" : "",
		 f & PVIO_NETFRONT_FEAT_TX_GSO_TCPV6 ? " tso6" : "",
		 f & PVIO_NETFRONT_FEAT_RX_GSO_TCPV4 ? " rx-gso" : "",
		 f & PVIO_NETFRONT_FEAT_SPLIT_EVTCHN ? " split" : "");
	return buf[0] ? buf + 1 : "none";
}

/* @asked: SIGUSR1, printed at any log level; else at info */
static void log_stats(bool asked)
{
	unsigned int i;

	if (!asked && pvio_log_level < PVIO_LOG_INFO)
		return;

	for (i = 0; i < nr_nq; i++) {
		struct pvio_netfront_stats st;

		pvio_netfront_queue_stats(nqs[i].q, &st);
		pvio__log(PVIO_LOG_INFO,
			 "queue %u: tx %llu frames %llu bytes (%llu gso, %llu "
			 "errors, %llu dropped, %llu sw csum, %llu notifications), "
			 "rx %llu frames %llu bytes (%llu gso, %llu dropped, "
			 "%llu notifications), %llu events", i,
			 (unsigned long long)st.tx_frames,
			 (unsigned long long)st.tx_bytes,
			 (unsigned long long)st.tx_gso,
			 (unsigned long long)st.tx_errors,
			 (unsigned long long)nqs[i].tx_dropped,
			 (unsigned long long)nqs[i].tx_sw_csum,
			 (unsigned long long)st.tx_notifies,
			 (unsigned long long)st.rx_frames,
			 (unsigned long long)st.rx_bytes,
			 (unsigned long long)st.rx_gso,
			 (unsigned long long)(st.rx_errors + st.rx_oversize +
					      nqs[i].rx_dropped),
			 (unsigned long long)st.rx_notifies,
			 (unsigned long long)st.events);
	}
}

/*
 * Every queue is idle: poll them all for @spin_ns (a cross-core wake-up
 * costs tens of microseconds here, more than most gaps between frames),
 * then arm them for the sleep. Queues found with work go in @pending.
 */
static int spin_then_arm(uint64_t spin_ns, uint32_t *pending)
{
	uint64_t end = pvio_now_ns() + spin_ns;
	unsigned int k;
	int r;

	do {
		for (k = 0; k < nr_nq; k++) {
			r = queue_work(&nqs[k], false);
			if (r < 0)
				return r;
			if (r)
				*pending |= 1u << k;
		}
	} while (!*pending && pvio_now_ns() < end);
	for (k = 0; k < nr_nq && !*pending; k++) {
		r = queue_work(&nqs[k], true);
		if (r < 0)
			return r;
		if (r)
			*pending |= 1u << k;
	}
	return 0;
}

enum { TAG_SIG = 1u << 16, TAG_XS = 2u << 16, TAG_Q = 3u << 16,
       TAG_TAP = 4u << 16 };

static int run(int sfd, struct pvio_xs *x)
{
	struct epoll_event ev, evs[2 * PVIO_NETFRONT_MAX_QUEUES + 2];
	uint32_t pending = 0;	/* queues owed a round */
	uint64_t spin_ns = (uint64_t)opt.spin_us * 1000u;
	int ep, i, n, rc = 0;
	unsigned int k;

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return -errno;
	ev.events = EPOLLIN;
	ev.data.u32 = TAG_SIG;
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	ev.data.u32 = TAG_XS;
	if (pvio_xs_fd(x) >= 0)
		epoll_ctl(ep, EPOLL_CTL_ADD, pvio_xs_fd(x), &ev);
	for (k = 0; k < nr_nq; k++) {
		ev.events = EPOLLIN;
		ev.data.u32 = TAG_Q | k;
		if (epoll_ctl(ep, EPOLL_CTL_ADD,
			      pvio_netfront_queue_fd(nqs[k].q), &ev) < 0)
			goto fail;
		/* edge-triggered: read until EAGAIN, or stop when the ring
		 * is full and come back on the queue's tx completions */
		ev.events = EPOLLIN | EPOLLET;
		ev.data.u32 = TAG_TAP | k;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, nqs[k].tap, &ev) < 0)
			goto fail;
		pending |= 1u << k;
	}
	while (!rc) {
		/* a round for every queue with work, in turn: one busy
		 * queue does not starve the others */
		for (k = 0; k < nr_nq && !rc; k++) {
			int r;

			if (!(pending & (1u << k)))
				continue;
			r = queue_work(&nqs[k], !spin_ns);
			if (r < 0)
				rc = r;
			else if (r == 0)
				pending &= ~(1u << k);
		}
		if (!rc && !pending && spin_ns)
			rc = spin_then_arm(spin_ns, &pending);
		if (rc)
			break;
		n = epoll_wait(ep, evs, (int)(sizeof(evs) / sizeof(evs[0])),
			       pending ? 0 : -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		for (i = 0; i < n && !rc; i++) {
			uint32_t tag = evs[i].data.u32 & 0xffff0000u;
			unsigned int qi = evs[i].data.u32 & 0xffffu;

			if (tag == TAG_SIG) {
				struct signalfd_siginfo si;

				if (read(sfd, &si, sizeof(si)) != sizeof(si))
					continue;
				if (si.ssi_signo == SIGUSR1) {
					log_stats(true);
					continue;
				}
				log_info("signal %u: closing", si.ssi_signo);
				close(ep);
				return 0;
			}
			if (tag == TAG_XS) {
				pvio_xs_dispatch(x);
				if (link_changed) {
					link_changed = false;
					set_carrier(pvio_netfront_link_up(dev));
				}
				if (dead_event)
					rc = pvio_netfront_dead(dev);
				continue;
			}
			if (qi < nr_nq)
				pending |= 1u << qi;
		}
	}
	close(ep);
	return rc;
fail:
	rc = -errno;
	close(ep);
	return rc;
}

/* ---- main ---------------------------------------------------------------- */

static int alloc_bufs(struct nq *n)
{
	n->scratch = malloc(SCRATCH);
	/* room for the largest frame, and to notice one that is larger */
	n->tx_max = info.features & PVIO_NETFRONT_FEAT_SG
			    ? PVIO_NETFRONT_TX_PAGES * PAGE
			    : PAGE;
	return n->scratch ? 0 : -ENOMEM;
}

static void free_bufs(struct nq *n)
{
	free(n->scratch);
}

int main(int argc, char **argv)
{
	struct pvio_netfront_opts o = { 0 };
	char err[PVIO_NETFRONT_ERR_MAX] = "", fs[128];
	struct pvio_platform *p = NULL;
	struct pvio_xs *x = NULL;
	int taps[PVIO_NETFRONT_MAX_QUEUES];
	unsigned int k;
	sigset_t sigs;
	int sfd, rc, status = 1;

	pvio_log_init(prog, PVIO_LOG_INFO);
	parse_args(argc, argv);
	for (k = 0; k < PVIO_NETFRONT_MAX_QUEUES; k++)
		taps[k] = -1;

	/* Signals through a signalfd, from the start: one that comes
	 * during the handshake is handled once it is over. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGUSR1);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		log_err("signalfd: %s", strerror(errno));
		return 1;
	}

	/* The TAP first: no permission, nothing touched in xenstore. */
	for (k = 0; k < opt.queues; k++) {
		taps[k] = tap_open(opt.ifname, opt.queues > 1);
		if (taps[k] < 0) {
			log_err("cannot create TAP %s%s: %s", opt.ifname,
				k ? " (another queue)" : "",
				strerror(-taps[k]));
			goto out;
		}
	}
	/*
	 * No carrier until connected and configured: the interface exists
	 * from now on and may be set up and used at once (scripts wait for
	 * it to appear), but a frame sent before tap_configure() would
	 * leave with the TAP's random MAC address, and the peer would learn
	 * and answer that one: the first pings after connect were lost.
	 */
	if (ioctl(taps[0], TUNSETCARRIER, &(int){ 0 }) < 0)
		log_warn("%s: TUNSETCARRIER: %s", opt.ifname, strerror(errno));

	rc = pvio_platform_open(&p, opt.spec, opt.domid, 0);
	if (rc) {
		log_err("cannot attach to the %s platform as domain %u: %s",
			opt.spec ? opt.spec : "default", opt.domid,
			strerror(-rc));
		goto out;
	}
	rc = pvio_xs_open(&x, p);
	if (rc) {
		log_err("cannot connect to xenstore: %s", strerror(-rc));
		goto out;
	}
	o.max_queues = opt.queues;
	o.flags = opt.flags;
	o.timeout_ms = opt.timeout_ms;
	o.event = on_event;
	rc = pvio_netfront_open(&dev, p, x, opt.devid, &o, err, sizeof(err));
	if (rc) {
		log_err("vif %u: %s", opt.devid, err);
		goto out;
	}
	pvio_netfront_info(dev, &info);
	nr_nq = info.nr_queues;
	/* fewer queues than asked for: the extra TAP queues go */
	for (k = nr_nq; k < opt.queues; k++) {
		close(taps[k]);
		taps[k] = -1;
	}
	for (k = 0; k < nr_nq; k++) {
		nqs[k].idx = k;
		nqs[k].q = pvio_netfront_queue(dev, k);
		nqs[k].tap = taps[k];
		if (alloc_bufs(&nqs[k])) {
			log_err("out of memory");
			goto out;
		}
	}
	log_info("vif %u of domain %u connected to %s: %s as %02x:%02x:%02x:"
		 "%02x:%02x:%02x, %u queue%s, mtu %u, offloads: %s", opt.devid,
		 pvio_platform_domid(p), info.backend, opt.ifname, info.mac[0],
		 info.mac[1], info.mac[2], info.mac[3], info.mac[4],
		 info.mac[5], nr_nq, nr_nq > 1 ? "s" : "",
		 opt.mtu < info.mtu ? opt.mtu : info.mtu,
		 feat_str(info.features, fs, sizeof(fs)));
	if (tap_configure())
		goto out;
	set_carrier(pvio_netfront_link_up(dev));

	rc = run(sfd, x);
	if (rc == 0) {
		status = 0;
	} else if (rc == -ENOTCONN || rc == -EPROTO) {
		log_err("vif %u: %s", opt.devid, pvio_netfront_error(dev));
	} else {
		log_err("vif %u: %s", opt.devid, strerror(-rc));
	}
	log_stats(false);
out:
	if (dev) {
		set_carrier(false);
		rc = pvio_netfront_close(dev);
		if (rc)
			log_warn("vif %u: the backend did not follow the "
				 "close: %s", opt.devid, strerror(-rc));
		else
			log_info("vif %u closed", opt.devid);
	}
	for (k = 0; k < PVIO_NETFRONT_MAX_QUEUES; k++) {
		if (taps[k] >= 0)
			close(taps[k]);	/* the last removes the TAP */
		free_bufs(&nqs[k]);
	}
	pvio_xs_close(x);
	pvio_platform_close(p);
	close(sfd);
	return status;
}
