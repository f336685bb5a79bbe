/* The compiler's output: per endpoint and direction, whether it is isolated,
 * in which mode, and the normalized allow entries.
 *
 * Entries are boxes (address range x protocol x port range) in the peer's
 * address family. Within one (family, shape) class they are sorted and
 * pairwise disjoint, as the kernel's concatenated interval sets require.
 * Boxes of at most compile_opts.expand_max points come out as one exact
 * entry per point (hash sets). */
#ifndef MSEG_PLAN_H
#define MSEG_PLAN_H

#include "mseg/model/model.h"

/* Which kind of set an entry goes into. The enum order is the order of the
 * sets in a table and of their lookups in a chain (text and netlink alike);
 * the kernel layer places the port-range slots, which take some
 * SHAPE_PORT_IV entries, right after SHAPE_PORT_IV (docs/ruleset.md). */
enum entry_shape {
	SHAPE_PORT,      /* addr . l4proto . port, exact address and port: hash set */
	SHAPE_PORT_IV,   /* addr . l4proto . port with a range: interval set */
	SHAPE_PROTO,     /* addr . l4proto, exact address (ICMP and friends): hash */
	SHAPE_PROTO_IV,  /* addr . l4proto with an address range: interval */
	SHAPE_ANY,       /* addr (every protocol), exact: hash */
	SHAPE_ANY_IV,    /* addr range (every protocol): interval */
};
#define SHAPE_COUNT 6

/* Does the class need an interval set (a range somewhere in the key)? */
static inline bool shape_is_interval(enum entry_shape s)
{
	return s == SHAPE_PORT_IV || s == SHAPE_PROTO_IV || s == SHAPE_ANY_IV;
}

struct mseg_entry {
	struct mseg_addr lo, hi;     /* inclusive, same family */
	uint8_t proto;               /* 0 = every protocol */
	uint16_t port_lo, port_hi;   /* TCP/UDP/SCTP/UDPLITE only; else 0 */
	/* provenance: the first (policy, rule) that admitted this box */
	uint32_t policy;             /* index in the policy array given to compile,
	                              * or ENTRY_POLICY_NODE */
	uint32_t rule;
};

/* entry.policy of an entry that admits one of compile_opts.node_addrs (rule 0). */
#define ENTRY_POLICY_NODE UINT32_MAX

struct mseg_dir_plan {
	bool isolated;
	enum mseg_mode mode;
	struct mseg_entry *entries;
	size_t n_entries;
	/* Nonzero: the entries are a compile cache's array (compile/cache.h);
	 * two directions with the same nonzero id hold the same entries, so a
	 * diff of one against the other has nothing to compare. */
	uint64_t entries_id;
};

struct mseg_ep_plan {
	const struct mseg_endpoint *ep;
	struct mseg_dir_plan dir[MSEG_DIR_COUNT];
};

struct mseg_plan {
	struct mseg_ep_plan *eps;    /* sorted by endpoint id */
	size_t n_eps;
};

/* Normalized boxes of at most this many points (addresses x ports, or
 * addresses for port-less protocols and every-protocol entries) are expanded
 * into exact entries, which go into the hash sets: on this kernel one element
 * in a concatenated interval set costs 82-306 KiB of kernel memory per set,
 * an exact hash element about 70 bytes (docs/compile.md). */
#define COMPILE_EXPAND_MAX 16
/* compile_opts.expand_max value that turns the expansion off. */
#define COMPILE_EXPAND_OFF SIZE_MAX

/* One endpoint of a compile as the passes over every endpoint need it,
 * in an array parallel to the endpoints (a desired view makes it while it
 * merges, include/mseg/daemon/desired.h): at 150,000 endpoints, each its
 * own allocation, reading these 16 bytes in a row instead of each
 * endpoint is what keeps those passes off the cache misses. */
struct mseg_ep_brief {
	const char *ns_name;         /* selector_ns_name() of its namespace: one
	                              * copy per name (equal pointers exactly when
	                              * the names are), which outlives the compile */
	uint64_t ns_labels_serial : 63;   /* the endpoint's ns_labels_serial (0:
	                              * its namespace labels are not those of a
	                              * namespace object: compared by content) */
	uint64_t netns : 1;          /* it has a netns */
};

struct compile_opts {
	bool default_deny;           /* isolate endpoints no policy covers */
	enum mseg_mode default_mode; /* mode for default-deny isolation */
	bool force_audit;            /* msegd --mode audit: every isolation audits */
	size_t expand_max;           /* expand boxes of at most this many points into
	                              * exact entries; 0 = COMPILE_EXPAND_MAX,
	                              * COMPILE_EXPAND_OFF = never (1 has the same
	                              * effect: a one-point box is already exact) */
	/* This node's own addresses (Kubernetes: traffic between a pod and its
	 * node is never isolated): every isolated direction of every endpoint
	 * admits them, every protocol, as allow entries of provenance
	 * ENTRY_POLICY_NODE. Not owned; may be NULL when n_node_addrs is 0. */
	const struct mseg_addr *node_addrs;
	size_t n_node_addrs;
	/* Service routes (Kubernetes ClusterIPs and external IPs): an
	 * isolated egress direction that admits a route's backend:backend_port
	 * also admits its vip:port, with the provenance of the entry that
	 * admitted the backend. Not owned; may be NULL when n_svc_routes is 0. */
	const struct mseg_svc_route *svc_routes;
	size_t n_svc_routes;
	/* A plan of the endpoints with a netns only: an endpoint without one
	 * (a pod of another node) is a peer of the others' rules and is never
	 * programmed, so it is left out of the plan (msegd's reconciler: at
	 * 150,000 pods of which 110 are local, the plan has 110 lines; a plan
	 * to show or check keeps every endpoint). */
	bool local_only;
	/* Optional: eps_brief[i] describes the compile's eps[i], which are
	 * then taken as sorted by id with unique ids, as a desired view's are
	 * (not checked). Not owned. The plan is the same with it or without. */
	const struct mseg_ep_brief *eps_brief;
};

/* Pure and deterministic. @pols[i] is what entry.policy indexes. */
int compile_plan(const struct mseg_policy *const *pols, size_t n_pols,
		 const struct mseg_endpoint *const *eps, size_t n_eps,
		 const struct compile_opts *opts, struct mseg_plan **ret_plan);

struct mseg_plan *plan_free(struct mseg_plan *plan);

/* Which set class an entry belongs to. */
enum entry_shape entry_shape(const struct mseg_entry *e);

/* True when the protocol carries ports that th dport reads (TCP, UDP, UDPLITE,
 * SCTP): the ports a rule can match and the packet parser extracts. */
static inline bool proto_has_ports(uint8_t proto)
{
	/* the IPPROTO_* numbers, spelled out: <netinet/in.h> and <linux/in.h>
	 * cannot both be included, and users of this header include either */
	return proto == 6 /* TCP */ || proto == 17 /* UDP */ || proto == 136 /* UDPLITE */ ||
	       proto == 132 /* SCTP */;
}

/* How unmatched packets reach msegd. */
enum queue_method {
	QUEUE_NATIVE,    /* nft `queue` expression */
	QUEUE_XT,        /* xtables NFQUEUE target through nft_compat */
	QUEUE_NFLOG,     /* NFLOG to msegd plus an explicit verdict */
};

/* Table-wide settings that are not part of the compiled plan. */
struct table_opts {
	enum queue_method queue;
	uint16_t queue_num;
	uint32_t rate;               /* unmatched packets per second sent to msegd */
	uint32_t burst;
};

#define TABLE_NAME "mseg"
#define TABLE_DEFAULT_RATE 100
#define TABLE_DEFAULT_BURST 200
/* The "seen" sets of an isolated direction (docs/ruleset.md): the kernel
 * aggregates every new connection that reaches the allow sets, per peer
 * address, protocol and port, in at most SEEN_SET_SIZE elements each, an
 * element dropping out SEEN_SET_TIMEOUT_S after its last connection. */
#define SEEN_SET_SIZE 4096
#define SEEN_SET_TIMEOUT_S 86400

/* Table options with defaults filled in (NULL = defaults; a zero rate or
 * burst = its default), for the text and the netlink rendering alike. */
void table_opts_normalize(struct table_opts *out, const struct table_opts *in);

#endif
