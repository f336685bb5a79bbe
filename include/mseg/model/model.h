/* The policy and endpoint model shared by every stage.
 *
 * One model carries both mseg AllowLists (docs/policy.md) and Kubernetes
 * NetworkPolicy v1 (src/lib/model/netpol.c): a policy *covers* (isolates) the endpoints its
 * subjects select, in the directions of `isolation`; each rule admits, for the
 * endpoints its `local` side selects, traffic in one direction to or from any
 * of its peers on any of its ports.
 *
 * An AllowList `{from: A, to: B, ports: P}` becomes an ingress rule
 * (local B, peer A) and, when A selects endpoints, an egress rule
 * (local A, peer B). A NetworkPolicy ingress rule is (local podSelector,
 * peers from[]); an egress rule is (local podSelector, peers to[]).
 */
#ifndef MSEG_MODEL_H
#define MSEG_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mseg/util/arena.h"

enum mseg_mode { MSEG_MODE_ENFORCE = 0, MSEG_MODE_AUDIT = 1 };

/* What a change that removes an allow does to connections it had admitted:
 * cut them (their conntrack entries are deleted, the next packet is judged
 * anew) or let them run and refuse only new ones. INHERIT: msegd --revoke. */
enum mseg_revoke {
	MSEG_REVOKE_INHERIT = 0,
	MSEG_REVOKE_ESTABLISHED,
	MSEG_REVOKE_NEW_ONLY,
};

enum mseg_dir { MSEG_DIR_INGRESS = 0, MSEG_DIR_EGRESS = 1 };
#define MSEG_DIR_COUNT 2
#define MSEG_ISO_INGRESS (1u << MSEG_DIR_INGRESS)
#define MSEG_ISO_EGRESS (1u << MSEG_DIR_EGRESS)
#define MSEG_ISO_BOTH (MSEG_ISO_INGRESS | MSEG_ISO_EGRESS)

/* Where an object was written; file points at a string owned by the loader
 * (stable for the life of the policy). line/col are 1-based. */
struct mseg_pos {
	const char *file;
	unsigned line, col;
};

/* An address; IPv4 uses bytes[0..3]. family is AF_INET or AF_INET6. */
struct mseg_addr {
	uint8_t family;
	uint8_t bytes[16];
};

struct mseg_cidr {
	struct mseg_addr addr;   /* host bits are zero */
	uint8_t plen;
};

/* Kubernetes LabelSelector semantics: every requirement must hold;
 * no requirement matches everything. matchLabels {k: v} is IN [v]. */
enum mseg_sel_op {
	MSEG_SEL_IN,
	MSEG_SEL_NOT_IN,
	MSEG_SEL_EXISTS,
	MSEG_SEL_DOES_NOT_EXIST,
};

struct mseg_sel_req {
	const char *key;
	enum mseg_sel_op op;
	const char **values;
	size_t n_values;
};

struct mseg_selector {
	struct mseg_sel_req *reqs;
	size_t n_reqs;
};

/* A port match. proto 0 means every protocol (no port check). For TCP,
 * UDP and SCTP, lo..hi is the destination port range (0..65535 = every
 * port). For other protocols (ICMP, ICMPv6) lo and hi are 0 and unused.
 * A named port (Kubernetes) has name set and is resolved per destination
 * endpoint by the compiler; proto then says which protocol it must have. */
struct mseg_port {
	uint8_t proto;
	uint16_t lo, hi;
	const char *name;
	struct mseg_pos pos;
};

enum mseg_peer_kind {
	MSEG_PEER_ENDPOINTS,   /* endpoints chosen by namespace + label selector */
	MSEG_PEER_ADDRS,       /* cidrs minus except */
};

enum mseg_ns_scope {
	MSEG_NS_NAMED,         /* endpoints of namespace `ns` */
	MSEG_NS_SELECTOR,      /* endpoints of namespaces whose labels match ns_sel */
	MSEG_NS_ANY,           /* endpoints of every namespace */
};

struct mseg_peer {
	enum mseg_peer_kind kind;
	const char *group;            /* group name for messages; may be NULL */
	/* MSEG_PEER_ENDPOINTS */
	enum mseg_ns_scope ns_scope;
	const char *ns;
	struct mseg_selector ns_sel;
	struct mseg_selector ep_sel;
	/* MSEG_PEER_ADDRS */
	struct mseg_cidr *cidrs;
	size_t n_cidrs;
	struct mseg_cidr *except;
	size_t n_except;
	struct mseg_pos pos;
};

struct mseg_rule {
	enum mseg_dir dir;
	struct mseg_peer local;       /* always MSEG_PEER_ENDPOINTS */
	struct mseg_peer *peers;      /* any of them admits */
	size_t n_peers;
	struct mseg_port *ports;      /* any of them admits; none = every protocol */
	size_t n_ports;
	unsigned index;               /* index in the source's allow/ingress/egress list */
	struct mseg_pos pos;
};

enum mseg_policy_kind { MSEG_KIND_ALLOWLIST, MSEG_KIND_NETWORKPOLICY };

struct mseg_policy {
	struct arena arena;           /* owns everything below */
	enum mseg_policy_kind kind;
	const char *name;
	const char *ns;               /* "default" when the document gives none */
	bool ns_defaulted;            /* ... which it did not */
	enum mseg_mode mode;          /* what the compiler enforces (learn: enforce) */
	bool learn;                   /* spec.mode: learn (enforce + a learning stage) */
	uint32_t learn_for_s;         /* spec.learnFor (POLICY_LEARN_FOR_DEFAULT_S) */
	uint64_t learn_until_s;       /* set in a merged view: the stage's end (Unix
					 seconds); 0: not known */
	unsigned isolation;           /* MSEG_ISO_* */
	enum mseg_revoke revoke;      /* spec.revoke; INHERIT when not given */
	struct mseg_peer *subjects;   /* covered = matched by any subject */
	size_t n_subjects;
	struct mseg_rule *rules;
	size_t n_rules;
	struct mseg_pos pos;          /* the document start */
	size_t doc_start, doc_len;    /* the document's bytes in the buffer it came from;
	                               * an item of a List: the item's */
	unsigned doc_col;             /* where those bytes start (1-based column); the
	                               * lines after the first are indented as far */
	bool doc_bare;                /* a NetworkPolicyList item without apiVersion and
	                               * kind (the API server leaves them out) */
};

struct mseg_label {
	const char *key, *value;
};

struct mseg_named_port {
	const char *name;
	uint8_t proto;
	uint16_t port;
};

struct mseg_endpoint {
	struct arena arena;           /* owns everything below */
	const char *id;
	const char *name;
	const char *ns;               /* "default" when not given */
	const char *netns;            /* path of the network namespace; may be NULL offline */
	const char *pod_uid;          /* the Kubernetes Pod's metadata.uid it was registered
	                               * for (mseg-cni: K8S_POD_UID); NULL: not known */
	struct mseg_label *labels;    /* sorted by key, keys unique */
	size_t n_labels;
	struct mseg_label *ns_labels; /* labels of its namespace (Kubernetes); sorted;
	                               * always has kubernetes.io/metadata.name: ns
	                               * (endpoint_ns_labels_fill) */
	size_t n_ns_labels;
	struct mseg_label *given_ns_labels; /* the endpoint's own "ns_labels" (sorted),
	                               * used when its namespace is not declared */
	size_t n_given_ns_labels;
	uint64_t ns_labels_serial;    /* ns_labels are those of the namespace object of
	                               * this serial (0: none, or its own labels) */
	struct mseg_addr *ips;
	size_t n_ips;
	struct mseg_named_port *ports;
	size_t n_ports;
	struct mseg_pos pos;
	/* when it was registered (CLOCK_REALTIME ns; 0: unknown): of two
	 * endpoints claiming one address, the newer one has it */
	uint64_t registered_ns;
	/* a pod of another node (the Kubernetes watcher's peers): selected by
	 * policies, never programmed, and no policy is compiled for it */
	bool cluster_peer;
};

/* A set of policies, as loaded from files or the API. */
struct mseg_policy_set {
	struct mseg_policy **items;
	size_t n, cap;
};

/* A namespace (Kubernetes Namespace; the inventory's namespaces:). */
struct mseg_namespace {
	struct arena arena;           /* owns everything below */
	const char *name;
	struct mseg_label *labels;    /* sorted by key; always holds
	                               * kubernetes.io/metadata.name: name */
	size_t n_labels;
	struct mseg_pos pos;
	uint64_t serial;              /* this object's, unique in the process (its
	                               * labels never change: a change is a new object) */
};

#define NS_NAME_LABEL "kubernetes.io/metadata.name"

/* One way through a Service (Kubernetes: a ClusterIP or external IP and a
 * port of a Service, and one ready backend of its EndpointSlices): a packet
 * a pod sends to vip:port/proto leaves the pod's namespace with that
 * destination and is translated to backend:backend_port on the node
 * (kube-proxy), after the pod's egress rules saw it. vip and backend are
 * of the same family. */
struct mseg_svc_route {
	struct mseg_addr vip;
	struct mseg_addr backend;
	uint8_t proto;                /* TCP, UDP or SCTP */
	uint16_t port;                /* the Service's port */
	uint16_t backend_port;        /* the backend's (target) port */
};

/* An endpoint inventory: owns its endpoints, kept sorted by id, and its
 * declared namespaces, kept sorted by name. */
/* A change staged in an inventory (inventory_stage_put/remove): @ep
 * replaces or adds the endpoint of @id (its own id), or NULL: the endpoint
 * of @id (then a copy, owned) is removed. */
struct inventory_change {
	const char *id;
	struct mseg_endpoint *ep;
};

/* An id changed since the journal was reset (inventory_journal_reset()),
 * with the endpoint it had then (NULL: none). */
struct inventory_journal_entry {
	char *id;
	const struct mseg_endpoint *before;
};

struct mseg_ep_brief;

struct mseg_inventory {
	struct mseg_endpoint **eps;   /* sorted by id */
	size_t n, cap;
	struct mseg_namespace **nss;
	size_t n_nss, cap_nss;
	/* changes not in @eps yet, sorted by id (inventory_stage_put()) */
	struct inventory_change *staged;
	size_t n_staged, cap_staged;
	/* unique in the process, moved by every change of the endpoints
	 * (staged or not) and of the namespaces: whoever kept something made
	 * from this inventory knows whether it still holds */
	uint64_t serial, ns_serial;
	/* the journal (inventory_journal_reset()): every change of an
	 * endpoint since the reset, in order; the endpoints replaced or
	 * removed meanwhile are retired, not freed, so that each "before"
	 * stays readable until the next reset */
	struct inventory_journal_entry *journal;
	size_t n_journal, cap_journal;
	struct mseg_endpoint **retired;
	size_t n_retired, cap_retired;
	bool journal_on;              /* changes are journaled */
	bool journal_lost;            /* more than INVENTORY_JOURNAL_MAX: not kept */
	/* a desired view's endpoints only: brief[i] describes eps[i]
	 * (struct mseg_ep_brief, plan.h; compile_opts.eps_brief) */
	const struct mseg_ep_brief *brief;
};

#endif
