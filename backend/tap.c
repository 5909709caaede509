// SPDX-License-Identifier: MIT
/* The dom0 side of a vif: a TAP device vif<domid>.<devid>. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <net/if_arp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"

/*
 * Open (or create) TAP @name. @persist: it outlives our fds, so a
 * pvio-backd that dies or restarts finds it as it was (addresses, bridge
 * or OVS port, routes) and opens it again by name; tap_remove() ends it.
 */
int tap_open(const char *name, bool multi_queue, bool persist, int *fd)
{
	struct ifreq ifr;
	int f, hdr = (int)NET_VNET_HDR, rc;

	f = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (f < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR |
			(multi_queue ? IFF_MULTI_QUEUE : 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(f, TUNSETIFF, &ifr) < 0 ||
	    ioctl(f, TUNSETVNETHDRSZ, &hdr) < 0 ||
	    (persist && ioctl(f, TUNSETPERSIST, 1) < 0)) {
		rc = -errno;
		close(f);
		return rc;
	}
	*fd = f;
	return 0;
}

static int sock_ioctl(unsigned long req, struct ifreq *ifr)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;

	if (s < 0)
		return -errno;
	if (ioctl(s, req, ifr) < 0)
		rc = -errno;
	close(s);
	return rc;
}

/* The interface index of @name, or -errno. */
static int if_index(const char *name)
{
	struct ifreq ifr;
	int rc;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	rc = sock_ioctl(SIOCGIFINDEX, &ifr);
	return rc ? rc : ifr.ifr_ifindex;
}

/* SIOCBRADDIF or SIOCBRDELIF: @name into or out of Linux bridge @bridge. */
static int bridge_ioctl(unsigned long req, const char *name,
			const char *bridge)
{
	struct ifreq ifr;
	int idx = if_index(name);

	if (idx < 0)
		return idx;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", bridge);
	ifr.ifr_ifindex = idx;
	return sock_ioctl(req, &ifr);
}

/* MAC fe:ff:ff:ff:ff:ff as Linux netback's vif, up, into the bridge. */
int tap_setup(int fd, const char *name, const char *bridge)
{
	static const unsigned char mac[6] = { 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff };
	struct ifreq ifr;
	int rc;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
	memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
	rc = sock_ioctl(SIOCSIFHWADDR, &ifr);
	if (rc)
		return rc;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	rc = sock_ioctl(SIOCGIFFLAGS, &ifr);
	if (rc)
		return rc;
	ifr.ifr_flags |= IFF_UP;
	rc = sock_ioctl(SIOCSIFFLAGS, &ifr);
	if (rc)
		return rc;
	if (!bridge || !bridge[0])
		return 0;
	return tap_bridge_add(name, bridge);
}

/* The device @name is enslaved to (a bridge, ovs-system), or "". */
static void tap_master(const char *name, char *buf, size_t len)
{
	char path[64], link[256], *base;
	ssize_t n;

	buf[0] = 0;
	snprintf(path, sizeof(path), "/sys/class/net/%s/master", name);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return;
	link[n] = 0;
	base = strrchr(link, '/');
	snprintf(buf, len, "%s", base ? base + 1 : link);
}

/*
 * A persistent TAP found after a restart may still be in the bridge its
 * vif had before: the toolstack moved the vif (or a new domain took the
 * domid) while pvio-backd was down. Out of that Linux bridge, unless it is
 * @bridge (NULL: any). A master that is not a Linux bridge (an OVS
 * datapath: OVSDB moves its ports) is left alone. 0 or -errno.
 */
int tap_leave_other_bridge(const char *name, const char *bridge)
{
	char master[256], path[300];
	int rc;

	tap_master(name, master, sizeof(master));
	if (!master[0] || (bridge && !strcmp(master, bridge)))
		return 0;
	snprintf(path, sizeof(path), "/sys/class/net/%s/bridge", master);
	if (access(path, F_OK) < 0)
		return 0;
	rc = bridge_ioctl(SIOCBRDELIF, name, master);
	if (rc)
		return rc;
	log_info("%s: out of bridge %s, where it was before", name, master);
	return 0;
}

/*
 * TAP @name into Linux bridge @bridge: -ENODEV when there is no such
 * device, -EOPNOTSUPP when it is not a Linux bridge (an Open vSwitch
 * bridge's own port, a TAP on its userspace datapath: backend/ovs.c).
 */
int tap_bridge_add(const char *name, const char *bridge)
{
	char master[256];
	int rc = bridge_ioctl(SIOCBRADDIF, name, bridge);

	/* the kernel says -EBUSY for a device in any bridge: in @bridge
	 * already (a persistent TAP found after a restart), or in another */
	if (rc != -EBUSY)
		return rc;
	tap_master(name, master, sizeof(master));
	if (!strcmp(master, bridge))
		return 0;
	rc = tap_leave_other_bridge(name, bridge);
	return rc ? rc : bridge_ioctl(SIOCBRADDIF, name, bridge);
}

/* The device is gone for good: the TAP goes with our last fd. */
void tap_remove(int fd)
{
	ioctl(fd, TUNSETPERSIST, 0);
}

void tap_unbridge(const char *name, const char *bridge)
{
	if (bridge && bridge[0])
		bridge_ioctl(SIOCBRDELIF, name, bridge);
}

int tap_set_offloads(int fd, unsigned int offloads)
{
	return ioctl(fd, TUNSETOFFLOAD, (unsigned long)offloads) < 0 ? -errno : 0;
}

int tap_set_carrier(int fd, bool on)
{
	int v = on;

	return ioctl(fd, TUNSETCARRIER, &v) < 0 ? -errno : 0;
}

int tap_set_mtu(const char *name, unsigned int mtu)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_mtu = (int)mtu;
	return sock_ioctl(SIOCSIFMTU, &ifr);
}

int tap_get_mtu(const char *name, unsigned int *mtu)
{
	struct ifreq ifr;
	int rc;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	rc = sock_ioctl(SIOCGIFMTU, &ifr);
	if (!rc)
		*mtu = (unsigned int)ifr.ifr_mtu;
	return rc;
}

/*
 * The TAP's alias (ip link's "alias", /sys/class/net/NAME/ifalias) says
 * whose it is: "pvio-backd SPEC BACKEND-PATH". An operator sees which
 * guest's vif a persistent TAP belongs to, and a TAP that outlived its
 * device (pvio-backd down while the domain went away) can be found and
 * removed. Through rtnetlink: sysfs is read-only under the unit's
 * ProtectKernelTunables.
 */
int tap_set_alias(const char *name, const char *alias)
{
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
		char attrs[RTA_SPACE(IFALIASZ)];
	} req;
	struct {
		struct nlmsghdr nh;
		struct nlmsgerr err;
	} ack;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct rtattr *rta;
	size_t len = strlen(alias);
	int idx = if_index(name);
	ssize_t n;
	int s, rc;

	if (idx < 0)
		return idx;
	if (len >= IFALIASZ)
		len = IFALIASZ - 1;
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_type = RTM_SETLINK;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	req.nh.nlmsg_seq = 1;
	req.ifi.ifi_family = AF_UNSPEC;
	req.ifi.ifi_index = idx;
	rta = (struct rtattr *)req.attrs;
	rta->rta_type = IFLA_IFALIAS;
	rta->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(rta), alias, len);
	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(req.ifi)) + RTA_ALIGN(rta->rta_len);

	s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (s < 0)
		return -errno;
	if (sendto(s, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&sa,
		   sizeof(sa)) < 0) {
		rc = -errno;
		goto out;
	}
	n = recv(s, &ack, sizeof(ack), 0);
	if (n < 0)
		rc = -errno;
	else if ((size_t)n < sizeof(ack) || ack.nh.nlmsg_type != NLMSG_ERROR)
		rc = -EPROTO;
	else
		rc = ack.err.error;	/* 0 or -errno */
out:
	close(s);
	return rc;
}
