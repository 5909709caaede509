// SPDX-License-Identifier: MIT
/* The dom0 side of a vif: a TAP device vif<domid>.<devid>. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
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

/* MAC fe:ff:ff:ff:ff:ff as Linux netback's vif, up, into the bridge. */
int tap_setup(int fd, const char *name, const char *bridge)
{
	static const unsigned char mac[6] = { 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff };
	struct ifreq ifr;
	int rc, idx;

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
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	rc = sock_ioctl(SIOCGIFINDEX, &ifr);
	if (rc)
		return rc;
	idx = ifr.ifr_ifindex;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", bridge);
	ifr.ifr_ifindex = idx;
	rc = sock_ioctl(SIOCBRADDIF, &ifr);
	/* a persistent TAP found after a restart is a member already */
	return rc == -EBUSY ? 0 : rc;
}

/* The device is gone for good: the TAP goes with our last fd. */
void tap_remove(int fd)
{
	ioctl(fd, TUNSETPERSIST, 0);
}

void tap_unbridge(const char *name, const char *bridge)
{
	struct ifreq ifr;
	int idx;

	if (!bridge || !bridge[0])
		return;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (sock_ioctl(SIOCGIFINDEX, &ifr))
		return;
	idx = ifr.ifr_ifindex;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", bridge);
	ifr.ifr_ifindex = idx;
	sock_ioctl(SIOCBRDELIF, &ifr);
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
