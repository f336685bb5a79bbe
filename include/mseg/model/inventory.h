/* The endpoint inventory: containers on this host with their network
 * namespace, addresses, labels and named ports. */
#ifndef MSEG_INVENTORY_H
#define MSEG_INVENTORY_H

#include "mseg/util/err.h"
#include "mseg/model/model.h"

#define INVENTORY_MAX_FILE_SIZE (16u << 20)
#define INVENTORY_MAX_DEPTH 32            /* nesting of maps and sequences */
#define INVENTORY_MAX_NODES 1000000       /* YAML nodes per file or body */

void inventory_init(struct mseg_inventory *inv);
void inventory_release(struct mseg_inventory *inv);

/* Parse an inventory document:
 *   namespaces:
 *     - {name: shop, labels: {team: a}}
 *   endpoints:
 *     - {id: web-1, name: web, namespace: shop, labels: {app: web},
 *        netns: /run/netns/web-1, ips: [10.0.0.2, "fd00::2"],
 *        ports: [{name: http, port: 8080, protocol: TCP}]}
 * A file may hold several documents. All or nothing: on error @inv is
 * untouched. Ids and namespace names must be unique within the buffer and
 * new to @inv. An endpoint may give "ns_labels" itself only when its
 * namespace is not declared. On success every endpoint of @inv has its
 * namespace labels filled (inventory_ns_labels_fill(@inv, @inv)). */
int inventory_parse_buffer(struct mseg_inventory *inv, const char *name, const char *buf,
			   size_t len, struct mseg_err *err);
int inventory_load_file(struct mseg_inventory *inv, const char *path, struct mseg_err *err);

/* One endpoint as a REST body (YAML or JSON): a mapping with the keys of an
 * inventory entry; "id" may be left out and must equal @id when given (@id
 * NULL: "id" is required). */
int endpoint_parse_buffer(const char *id, const char *name, const char *buf, size_t len,
			  struct mseg_endpoint **ret_ep, struct mseg_err *err);

/* An endpoint from fields already in memory (the Kubernetes watcher's
 * pods, read from JSON): the same checks, the same endpoint and the same
 * error texts as endpoint_parse_buffer() of the document with these keys,
 * without the text (errors name @name and the field, no line:col). Its
 * memory is one block of the size it needs. */
enum endpoint_value_kind {
	EPV_ABSENT = 0,   /* the key is not there */
	EPV_STRING,       /* a JSON string */
	EPV_LITERAL,      /* a number, true or false: its text */
	EPV_NULL,
	EPV_OBJECT,
	EPV_ARRAY,
};

struct endpoint_value {
	enum endpoint_value_kind kind;
	const char *text;            /* EPV_STRING, EPV_LITERAL */
};

struct endpoint_field_label {
	const char *key;
	struct endpoint_value value;
};

struct endpoint_field_port {
	struct endpoint_value name, port, protocol;
};

struct endpoint_fields {
	const char *id, *name, *ns, *netns, *pod_uid;   /* NULL: left out */
	const struct endpoint_field_label *labels;      /* in document order */
	size_t n_labels;
	const char *const *ips;
	size_t n_ips;
	const struct endpoint_field_port *ports;        /* n_ports 0: no "ports" */
	size_t n_ports;
	/* its namespace, when declared: its labels are filled in at once
	 * (endpoint_ns_labels_fill()) */
	const struct mseg_namespace *namespace;
};

int endpoint_build(const char *name, const struct endpoint_fields *f,
		   struct mseg_endpoint **ret_ep, struct mseg_err *err);

/* Insert (replacing and freeing the endpoint with the same id). Takes @ep
 * on success; on error (-EINVAL without an id, -ENOMEM) the caller keeps it.
 * Applies the staged changes first. */
int inventory_put(struct mseg_inventory *inv, struct mseg_endpoint *ep);
/* Remove and free; -ENOENT if absent. Applies the staged changes first. */
int inventory_remove(struct mseg_inventory *inv, const char *id);
/* Binary search by id, staged changes included; NULL if absent. */
struct mseg_endpoint *inventory_find(const struct mseg_inventory *inv, const char *id);
/* The index of the first endpoint of @inv->eps from @from on whose id is
 * not below @id (NULL: @inv->n): an exponential search from @from, then a
 * binary one, so that a walk over a run of endpoints costs a few
 * comparisons. Staged changes are not in eps (below). */
size_t inventory_lower_bound(const struct mseg_inventory *inv, size_t from, const char *id);

/* The same changes, staged: an inventory that changes one endpoint at a
 * time (the Kubernetes source, one watch event each) does not move its
 * sorted array for each. An endpoint added or removed is staged:
 * inventory_find() sees it at once, eps and n only after inventory_flush(),
 * which merges them all in one pass (and is done by inventory_put()/
 * remove(), and by a stage when INVENTORY_STAGED_MAX are staged); the
 * endpoint a removal drops is freed by the flush. One that replaces an
 * endpoint of the array takes its place at once (the old one is freed).
 * Same returns as inventory_put()/remove(). */
int inventory_stage_put(struct mseg_inventory *inv, struct mseg_endpoint *ep);
int inventory_stage_remove(struct mseg_inventory *inv, const char *id);
int inventory_flush(struct mseg_inventory *inv);
/* How many endpoints, staged changes included. */
size_t inventory_count(const struct mseg_inventory *inv);

#define INVENTORY_STAGED_MAX 4096

/* The journal: a reader that keeps what it made of the endpoints (the
 * daemon's desired view) resets it when it has read them, and later
 * reads only the ids changed since, each with the endpoint it had then
 * (inv->journal, in the order of the changes; an id may come more than
 * once, its first entry has the endpoint the reader saw). Until the next
 * reset no endpoint that leaves the inventory is freed. Past
 * INVENTORY_JOURNAL_MAX changes the journal is given up (journal_lost,
 * the retired endpoints freed): the reader reads everything again.
 * The first reset turns the journal on. */
#define INVENTORY_JOURNAL_MAX 16384
void inventory_journal_reset(struct mseg_inventory *inv);

struct mseg_endpoint *endpoint_free(struct mseg_endpoint *ep);

/* ---- namespaces ---- */

/* A namespace named @name (a DNS label) with @labels (copied; need not be
 * sorted); kubernetes.io/metadata.name is set to @name. -EINVAL for a bad
 * name, a bad label or a metadata.name label with another value. */
int namespace_new(const char *name, const struct mseg_label *labels, size_t n_labels,
		  struct mseg_namespace **ret_ns);

/* One namespace as a REST body (YAML or JSON): {labels: {k: v}}; "name" may
 * be left out and must equal @ns_name when given. Errors name @name
 * (file:line:col). */
int namespace_parse_buffer(const char *ns_name, const char *name, const char *buf, size_t len,
			   struct mseg_namespace **ret_ns, struct mseg_err *err);

struct mseg_namespace *namespace_free(struct mseg_namespace *ns);

/* Insert, replacing (and freeing) the namespace with the same name. Takes
 * @ns on success. Endpoint labels are not refilled: call
 * inventory_ns_labels_fill() after changes. */
int inventory_ns_put(struct mseg_inventory *inv, struct mseg_namespace *ns);
/* Remove and free; -ENOENT if absent. */
int inventory_ns_remove(struct mseg_inventory *inv, const char *name);
/* Binary search by name; NULL if absent. */
struct mseg_namespace *inventory_ns_find(const struct mseg_inventory *inv, const char *name);

/* The namespace labels of @ep from @ns (its namespace, or NULL when it is
 * not declared: then the endpoint's own ns_labels, if any), always with
 * kubernetes.io/metadata.name: ep->ns, as the API server sets it. Pure
 * apart from writing ep->ns_labels (allocated in ep's arena when they
 * change) and ep->ns_labels_serial: filled again from the same namespace
 * object, it compares nothing. 0 or -ENOMEM (then ep is unchanged). */
int endpoint_ns_labels_fill(struct mseg_endpoint *ep, const struct mseg_namespace *ns);

/* endpoint_ns_labels_fill() for every endpoint of @inv with the namespaces
 * declared in @nss (which may be @inv itself). */
int inventory_ns_labels_fill(struct mseg_inventory *inv, const struct mseg_inventory *nss);

#endif
