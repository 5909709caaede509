/* SPDX-License-Identifier: MIT */
/*
 * The libFuzzer harnesses' one helper: take typed values from the input,
 * zeros once it is used up (so every input is a valid run), and a check
 * that aborts loudly when an invariant of the code under test breaks.
 */
#ifndef PVIO_FUZZ_H
#define PVIO_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fz {
	const uint8_t *p;
	size_t left;
};

static inline void fz_bytes(struct fz *f, void *out, size_t n)
{
	size_t k = n < f->left ? n : f->left;

	memcpy(out, f->p, k);
	memset((uint8_t *)out + k, 0, n - k);
	f->p += k;
	f->left -= k;
}

/* fz_u8(), fz_u16(), fz_u32(), fz_u64(): the next value, host order */
#define FZ_TAKE(name, type)						\
	static inline type name(struct fz *f)				\
	{								\
		type v;							\
									\
		fz_bytes(f, &v, sizeof(v));				\
		return v;						\
	}
FZ_TAKE(fz_u8, uint8_t)
FZ_TAKE(fz_u16, uint16_t)
FZ_TAKE(fz_u32, uint32_t)
FZ_TAKE(fz_u64, uint64_t)

/* An invariant of the code under test: a failure is a finding. */
#define FZ_CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "%s:%d: invariant failed: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

#endif
