// SPDX-License-Identifier: MIT
/*
 * An external program against the installed libpvio (test-install.sh):
 * every public header, compiled as C (-std=c11, no feature macros) and as
 * C++, linked with what pkg-config says, and run.
 */
#include <pvio/base.h>
#include <pvio/blkfront.h>
#include <pvio/gntio.h>
#include <pvio/netfront.h>
#include <pvio/netif.h>
#include <pvio/platform.h>
#include <pvio/ring.h>
#include <pvio/xenbus.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)							\
	do {								\
		if (!(c)) {						\
			fprintf(stderr, "t-extern: %s:%d: %s\n",	\
				__FILE__, __LINE__, #c);		\
			return 1;					\
		}							\
	} while (0)

int main(void)
{
	static unsigned char page[PVIO_PAGE_SIZE]
		__attribute__((aligned(PVIO_PAGE_SIZE)));
	struct pvio_ring_front f;
	struct pvio_ring_back b;
	struct blkif_request req, got;
	struct pvio_platform *p = NULL;
	struct pvio_spin spin;
	uint8_t mac[6];
	uint64_t t0 = pvio_now_ns();

	/* the inline ring API, both ends on one page */
	CHECK(pvio_blkif_ring_size(1) == 32);
	CHECK(pvio_blkif_front_init(&f, page, 1) == 0);
	CHECK(pvio_blkif_back_attach(&b, page, 1) == 0);
	memset(&req, 0, sizeof(req));
	req.operation = BLKIF_OP_READ;
	req.id = 42;
	*pvio_blkif_front_req(&f) = req;
	pvio_ring_front_req_commit(&f);
	pvio_ring_front_push(&f);
	CHECK(pvio_blkif_back_consume(&b, &got, 1) == 1);
	CHECK(got.id == 42 && got.operation == BLKIF_OP_READ);
	CHECK(pvio_blkif_back_consume(&b, &got, 1) == 0);

	/* the clock and the spin, inline or from the library */
	pvio_spin_init(&spin, 1000);
	while (pvio_spin_continue(&spin))
		;
	CHECK(pvio_now_ns() >= t0 && pvio_clock_ns() >= t0);
	{
		/* between two readings of the same clock: four readings
		 * compared a millisecond apart failed when preempted */
		uint64_t before = pvio_now_ns() / 1000000u;
		uint64_t ms = pvio_now_ms();
		uint64_t after = pvio_now_ns() / 1000000u;

		CHECK(before <= ms && ms <= after);
	}

	/* exported functions */
	CHECK(pvio_platform_open(&p, "no-such-platform", 0, 0) == -EINVAL);
	CHECK(p == NULL);
	CHECK(pvio_xb_parse_mac("00:16:3e:0a:0B:0c", mac) == 0 &&
	      mac[4] == 0x0b);
	CHECK(pvio_xb_parse_mac("00:16:3e:0a:0b", mac) == -EINVAL);
	CHECK(strcmp(pvio_xb_state_name(PVIO_XB_CONNECTED), "Connected") == 0);
	puts("t-extern: ok");
	return 0;
}
