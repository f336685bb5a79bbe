/* Private to the kernel backend: the structure of an endpoint's table
 * (which chains, which modes, which table options), kept per namespace so
 * that an update knows whether element changes suffice. Implemented in
 * ep_table.c, its user. */
#ifndef MSEG_EP_SHAPE_H
#define MSEG_EP_SHAPE_H

#include <stdbool.h>

#include "mseg/kernel/nft.h"

/* The structure of the table we last programmed (or verified) in a
 * namespace: what an element-only update must find there. */
struct ep_shape {
	bool known;                      /* false: we do not know what is there */
	bool present;                    /* a table exists */
	bool isolated[MSEG_DIR_COUNT];
	enum mseg_mode mode[MSEG_DIR_COUNT];
	struct table_opts opts;
};

/* Shape of a plan with given options. */
void ep_shape_of(struct ep_shape *s, const struct mseg_ep_plan *plan,
		 const struct table_opts *opts);
bool ep_shape_equal(const struct ep_shape *a, const struct ep_shape *b);

#endif
