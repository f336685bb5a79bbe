/* A compile cache: the entries of the groups of the last compile, so that
 * the next compile computes only the groups an event changed.
 *
 * A group (one rule set of one direction, docs/compile.md) is keyed by the
 * content its entries are made from: its rules (direction, ports, address
 * peers, provenance), the addresses and named ports of every endpoint each
 * of its peer selections picks, the named ports of its endpoints when a rule
 * names one, and the compile options that shape entries. An event (a pod's
 * labels or address, a namespace's labels, a policy, an endpoint added or
 * removed) changes the key of exactly the groups whose selections pick the
 * changed endpoint before or after, or whose rules changed; every other
 * group's key is the same, and its entries are taken from the cache, the
 * very same array. Invalidation is by content: no caller has to say what
 * changed, and none can forget to. The output is byte-identical to a full
 * compile (tests/unit/test_compile_cache.c checks random change sequences).
 *
 * Not thread-safe; one cache per sequence of compiles (msegd: the
 * reconciler's). */
#ifndef MSEG_COMPILE_CACHE_H
#define MSEG_COMPILE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "mseg/model/plan.h"

struct compile_cache;

struct compile_cache_stats {
	uint64_t compiles;        /* compile_plan_cached() calls that succeeded */
	uint64_t groups_reused;   /* groups whose entries came from the cache */
	uint64_t groups_computed; /* groups computed (not in the cache) */
	size_t groups_kept;       /* groups held now */
	size_t entries_kept;      /* entries held now */
};

struct compile_cache *compile_cache_new(void);
struct compile_cache *compile_cache_free(struct compile_cache *cc);

/* Forget every group: the next compile is a full one (msegd's resync). */
void compile_cache_clear(struct compile_cache *cc);

const struct compile_cache_stats *compile_cache_stats(const struct compile_cache *cc);

/* compile_plan() with @cc (NULL: no cache, the same as compile_plan()).
 * Same output; a direction whose group came from the cache has the same
 * entries pointer and mseg_dir_plan.entries_id as in the previous plan of
 * this cache. Afterwards @cc holds the groups of this compile only. The
 * plan may outlive the cache. */
int compile_plan_cached(const struct mseg_policy *const *pols, size_t n_pols,
			const struct mseg_endpoint *const *eps, size_t n_eps,
			const struct compile_opts *opts, struct compile_cache *cc,
			struct mseg_plan **ret_plan);

#endif
