/* The kernel backend: the `inet mseg` table of docs/ruleset.md, programmed
 * into an endpoint's network namespace over netlink (libnftnl + libmnl),
 * read back, and compared with the desired plan.
 *
 * Every change is one nfnetlink batch, that is one kernel transaction: the
 * kernel applies all of it or none of it. A structural change (isolated
 * directions, modes, table options) replaces the whole table in one batch;
 * a membership change is one batch of set element deletes and adds.
 *
 * Errors: every action returns 0 or -errno and, when @err is given, fills it
 * with a message. A kernel rejection names the message that caused it; for
 * set elements that is the entry and its provenance:
 *   "policy shop/shop rule 3: add element 10.0.0.0/24 . tcp . 80 to set
 *    in4_port_iv: File exists"
 * Nothing here logs.
 *
 * Threads: a struct netns is used by one thread at a time. Opening sockets
 * switches the calling thread into the namespace and back (setns). */
#ifndef MSEG_NFT_H
#define MSEG_NFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mseg/util/err.h"
#include "mseg/model/plan.h"

/* ---- network namespaces (netns.c) ---- */

struct netns;

/* What was sent to one namespace, cumulative; tests and metrics read it.
 * "Kernel elements" count what the kernel stores: a plain interval set holds
 * an interval as a start and an end element. */
struct nft_stats {
	uint64_t batches;          /* batches sent (each is one transaction) */
	uint64_t batches_failed;   /* of which the kernel refused */
	uint64_t msgs;             /* messages inside batches, without begin/end */
	uint64_t table_msgs;       /* NEWTABLE, DELTABLE */
	uint64_t obj_msgs;         /* NEWOBJ (limit, counters) */
	uint64_t set_msgs;         /* NEWSET */
	uint64_t chain_msgs;       /* NEWCHAIN */
	uint64_t rule_msgs;        /* NEWRULE */
	uint64_t elem_msgs;        /* NEWSETELEM, DELSETELEM */
	uint64_t elems_added;      /* kernel elements added */
	uint64_t elems_deleted;    /* kernel elements deleted */
	uint64_t bytes;            /* batch bytes sent */
	uint64_t last_batch_ns;    /* sendmsg() to the last ack of the last batch */
	uint64_t last_batch_msgs;  /* messages of the last batch */
	uint64_t last_batch_elem_msgs;
	uint64_t last_batch_other_msgs; /* anything but element messages */
};

/* Open the network namespace at @path (e.g. /run/netns/web-1,
 * /proc/PID/ns/net). NULL means the calling thread's current namespace.
 * -EINVAL when @path is not a network namespace. Nothing is opened inside
 * the namespace yet; the netfilter socket is opened on first use. */
int netns_open(const char *path, struct netns **ret_ns);
struct netns *netns_free(struct netns *ns);

/* The path given to netns_open ("" for the current namespace). */
const char *netns_path(const struct netns *ns);

/* A socket created inside the namespace: the calling thread enters it with
 * setns(), creates the socket and returns to its own namespace. Returns the
 * fd (O_CLOEXEC) or -errno. -ENOTRECOVERABLE means the thread could not
 * return to its namespace: it must not be used for anything else. */
int netns_socket(struct netns *ns, int domain, int type, int protocol);

/* A file opened inside the namespace the same way (O_CLOEXEC is added):
 * /proc/thread-self/net/... then shows that namespace's view. Returns the fd
 * or -errno, -ENOTRECOVERABLE as for netns_socket(). */
int netns_open_file(struct netns *ns, const char *path, int flags);

const struct nft_stats *netns_stats(const struct netns *ns);

/* The ruleset generation of the namespace (NFT_MSG_GETGEN); every committed
 * batch increments it. */
int nft_genid_get(struct netns *ns, uint32_t *ret_genid, struct mseg_err *err);

/* ---- kernel feature probe (probe.c) ---- */

struct nft_features {
	bool queue_native;         /* nft `queue` expression (nft_queue) */
	bool queue_xt;             /* xtables NFQUEUE target rev 3 through nft_compat, inet table */
	bool nflog;                /* `log group N` (nfnetlink_log) */
	bool concat_interval;      /* concatenated interval sets (pipapo) */
	enum queue_method queue;   /* the best available: NATIVE > XT > NFLOG */
	char detail[256];          /* errno text for each missing feature */
};

/* Probe in a throwaway network namespace (a helper thread that unshares
 * its network namespace), so nothing is left behind anywhere.
 * -EOPNOTSUPP when none of the three queue methods works or concatenated
 * interval sets are missing (mseg cannot work); @ret is filled either way. */
int nft_features_probe(struct nft_features *ret, struct mseg_err *err);

/* "queue", "xt-nfqueue", "nflog". */
const char *queue_method_name(enum queue_method m);

/* ---- programming an endpoint's table (ep_table.c) ---- */

/* @policy_names, when not NULL, holds @n_policy_names names ("ns/name"),
 * indexed by mseg_entry.policy: errors then say "policy shop/shop rule 3:";
 * otherwise "policy #0 rule 3:". The rule number is mseg_entry.rule. */

/* True when the plan isolates a direction, i.e. a table must exist. */
bool ep_plan_has_table(const struct mseg_ep_plan *plan);

/* True when @a and @b need the same table structure (same isolated
 * directions and modes), so that an element update turns one into the
 * other. */
bool ep_plan_same_structure(const struct mseg_ep_plan *a, const struct mseg_ep_plan *b);

/* Program the table for @plan in ONE batch, whatever the namespace held:
 * add table, delete table, add table, limit, counters, every set with its
 * elements, chains and rules. A plan with no isolated direction removes the
 * table (if any). The kernel applies all of it or none of it. */
int ep_table_replace(struct netns *ns, const struct mseg_ep_plan *plan,
		     const struct table_opts *opts, const char *const *policy_names,
		     size_t n_policy_names, struct mseg_err *err);

/* Turn the table programmed for @old_plan into the one for @new_plan with
 * ONE batch of set element deletes and adds (nothing is sent when they have
 * the same entries). -ESTALE, with nothing sent, when the structure differs
 * or when this handle did not program (or verify) the current table with
 * the same @opts: the caller must replace. A kernel refusal (e.g. somebody
 * deleted an element) leaves the table as it was; replace then repairs. */
int ep_table_update(struct netns *ns, const struct mseg_ep_plan *old_plan,
		    const struct mseg_ep_plan *new_plan, const struct table_opts *opts,
		    const char *const *policy_names, size_t n_policy_names,
		    struct mseg_err *err);

/* Update when possible, else (or when the update is refused) replace.
 * @old_plan may be NULL (replace). */
int ep_table_apply(struct netns *ns, const struct mseg_ep_plan *old_plan,
		   const struct mseg_ep_plan *new_plan, const struct table_opts *opts,
		   const char *const *policy_names, size_t n_policy_names,
		   struct mseg_err *err);

/* Remove the table if present (one batch: add + delete). */
int ep_table_delete(struct netns *ns, struct mseg_err *err);

/* ---- reading back (readback.c) ---- */

/* Differences between the kernel and the desired plan. */
struct ep_table_report {
	bool in_sync;
	size_t n_diffs;            /* number of differences found */
	char *text;                /* one difference per line, at most
				      EP_REPORT_MAX_LINES lines then a summary;
				      "" when in sync; malloc'd */
	uint32_t genid;            /* generation the comparison was made at */
};
#define EP_REPORT_MAX_LINES 64

/* Read the table, its objects, sets, elements, chains and rules back and
 * compare them with what ep_table_replace(@plan, @opts) would program:
 * missing/extra table, objects, sets (and their flags and types), elements
 * per set, chains (hook, priority, policy) and rules (expression by
 * expression). Fills @rep (release it with ep_table_report_release). A
 * table in sync is recorded in @ns, so ep_table_update may follow (adoption
 * after a restart). Retries when the ruleset changes during the read. */
int ep_table_verify(struct netns *ns, const struct mseg_ep_plan *plan,
		    const struct table_opts *opts, struct ep_table_report *rep,
		    struct mseg_err *err);
void ep_table_report_release(struct ep_table_report *rep);

/* The over-limit counters (packets sent to the limit and dropped/accepted
 * there instead of being queued), per direction; present[d] is false when
 * the direction has no counter (not isolated, or no table). */
struct ep_table_counters {
	bool present[MSEG_DIR_COUNT];
	uint64_t packets[MSEG_DIR_COUNT];
	uint64_t bytes[MSEG_DIR_COUNT];
	uint64_t invalid_packets[MSEG_DIR_COUNT];   /* dropped by `ct state invalid` */
};

int ep_table_counters_read(struct netns *ns, struct ep_table_counters *ret,
			   struct mseg_err *err);

/* One element of a seen set (docs/ruleset.md): the new connections the
 * table admitted from or to one peer on one protocol and port, aggregated
 * by the kernel. */
struct ep_seen {
	enum mseg_dir dir;
	struct mseg_addr peer;       /* the remote side */
	uint8_t proto;
	bool has_port;               /* false: a port-less protocol (icmp, ...) */
	uint16_t port;               /* destination port, host order */
	uint64_t connections;        /* first packets counted */
	uint64_t idle_ms;            /* since the last one (the timeout restarts on each) */
};

/* Called for each element; a negative return ends the read with it. */
typedef int (*ep_seen_fn)(const struct ep_seen *s, void *data);

/* Read the seen sets of @ns's table (those of the directions it has) and
 * call @fn for each element. No table: nothing is called, 0. */
int ep_table_seen_read(struct netns *ns, ep_seen_fn fn, void *data, struct mseg_err *err);

/* The kernel's handle of @ns's table (0: no table). A replace deletes and
 * re-creates the table, so a new handle means new seen sets whose counters
 * started again from zero. */
int ep_table_handle_read(struct netns *ns, uint64_t *ret_handle, struct mseg_err *err);

#endif
