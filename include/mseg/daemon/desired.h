/* The desired state: every source of policies and endpoints (the policy
 * dir and inventory file, the REST API with its durable store), and the
 * one function that merges them into the view the compiler takes, with or
 * without a pending change. The daemon's reconcile and the API's dry runs,
 * checks and mutations all read the state through this module, so that a
 * dry-run diff and the real reconcile come from the same merge.
 *
 * Merge rule: a file wins over the API (and the cluster) on a name clash (the API refuses to
 * create such names; a file added later takes over, and the API object is
 * reported as shadowed). Nothing here logs. */
#ifndef MSEG_DESIRED_H
#define MSEG_DESIRED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mseg/util/err.h"
#include "mseg/model/model.h"
#include "mseg/model/plan.h"

enum desired_source {
	DESIRED_FILE,   /* --policy-dir and --endpoints: reloaded as a whole */
	DESIRED_API,    /* REST API: one object at a time, stored durably */
	DESIRED_KUBE,   /* the Kubernetes API server: rebuilt as a whole */
	DESIRED_N_SOURCES
};

struct store;
struct desired_kept;
struct desired_ns_ids;

/* A policy's stage (stage.c): the mode set through the API (`mseg mode`),
 * overriding the document's, and the end of a learning stage, both kept in
 * the state dir's `stages` file so that a restart keeps them. */
enum stage_mode { STAGE_SPEC = -1, STAGE_ENFORCE, STAGE_AUDIT, STAGE_LEARN };

struct stage_entry {
	char *key;                     /* "ns/name" */
	enum stage_mode mode;          /* STAGE_SPEC: the document's mode */
	uint32_t learn_for_s;          /* the override's period (STAGE_LEARN) */
	uint64_t until_s;              /* learning ends (Unix seconds); 0: none */
};

struct desired {
	struct mseg_policy_set pols[DESIRED_N_SOURCES];
	struct mseg_inventory inv[DESIRED_N_SOURCES];
	struct store *store;           /* the API's objects on disk; NULL: none */
	uint64_t generation;           /* bumped by every accepted API change */
	char **gone;                   /* ids whose netns is gone: left out of views */
	size_t n_gone, cap_gone;
	/* a Kubernetes source is configured: an API endpoint registered for a
	 * pod (with a pod_uid) is in a view only as that Pod's endpoint from
	 * the cluster (with its labels), never without them */
	bool kube_pods;
	struct stage_entry *stages;    /* sorted by key */
	size_t n_stages, cap_stages;
	uint64_t gone_serial;          /* moved by every change of @gone */
	struct desired_kept *kept;     /* the view desired_view_update() keeps */
};

/* One change not yet made: at most one policy put or delete and one
 * endpoint put or delete, as an API request proposes it. */
struct desired_change {
	const struct mseg_policy *put_pol;
	const char *del_ns, *del_name;
	const struct mseg_endpoint *put_ep;
	const char *del_id;
};

/* An address two endpoints claimed: the newer registration keeps it. */
struct desired_conflict {
	struct mseg_addr addr;
	const char *winner, *loser;   /* endpoint ids */
};

/* The merged state. Borrows every object from the sources (and from the
 * change; of a source's inventory, the changes staged in it too): valid
 * until the sources change. The sets can be handed to
 * reconciler_apply() as they are; the inventory is sorted by id. An
 * endpoint that lost an address to a newer one is a copy without it, owned
 * by the view. */
struct desired_view {
	struct mseg_policy_set pols;
	struct mseg_inventory inv;
	size_t shadowed_pols, shadowed_eps;   /* API objects hidden by a file */
	size_t gone;                          /* endpoints left out: netns gone */
	size_t waiting;                       /* left out: their Pod is not known yet */
	struct desired_conflict *conflicts;
	size_t n_conflicts;
	struct mseg_endpoint **copies;        /* owned */
	size_t n_copies;
	size_t *local;                        /* indices in @inv of the endpoints
						 that are no cluster peer */
	size_t n_local, cap_local;
	struct mseg_policy **pol_copies;      /* owned (shallow: they borrow the
						 original's arena): a stage applied */
	size_t n_pol_copies, cap_pol_copies;
	struct mseg_ep_brief *brief;          /* owned: brief[i] describes
						 inv.eps[i] (inv.brief too), for
						 compile_opts.eps_brief */
	struct desired_ns_ids *ns_ids;        /* owned: the brief's names (a kept
						 view's are the desired state's) */
};

void desired_init(struct desired *ds);
void desired_release(struct desired *ds);

/* Open the store in @state_dir and load the API's objects from it; a
 * document that does not parse any more is quarantined (see below), any
 * other failure loads nothing. Call once, before the first view. */
int desired_store_open(struct desired *ds, const char *state_dir, struct mseg_err *err);

/* Replace the file source with @pols and @inv, taking their contents (they
 * end empty). An endpoint the previous file had too keeps its registration
 * time; a new one is registered now. */
void desired_files_replace(struct desired *ds, struct mseg_policy_set *pols,
			   struct mseg_inventory *inv);

/* Replace the Kubernetes source, taking the contents of @pols and @inv.
 * Its endpoints are peers (no netns) or stand for the API endpoint of the
 * same id (a pod mseg-cni registered, with the cluster's labels): such
 * an endpoint is in a view only while the API one is. Policies lose a
 * name clash against files and the API. */
void desired_kube_replace(struct desired *ds, struct mseg_policy_set *pols,
			  struct mseg_inventory *inv);

/* Merge every source, with @ch (may be NULL) applied. -ENOMEM. */
int desired_view_build(const struct desired *ds, const struct desired_change *ch,
		       struct desired_view *ret);
void desired_view_release(struct desired_view *v);

/* The view of every source as desired_view_build(ds, NULL) makes it, kept
 * in @ds from one call to the next (the daemon's reconciles): when only
 * the cluster's endpoints changed since the last call, the ids its
 * inventory's journal names are taken out and put in again, one by one,
 * instead of a merge of every endpoint; so are the address claims (an
 * address table kept too). Anything else (a file, the API, a namespace,
 * an endpoint left out as gone, a change that touches an address claimed
 * twice) makes it merge everything again. The policies are merged at
 * every call (a pass over the policies, not over the endpoints).
 * *@ret_view belongs to @ds: valid until the sources change; never
 * released by the caller. Turns the journal of the cluster's inventory
 * on. -ENOMEM (the next call merges everything). */
int desired_view_update(struct desired *ds, const struct desired_view **ret_view);

/* How the last desired_view_update() made its view (for tests and
 * benchmarks): true when it merged every endpoint. */
bool desired_view_last_full(const struct desired *ds);

/* A compiled view: the plan points into the view's endpoints (some of them
 * copies the view owns), so both live and go together. */
struct desired_plan {
	struct desired_view view;
	struct mseg_plan *plan;
};

/* The policies of @v that can change a table: those that cover, or give
 * rules to, an endpoint that is not a cluster peer (a pod of another node
 * is never programmed, so a policy that concerns only such pods compiles
 * to nothing any table holds). All of them when @v has no cluster peer.
 * *@ret_items is malloc'd (the policies are @v's); -ENOMEM. */
int desired_view_programmable(const struct desired_view *v, struct mseg_policy ***ret_items,
			      size_t *ret_n);

/* Compile the merged state (with @ch applied, may be NULL): the policies
 * desired_view_programmable() keeps, against every endpoint. */
int desired_compile(const struct desired *ds, const struct desired_change *ch,
		    const struct compile_opts *opts, struct desired_plan *ret);
void desired_plan_release(struct desired_plan *p);

/* Leave endpoint @id out of every view (its netns is gone), or take it
 * back. -ENOMEM. */
int desired_endpoint_set_gone(struct desired *ds, const char *id, bool gone);
bool desired_endpoint_is_gone(const struct desired *ds, const char *id);

/* The API endpoint @id when it waits for its Pod object (kube_pods, a
 * pod_uid, and no endpoint of the cluster source stands for it yet): it is
 * left out of every view until the Pod is seen. NULL otherwise. */
const struct mseg_endpoint *desired_endpoint_waiting(const struct desired *ds, const char *id);

/* Whether an API object of this name is hidden by a file object. */
bool desired_policy_shadowed(const struct desired *ds, const struct mseg_policy *p);
bool desired_endpoint_shadowed(const struct desired *ds, const struct mseg_endpoint *ep);

/* Lookups in one source; NULL when absent. */
struct mseg_policy *desired_policy_find(const struct desired *ds, enum desired_source src,
					const char *ns, const char *name);
struct mseg_endpoint *desired_endpoint_find(const struct desired *ds, enum desired_source src,
					    const char *id);

/* API changes: the document @doc (exactly as received) is written to the
 * store durably first, then the object is swapped into the API source and
 * the generation moves. On error nothing changed (in memory or on disk),
 * except -ENOMEM after the durable write, which @err says. Puts take @p /
 * @ep on success; an endpoint put is registered now, and is no longer gone. Deletes return -ENOENT when the API holds no such
 * object. */
int desired_api_policy_put(struct desired *ds, struct mseg_policy *p, const char *doc,
			   size_t len, struct mseg_err *err);
int desired_api_policy_delete(struct desired *ds, const char *ns, const char *name,
			      struct mseg_err *err);
int desired_api_endpoint_put(struct desired *ds, struct mseg_endpoint *ep, const char *doc,
			     size_t len, struct mseg_err *err);
int desired_api_endpoint_delete(struct desired *ds, const char *id, struct mseg_err *err);

/* Namespaces (labels for NetworkPolicy namespaceSelectors), from the
 * inventory file's namespaces: section and the API; the file's wins a
 * name. Every view fills each endpoint's namespace labels from them
 * (kubernetes.io/metadata.name always set). */
const struct mseg_namespace *desired_namespace_find(const struct desired *ds, const char *name,
						    enum desired_source *ret_src);
int desired_api_namespace_put(struct desired *ds, struct mseg_namespace *ns, const char *doc,
			      size_t len, struct mseg_err *err);
int desired_api_namespace_delete(struct desired *ds, const char *name, struct mseg_err *err);
int desired_api_namespace_doc(const struct desired *ds, const char *name, char **ret_doc,
			      size_t *ret_len);

/* The stored document of an API policy (malloc'd); -ENOENT. */
int desired_api_policy_doc(const struct desired *ds, const char *ns, const char *name,
			   char **ret_doc, size_t *ret_len);

/* The stored document of an API endpoint (malloc'd); -ENOENT. */
int desired_api_endpoint_doc(const struct desired *ds, const char *id, char **ret_doc,
			     size_t *ret_len);

/* Stored documents that did not load at desired_store_open() and were
 * moved aside to the state dir's quarantine/: how many, and each one's
 * error and new place. */
size_t desired_store_quarantined_count(const struct desired *ds);
const char *desired_store_quarantined(const struct desired *ds, size_t i);

/* Apply the tombstones mseg-cni left in the state dir when a CNI DEL could
 * not reach msegd: each API endpoint named by one, registered before it,
 * is deleted (as the DEL would have). *@ret_ids lists those (malloc'd
 * strings and array, the caller frees). */
int desired_tombstones_apply(struct desired *ds, char ***ret_ids, size_t *ret_n,
			     struct mseg_err *err);

/* ---- stages (stage.c) ---- */

/* Load the stages file of the state dir (after desired_store_open()); a
 * missing file is no stage. A bad line is an error naming it. */
int desired_stages_load(struct desired *ds, struct mseg_err *err);

/* Set the mode of policy @ns/@name from now on (@now_s: Unix seconds):
 * STAGE_LEARN starts a learning stage of @learn_for_s (0: the policy's
 * spec.learnFor), STAGE_SPEC goes back to the document's mode. Written
 * durably first; nothing changes on error. The generation moves. */
int desired_stage_set(struct desired *ds, const char *ns, const char *name,
		      enum stage_mode mode, uint32_t learn_for_s, uint64_t now_s,
		      struct mseg_err *err);

/* Start the learning stage of every policy whose document says mode: learn
 * and that has none yet (its end is now + spec.learnFor), and forget the
 * stages of policies that are gone or no longer learn by document. Writes
 * the file when something changed; -errno when that failed (memory keeps
 * the change; the next call writes again). */
int desired_stages_sync(struct desired *ds, uint64_t now_s, struct mseg_err *err);

/* The stage of @ns/@name, or NULL. */
const struct stage_entry *desired_stage_find(const struct desired *ds, const char *ns,
					     const char *name);

/* Is @p (a policy of a view) in its learning stage at @now_s? */
bool desired_policy_learning(const struct mseg_policy *p, uint64_t now_s);

/* The directions (1 << dir) in which a policy of @v in its learning stage
 * at @now_s isolates @ep in enforce mode; the latest end of those stages
 * into *ret_until_s (may be NULL). */
unsigned desired_ep_learning_dirs(const struct desired_view *v, const struct mseg_endpoint *ep,
				  uint64_t now_s, uint64_t *ret_until_s);

/* Is a learning stage running at @now_s (cheap: the stages only)? */
bool desired_any_learning(const struct desired *ds, uint64_t now_s);

/* The state dir, or NULL before desired_store_open(). */
const char *desired_state_dir(const struct desired *ds);

#endif
