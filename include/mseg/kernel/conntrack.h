/* The connection tracking table of an endpoint's network namespace, over
 * ctnetlink (libmnl): walk it and delete the entries a caller selects. Used
 * to revoke established connections that a policy change no longer admits:
 * with its conntrack entry gone, the next packet of the connection is no
 * longer `ct state established` and meets the allow sets again.
 *
 * Nothing here logs; errors come back as -errno and, when @err is given, a
 * message. */
#ifndef MSEG_CONNTRACK_H
#define MSEG_CONNTRACK_H

#include <stdbool.h>
#include <stdint.h>

#include "mseg/util/err.h"
#include "mseg/model/model.h"

struct netns;

/* An entry's original-direction tuple (who opened the connection to whom). */
struct ct_tuple {
	struct mseg_addr src, dst;
	uint8_t proto;               /* IPPROTO_* */
	uint16_t sport, dport;       /* host order; 0 for protocols without ports */
};

/* Return true to delete the entry. */
typedef bool (*ct_select_fn)(const struct ct_tuple *t, void *data);

struct ct_walk_stats {
	uint64_t seen;               /* entries the dump returned */
	uint64_t selected;           /* entries the callback chose */
	uint64_t deleted;            /* of those, deleted by us (not gone already) */
	uint64_t dump_ns;            /* time spent dumping (and selecting) */
	uint64_t delete_ns;          /* time spent deleting */
};

/* The number of entries in @ns's conntrack table, as the kernel counts
 * them for the namespace (IPCTNL_MSG_CT_GET_STATS, CTA_STATS_GLOBAL_ENTRIES):
 * one request, whatever the size of the table, where a walk iterates the
 * conntrack hash of every namespace. Entries not yet confirmed (a
 * connection's first packet still on its way through the hooks) count too.
 * -errno (e.g. -EOPNOTSUPP without ctnetlink) when the kernel does not say. */
int conntrack_count(struct netns *ns, uint32_t *ret_count, struct mseg_err *err);

/* Dump the conntrack table of @ns (every family), call @select for each
 * entry, then delete the selected ones (each by tuple and conntrack id, so
 * that a new connection which reuses the tuple meanwhile is left alone).
 * Entries that vanished before their delete are not errors. @ret is filled
 * also on failure (what was done until then). */
int conntrack_revoke(struct netns *ns, ct_select_fn select, void *data,
		     struct ct_walk_stats *ret, struct mseg_err *err);

#endif
