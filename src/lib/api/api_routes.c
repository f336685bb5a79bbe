/* The REST API's route handlers: policies, endpoints, rules, status,
 * metrics, check and flows (docs/rest-api.md); the HTTP transport that
 * calls them is api.c. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "mseg/api/api.h"
#include "mseg/compile/check.h"
#include "mseg/compile/learn.h"
#include "mseg/compile/render_text.h"
#include "mseg/model/addr.h"
#include "mseg/packet/flow.h"
#include "mseg/model/inventory.h"
#include "mseg/model/names.h"
#include "mseg/util/clock.h"
#include "mseg/util/log.h"
#include "mseg/kernel/nft.h"
#include "mseg/model/policy.h"
#include "mseg/model/selector.h"
#include "mseg/kernel/reconcile.h"
#include "mseg/daemon/accepted.h"
#include "mseg/daemon/daemon.h"
#include "mseg/daemon/desired.h"
#include "mseg/daemon/flowpipe.h"
#include "mseg/kube/kube.h"
#include "util/vec.h"
#include "api/api_json.h"
#include "api/api_priv.h"

static const struct compile_opts *api_copts(const struct api_ctx *x)
{
	return reconciler_compile_opts(x->be->rec);
}

static int views_compile(const struct api_ctx *x, const struct desired_change *ch,
			 struct desired_plan *ret)
{
	return desired_compile(x->be->desired, ch, api_copts(x), ret);
}

/* ---- the mutation path: validate, compile, persist, swap, reconcile ---- */

static bool query_flag(const struct api_ctx *x, const char *key)
{
	const char *v = api_query(x, key);

	return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0);
}

/* After a change: reconcile and describe the outcome. */
/* ---- coverage: what a policy's groups select, and what looks wrong ---- */

/* "app=web,tier in (a,b),!canary" */
static void selector_text(const struct mseg_selector *sel, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sel->n_reqs && n < size; i++) {
		const struct mseg_sel_req *q = &sel->reqs[i];
		const char *sep = i ? "," : "";

		if (q->op == MSEG_SEL_IN && q->n_values == 1) {
			n += (size_t)snprintf(buf + n, size - n, "%s%s=%s", sep, q->key, q->values[0]);
		} else if (q->op == MSEG_SEL_EXISTS) {
			n += (size_t)snprintf(buf + n, size - n, "%s%s", sep, q->key);
		} else if (q->op == MSEG_SEL_DOES_NOT_EXIST) {
			n += (size_t)snprintf(buf + n, size - n, "%s!%s", sep, q->key);
		} else {
			n += (size_t)snprintf(buf + n, size - n, "%s%s %s (", sep, q->key,
					      q->op == MSEG_SEL_IN ? "in" : "notin");
			for (size_t v = 0; v < q->n_values && n < size; v++)
				n += (size_t)snprintf(buf + n, size - n, "%s%s", v ? "," : "",
						      q->values[v]);
			if (n < size)
				n += (size_t)snprintf(buf + n, size - n, ")");
		}
	}
	if (!sel->n_reqs)
		snprintf(buf, size, "every endpoint");
}

/* Calls @fn for each endpoint peer of @p (subjects, rule sides and peers)
 * once per group name; unnamed peers (NetworkPolicy) are named by their
 * position. */
static void policy_groups_each(const struct mseg_policy *p,
			       void (*fn)(const char *group, const struct mseg_peer *peer, void *data),
			       void *data, json_t *seen)
{
	const struct mseg_peer *cand[3];

	for (size_t i = 0; i < p->n_subjects + p->n_rules; i++) {
		size_t nc = 0;

		if (i < p->n_subjects) {
			cand[nc++] = &p->subjects[i];
		} else {
			const struct mseg_rule *r = &p->rules[i - p->n_subjects];

			cand[nc++] = &r->local;
			for (size_t k = 0; k < r->n_peers; k++) {
				const struct mseg_peer *peer = &r->peers[k];
				char name[64];

				if (peer->kind != MSEG_PEER_ENDPOINTS)
					continue;
				snprintf(name, sizeof(name), "line %u", peer->pos.line);
				if (json_object_get(seen, peer->group ? peer->group : name))
					continue;
				json_object_set_new(seen, peer->group ? peer->group : name, json_true());
				fn(peer->group ? peer->group : name, peer, data);
			}
		}
		for (size_t k = 0; k < nc; k++) {
			char name[64];

			if (cand[k]->kind != MSEG_PEER_ENDPOINTS)
				continue;
			snprintf(name, sizeof(name), "line %u", cand[k]->pos.line);
			if (json_object_get(seen, cand[k]->group ? cand[k]->group : name))
				continue;
			json_object_set_new(seen, cand[k]->group ? cand[k]->group : name, json_true());
			fn(cand[k]->group ? cand[k]->group : name, cand[k], data);
		}
	}
}

struct groups_ctx {
	const struct desired_view *v;
	json_t *groups;     /* {"group": ["ep", ...]} */
	json_t *warnings;   /* or NULL */
};

static void group_resolve(const char *group, const struct mseg_peer *peer, void *data)
{
	struct groups_ctx *g = data;
	json_t *ids = json_array();

	for (size_t i = 0; i < g->v->inv.n; i++)
		if (selector_peer_selects(peer, g->v->inv.eps[i]))
			json_array_append_new(ids, json_string(g->v->inv.eps[i]->id));
	if (g->warnings && json_array_size(ids) == 0) {
		char sel[256], msg[512];

		selector_text(&peer->ep_sel, sel, sizeof(sel));
		snprintf(msg, sizeof(msg), "group '%s' selects no endpoint (%s%s%s)", group, sel,
			 peer->ns_scope == MSEG_NS_NAMED ? " in namespace " : "",
			 peer->ns_scope == MSEG_NS_NAMED ? selector_ns_name(peer->ns) : "");
		json_array_append_new(g->warnings, json_string(msg));
	}
	json_object_set_new(g->groups, group, ids);
}

/* {"group": [endpoint ids]} of @p over @v; with @warnings, what looks like
 * a mistake is appended to it. */
static json_t *policy_groups(const struct mseg_policy *p, const struct desired_view *v,
			     json_t *warnings)
{
	struct groups_ctx g = { .v = v, .groups = json_object(), .warnings = warnings };
	json_t *seen = json_object();
	bool ns_used = false;

	if (warnings && p->ns_defaulted)
		json_array_append_new(warnings, json_sprintf("metadata.namespace is not set: the "
							     "policy went to namespace 'default'"));
	for (size_t i = 0; i < v->inv.n && !ns_used; i++)
		ns_used = strcmp(selector_ns_name(v->inv.eps[i]->ns), p->ns) == 0;
	if (warnings && !ns_used) {
		json_array_append_new(warnings, json_sprintf("namespace '%s' has no endpoints: the "
							     "policy covers nothing yet", p->ns));
		g.warnings = NULL;   /* every group would say the same */
	}
	policy_groups_each(p, group_resolve, &g, seen);
	json_decref(seen);
	return g.groups;
}

static size_t policy_covers(const struct mseg_policy *p, const struct desired_view *v)
{
	size_t n = 0;

	for (size_t i = 0; i < v->inv.n; i++)
		n += selector_policy_covers(p, v->inv.eps[i]);
	return n;
}

/* What looks wrong with the object @ch puts, in the state with @ch made. */
static json_t *change_warnings(struct api_ctx *x, const struct desired_change *ch)
{
	json_t *w = json_array();
	struct desired_view v;

	if (ch && ch->put_pol && desired_view_build(x->be->desired, ch, &v) == 0) {
		json_decref(policy_groups(ch->put_pol, &v, w));
		desired_view_release(&v);
	}
	if (ch && ch->put_ep && ch->put_ep->netns && access(ch->put_ep->netns, F_OK) != 0)
		json_array_append_new(w, json_sprintf("netns '%s' does not exist: the endpoint "
						      "cannot be programmed", ch->put_ep->netns));
	return w;
}

static json_t *mutation_result(struct api_ctx *x, const struct desired_change *ch,
			       const char *what, const char *kind, const char *name)
{
	struct reconciler *rec = x->be->rec;
	json_t *o = json_object(), *errs = json_array();
	int r;

	r = x->be->reconcile(x->be->ctx);
	for (size_t i = 0; i < reconciler_ep_count(rec); i++) {
		struct reconcile_ep_status st;

		if (reconciler_ep_status(rec, i, &st) == 0 && st.error)
			json_array_append_new(errs, json_pack("{ssss}", "endpoint", st.id, "error",
							      st.error));
	}
	json_object_set_new(o, "result", json_string(what));
	json_object_set_new(o, kind, json_string(name));
	json_object_set_new(o, "generation", json_integer((json_int_t)x->be->desired->generation));
	json_object_set_new(o, "programmed", json_boolean(r == 0));
	json_object_set_new(o, "errors", errs);
	json_object_set_new(o, "warnings", change_warnings(x, ch));
	return o;
}

/* A desired_api_*() failure: the store refused (nothing changed), or the
 * object was stored but memory ran out taking it in (-ENOMEM: a restart
 * brings it). */
static void mutation_error(struct api_ctx *x, int r, const char *what, const struct mseg_err *err)
{
	char msg[1024];

	err_format(err, msg, sizeof(msg));
	if (r == -ENOMEM)
		api_resp_error(x, 503, "%s", msg);
	else
		api_resp_error(x, 500, "%s: %s; nothing changed", what, msg);
}

/* ---- replay: the recorded flows against a would-be state ---- */

#define REPLAY_MAX_GROUPS 1000

struct replay_item {
	const char *ep;               /* the ring's or the plan's endpoint id (valid for
					 the request) */
	uint8_t dir, proto, from, to; /* from: recorded verdict (REPLAY_ALLOWED: an
					 accepted-connection summary); to: REPLAY_* */
	uint16_t port;
	bool has_port;
	struct mseg_addr peer;
	uint64_t records, packets;    /* flow records */
	uint64_t connections;         /* accepted-connection summaries */
	uint64_t idle_ms;             /* the group's most recent connection */
};

enum { REPLAY_DROPPED = FLOW_DROPPED, REPLAY_AUDITED = FLOW_AUDITED, REPLAY_ALLOWED };

struct replay_ctx {
	const struct mseg_plan *plan;
	struct replay_item *v;
	size_t n, cap;
	uint64_t examined;
	/* the accepted-connection summaries of one endpoint */
	const struct mseg_ep_plan *now_ep, *after_ep;
	const struct accepted_ep *acc;   /* msegd's summaries of now_ep */
	uint64_t summaries;
};

static struct replay_item *replay_item_new(struct replay_ctx *rc)
{
	struct replay_item *it;

	if (rc->n == rc->cap) {
		size_t cap = rc->cap ? rc->cap * 2 : 64;
		struct replay_item *v = realloc(rc->v, cap * sizeof(*v));

		if (!v)
			return NULL;
		rc->v = v;
		rc->cap = cap;
	}
	it = &rc->v[rc->n++];
	memset(it, 0, sizeof(*it));
	return it;
}

static const struct mseg_ep_plan *plan_ep_find(const struct mseg_plan *plan, const char *id)
{
	size_t lo = 0, hi = plan->n_eps;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(plan->eps[mid].ep->id, id);

		if (c == 0)
			return &plan->eps[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The verdict the would-be plan gives the record's first packet; a
 * record whose verdict would change is kept. */
static int replay_cb(const struct flow_record *rec, void *data)
{
	struct replay_ctx *rc = data;
	const struct mseg_ep_plan *ep = plan_ep_find(rc->plan, rec->ep->id);
	const struct mseg_dir_plan *dp;
	const struct mseg_addr *peer;
	struct replay_item *it;
	uint16_t port;
	uint8_t to;

	rc->examined++;
	if (!ep || rec->dir >= MSEG_DIR_COUNT)
		return 0;   /* the endpoint would be gone: no verdict */
	dp = &ep->dir[rec->dir];
	peer = rec->dir == MSEG_DIR_INGRESS ? &rec->src : &rec->dst;
	port = (rec->flags & FLOW_F_PORTS) ? rec->dport : 0;
	if (check_dir_admits(dp, peer, rec->proto, port, NULL))
		to = REPLAY_ALLOWED;
	else
		to = dp->mode == MSEG_MODE_AUDIT ? REPLAY_AUDITED : REPLAY_DROPPED;
	if (to == rec->verdict)
		return 0;
	it = replay_item_new(rc);
	if (!it)
		return -ENOMEM;
	it->ep = rec->ep->id;
	it->dir = rec->dir;
	it->proto = rec->proto;
	it->from = rec->verdict;
	it->to = to;
	it->has_port = (rec->flags & FLOW_F_PORTS) != 0;
	it->port = port;
	it->peer.family = peer->family;
	memcpy(it->peer.bytes, peer->bytes, peer->family == AF_INET ? 4 : 16);
	it->records = 1;
	it->packets = rec->count;
	return 0;
}

/* An accepted-connection summary the current plan admits (one it does not
 * is from before a change, when another plan admitted it): the verdict
 * the would-be plan gives its connections. */
static int replay_seen_cb(const struct ep_seen *s, void *data)
{
	struct replay_ctx *rc = data;
	const struct mseg_dir_plan *now = &rc->now_ep->dir[s->dir], *after;
	struct replay_item *it;
	uint8_t to;

	rc->summaries++;
	if (!check_dir_admits(now, &s->peer, s->proto, s->port, NULL))
		return 0;
	if (!rc->after_ep)
		return 0;   /* the endpoint would be gone: no verdict */
	after = &rc->after_ep->dir[s->dir];
	if (check_dir_admits(after, &s->peer, s->proto, s->port, NULL))
		return 0;
	to = after->mode == MSEG_MODE_AUDIT ? REPLAY_AUDITED : REPLAY_DROPPED;
	it = replay_item_new(rc);
	if (!it)
		return -ENOMEM;
	it->ep = rc->now_ep->ep->id;
	it->dir = (uint8_t)s->dir;
	it->proto = s->proto;
	it->from = REPLAY_ALLOWED;
	it->to = to;
	it->has_port = s->has_port;
	it->port = s->port;
	it->peer = s->peer;
	it->connections = s->connections;
	it->idle_ms = s->idle_ms;
	return 0;
}

/* A kernel element of a direction msegd summarizes: the summary stands
 * for it (and for what the kernel forgot: a replace, a timeout). */
static int replay_kernel_cb(const struct ep_seen *s, void *data)
{
	struct replay_ctx *rc = data;

	if (rc->acc && (rc->acc->dirs & (1u << s->dir)) &&
	    accepted_entry_find(rc->acc, (uint8_t)s->dir, &s->peer, s->proto,
				s->has_port ? s->port : 0))
		return 0;
	return replay_seen_cb(s, data);
}

/* The accepted connections of every endpoint with a table now: msegd's
 * summaries (learning directions, include/mseg/daemon/accepted.h) and
 * what the kernel's seen sets hold beyond them (docs/ruleset.md). An
 * endpoint whose namespace cannot be read has its summaries only. */
static int replay_seen(struct api_ctx *x, const struct mseg_plan *now, struct replay_ctx *rc)
{
	struct reconciler *rec = x->be->rec;
	uint64_t now_ns = clock_real_ns();

	for (size_t i = 0; rec && i < now->n_eps; i++) {
		const struct mseg_ep_plan *ep = &now->eps[i];
		ssize_t k = reconciler_ep_index(rec, ep->ep->id);
		struct netns *ns = k >= 0 ? reconciler_ep_netns(rec, (size_t)k) : NULL;
		int r;

		if (!ep_plan_has_table(ep))
			continue;
		rc->now_ep = ep;
		rc->after_ep = plan_ep_find(rc->plan, ep->ep->id);
		rc->acc = accepted_ep_find(x->be->accepted, ep->ep->id);
		for (size_t e = 0; rc->acc && e < rc->acc->n; e++) {
			const struct accepted_entry *a = &rc->acc->v[e];
			struct ep_seen s = {
				.dir = (enum mseg_dir)a->dir, .peer = a->peer, .proto = a->proto,
				.has_port = a->has_port, .port = a->port,
				.connections = a->connections,
				.idle_ms = now_ns > a->last_ns ? (now_ns - a->last_ns) / 1000000 : 0,
			};

			r = replay_seen_cb(&s, rc);
			if (r < 0)
				return r;
		}
		if (!ns)
			continue;
		r = ep_table_seen_read(ns, replay_kernel_cb, rc, NULL);
		if (r == -ENOMEM)
			return r;
	}
	return 0;
}

static int replay_item_cmp(const void *pa, const void *pb)
{
	const struct replay_item *a = pa, *b = pb;
	int c = strcmp(a->ep, b->ep);

	if (c)
		return c;
	if (a->dir != b->dir)
		return a->dir < b->dir ? -1 : 1;
	if (a->peer.family != b->peer.family)
		return a->peer.family < b->peer.family ? -1 : 1;
	if ((c = memcmp(a->peer.bytes, b->peer.bytes, sizeof(a->peer.bytes))))
		return c;
	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	if (a->from != b->from)
		return a->from < b->from ? -1 : 1;
	return a->to < b->to ? -1 : a->to > b->to;
}

static const char *replay_verdict_name(uint8_t v)
{
	return v == REPLAY_ALLOWED ? "allowed" : flow_verdict_name((enum flow_verdict)v);
}

/* {"records": examined, "summaries": examined, "changed": N, "groups":
 * [{endpoint, direction, peer, proto, port, from, to, records, packets |
 * connections, last_seen}]}: per endpoint, peer and port, the recorded
 * flows and the accepted-connection summaries whose verdict the would-be
 * state changes. */
static json_t *replay_json(struct api_ctx *x, const struct mseg_plan *now,
			   const struct mseg_plan *after)
{
	struct replay_ctx rc = { .plan = after };
	struct flow_filter f;
	json_t *groups, *o;
	uint64_t changed = 0;
	size_t k = 0;

	flow_filter_init(&f);
	if (x->a->flows && flow_ring_query(x->a->flows, &f, replay_cb, &rc) < 0) {
		free(rc.v);
		return NULL;
	}
	if (now && replay_seen(x, now, &rc) < 0) {
		free(rc.v);
		return NULL;
	}
	qsort(rc.v, rc.n, sizeof(*rc.v), replay_item_cmp);
	for (size_t i = 0; i < rc.n; i++) {
		changed++;
		if (k && replay_item_cmp(&rc.v[k - 1], &rc.v[i]) == 0) {
			rc.v[k - 1].records += rc.v[i].records;
			rc.v[k - 1].packets += rc.v[i].packets;
			rc.v[k - 1].connections += rc.v[i].connections;
			if (rc.v[i].idle_ms < rc.v[k - 1].idle_ms)
				rc.v[k - 1].idle_ms = rc.v[i].idle_ms;
			continue;
		}
		rc.v[k++] = rc.v[i];
	}
	groups = json_array();
	for (size_t i = 0; i < k && i < REPLAY_MAX_GROUPS; i++) {
		const struct replay_item *it = &rc.v[i];
		char a[64], proto[16];
		json_t *g;

		addr_format(&it->peer, a, sizeof(a));
		if (!render_text_proto(it->proto, proto, sizeof(proto)))
			snprintf(proto, sizeof(proto), "%u", it->proto);
		g = json_pack("{ss,ss,ss,ss,ss,ss}", "endpoint", it->ep, "direction",
			      flow_dir_name((enum mseg_dir)it->dir), "peer", a, "proto", proto, "from",
			      replay_verdict_name(it->from), "to", replay_verdict_name(it->to));
		if (g && it->from == REPLAY_ALLOWED) {
			json_object_set_new(g, "connections", json_integer((json_int_t)it->connections));
			char ts[64];

			json_object_set_new(g, "last_seen",
					    json_string(flow_time_format(clock_real_ns() -
									 it->idle_ms * 1000000ull,
									 ts, sizeof(ts))));
		} else if (g) {
			json_object_set_new(g, "records", json_integer((json_int_t)it->records));
			json_object_set_new(g, "packets", json_integer((json_int_t)it->packets));
		}
		if (g && it->has_port)
			json_object_set_new(g, "port", json_integer(it->port));
		json_array_append_new(groups, g);
	}
	o = json_pack("{sI,sI,sI,sI,so}", "records", (json_int_t)rc.examined, "summaries",
		      (json_int_t)rc.summaries, "changed", (json_int_t)changed, "groups_total",
		      (json_int_t)k, "groups", groups);
	free(rc.v);
	return o;
}

static void dry_run_answer(struct api_ctx *x, const struct desired_change *ch, const char *what,
			   const char *kind, const char *name)
{
	struct desired_plan before = { 0 }, after = { 0 };
	json_t *o, *changes;
	int r;

	r = views_compile(x, NULL, &before);
	if (r == 0)
		r = views_compile(x, ch, &after);
	if (r < 0) {
		api_resp_error(x, 500, "compile: %s", strerror(-r));
		goto out_free;
	}
	changes = api_json_plan_diff(before.plan, after.plan, API_DIFF_MAX_LIST);
	o = json_object();
	json_object_set_new(o, "dry_run", json_true());
	json_object_set_new(o, "result", json_string(what));
	json_object_set_new(o, kind, json_string(name));
	json_object_set_new(o, "endpoints_changed",
			    json_integer(changes ? (json_int_t)json_array_size(changes) : 0));
	json_object_set_new(o, "changes", changes ? changes : json_array());
	json_object_set_new(o, "warnings", change_warnings(x, ch));
	if (query_flag(x, "replay")) {
		json_t *rp = replay_json(x, before.plan, after.plan);

		if (!rp) {
			json_decref(o);
			api_resp_error(x, 503, "out of memory");
			goto out_free;
		}
		json_object_set_new(o, "replay", rp);
	}
	api_resp_json(x, 200, o);
out_free:
	desired_plan_release(&before);
	desired_plan_release(&after);
}

/* Policy and endpoint bodies: YAML or JSON, whatever the Content-Type says
 * (one parser reads both; curl's default form type is sniffed as a
 * document too). Multipart forms are refused: there is no form processor. */
static bool body_type_ok(struct api_ctx *x)
{
	const char *ct = api_header(x, MHD_HTTP_HEADER_CONTENT_TYPE);

	if (ct && strncasecmp(ct, "multipart/", 10) == 0) {
		api_resp_error(x, 415, "unsupported Content-Type '%.64s': send YAML or JSON", ct);
		return false;
	}
	return true;
}

/* The stored document (@r: the read's result; @doc freed here) is the
 * request's body, byte for byte: nothing to do. */
static bool api_doc_unchanged(int r, char *doc, size_t len, const struct api_req *rq)
{
	bool same = r == 0 && len == rq->len && (len == 0 || memcmp(doc, rq->body, len) == 0);

	free(doc);
	return same;
}

static void unchanged_answer(struct api_ctx *x, const struct desired_change *ch, bool dry_run,
			     const char *kind, const char *name)
{
	json_t *o = json_object();

	if (dry_run)
		json_object_set_new(o, "dry_run", json_true());
	json_object_set_new(o, "result", json_string("unchanged"));
	json_object_set_new(o, kind, json_string(name));
	json_object_set_new(o, "generation", json_integer((json_int_t)x->be->desired->generation));
	if (dry_run) {
		json_object_set_new(o, "endpoints_changed", json_integer(0));
		json_object_set_new(o, "changes", json_array());
	} else {
		json_object_set_new(o, "programmed", json_boolean(reconciler_ready(x->be->rec)));
		json_object_set_new(o, "errors", json_array());
	}
	json_object_set_new(o, "warnings", change_warnings(x, ch));
	api_resp_json(x, 200, o);
}

/* PUT /v1/policies/{ns}/{name}/mode {"mode": "learn", "learnFor": "12h"}:
 * the policy's mode from now on, over its document's ("spec": the
 * document's again); kept in the state dir across restarts. */
void api_handle_policy_mode(struct api_ctx *x, const char *ns, const char *name)
{
	static const char *const names[] = { "enforce", "audit", "learn", "spec" };
	static const enum stage_mode modes[] = { STAGE_ENFORCE, STAGE_AUDIT, STAGE_LEARN,
						 STAGE_SPEC };
	json_t *body, *v;
	json_error_t je;
	const char *key, *mode;
	uint32_t learn_for = 0;
	struct mseg_err err;
	int m = -1, r;

	body = json_loadb(x->rq->body ? x->rq->body : "", x->rq->len, JSON_REJECT_DUPLICATES, &je);
	if (!body) {
		api_resp_json(x, 400, api_json_error(je.text, (unsigned)je.line, (unsigned)je.column));
		return;
	}
	if (!json_is_object(body)) {
		api_resp_error(x, 400, "expected a JSON object like {\"mode\": \"learn\", "
			       "\"learnFor\": \"12h\"}");
		goto out_free;
	}
	json_object_foreach(body, key, v) {
		if (strcmp(key, "mode") != 0 && strcmp(key, "learnFor") != 0) {
			api_resp_error(x, 400, "unknown key '%.64s': only mode and learnFor", key);
			goto out_free;
		}
	}
	mode = json_string_value(json_object_get(body, "mode"));
	for (int i = 0; mode && i < 4; i++)
		if (strcmp(mode, names[i]) == 0)
			m = i;
	if (m < 0) {
		api_resp_error(x, 400, "mode: expected enforce, audit, learn or spec (the document's)");
		goto out_free;
	}
	v = json_object_get(body, "learnFor");
	if (v) {
		const char *d = json_string_value(v);

		if (modes[m] != STAGE_LEARN) {
			api_resp_error(x, 400, "learnFor: only with mode learn");
			goto out_free;
		}
		r = d ? policy_duration_parse(d, &learn_for) : -EINVAL;
		if (r == -ERANGE) {
			api_resp_error(x, 400, "learnFor: '%.32s' is out of range (1m to 90d)", d);
			goto out_free;
		}
		if (r < 0) {
			api_resp_error(x, 400, "learnFor: expected a duration like \"12h\" (a number "
				       "and s, m, h or d)");
			goto out_free;
		}
	}
	err_clear(&err);
	r = desired_stage_set(x->be->desired, ns, name, modes[m], learn_for,
			      clock_real_ns() / 1000000000ull, &err);
	if (r == -ENOENT) {
		api_resp_error(x, 404, "no policy '%s/%s'", ns, name);
		goto out_free;
	}
	if (r < 0) {
		mutation_error(x, r, "mode", &err);
		goto out_free;
	}
	{
		const struct stage_entry *st = desired_stage_find(x->be->desired, ns, name);
		char full[160];
		json_t *o;

		snprintf(full, sizeof(full), "%s/%s", ns, name);
		o = mutation_result(x, NULL, "mode set", "policy", full);
		json_object_set_new(o, "mode", json_string(names[m]));
		if (st && st->until_s) {
			char ts[64];

			json_object_set_new(o, "learn_until",
					    json_string(flow_time_format(st->until_s * 1000000000ull,
									 ts, sizeof(ts))));
		}
		api_resp_json(x, 200, o);
	}
out_free:
	json_decref(body);
}

void api_handle_policy_put(struct api_ctx *x, const char *ns, const char *name)
{
	const struct api_backend *be = x->be;
	struct mseg_policy_set tmp;
	struct mseg_policy *p, *fp;
	struct desired_plan plan = { 0 };
	struct desired_change ch = { 0 };
	struct mseg_err err;
	char full[160];
	bool existed;
	int r;

	if (!name_is_dns_label(ns) || !name_is_dns_label(name)) {
		api_resp_error(x, 400, "'%s/%s': namespace and name must be DNS labels", ns, name);
		return;
	}
	if (!body_type_ok(x))
		return;
	snprintf(full, sizeof(full), "%s/%s", ns, name);
	policy_set_init(&tmp);
	err_clear(&err);
	r = policy_parse_buffer(&tmp, "body", x->rq->body ? x->rq->body : "", x->rq->len, &err);
	if (r == -EFBIG) {
		api_resp_err(x, 413, &err);
		goto out_release;
	}
	if (r == -ENOMEM) {
		api_resp_error(x, 503, "out of memory");
		goto out_release;
	}
	if (r < 0) {
		api_resp_err(x, 400, &err);
		goto out_release;
	}
	if (tmp.n != 1) {
		api_resp_error(x, 400, "expected exactly one policy document, found %zu", tmp.n);
		goto out_release;
	}
	p = tmp.items[0];
	if (strcmp(p->ns, ns) != 0 || strcmp(p->name, name) != 0) {
		api_resp_json(x, 400, api_json_error("", p->pos.line, p->pos.col));
		{
			char msg[512];

			snprintf(msg, sizeof(msg), "the document is policy '%s/%s' but the path names '%s'",
				 p->ns, p->name, full);
			json_object_set_new(x->resp.json, "error", json_string(msg));
		}
		goto out_release;
	}
	fp = policy_set_find(&be->desired->pols[DESIRED_FILE], ns, name);
	if (fp) {
		api_resp_error(x, 409, "policy '%s' comes from the policy dir (%s); change it there",
			   full, fp->pos.file ? fp->pos.file : "?");
		goto out_release;
	}
	existed = policy_set_find(&be->desired->pols[DESIRED_API], ns, name) != NULL;
	if (existed) {
		char *doc = NULL;
		size_t len = 0;

		r = desired_api_policy_doc(be->desired, ns, name, &doc, &len);
		if (api_doc_unchanged(r, doc, len, x->rq)) {
			ch.put_pol = p;
			unchanged_answer(x, &ch, query_flag(x, "dry_run"), "policy", full);
			goto out_release;
		}
	}
	ch.put_pol = p;
	if (query_flag(x, "dry_run")) {
		dry_run_answer(x, &ch, existed ? "would replace" : "would create", "policy", full);
		goto out_release;
	}
	/* compile first: a state that does not compile is never stored */
	r = views_compile(x, &ch, &plan);
	desired_plan_release(&plan);
	if (r < 0) {
		api_resp_error(x, 500, "compile: %s; nothing changed", strerror(-r));
		goto out_release;
	}
	err_clear(&err);
	r = desired_api_policy_put(be->desired, p, x->rq->body ? x->rq->body : "", x->rq->len, &err);
	if (r < 0) {
		mutation_error(x, r, "cannot store the policy", &err);
		goto out_release;
	}
	tmp.n = 0;   /* taken */
	log_info("api: policy '%s' %s", full, existed ? "replaced" : "created");
	api_resp_json(x, existed ? 200 : 201,
		  mutation_result(x, &ch, existed ? "replaced" : "created", "policy", full));
out_release:
	policy_set_release(&tmp);
}

void api_handle_policy_delete(struct api_ctx *x, const char *ns, const char *name)
{
	const struct api_backend *be = x->be;
	struct mseg_policy *fp;
	struct desired_change ch = { .del_ns = ns, .del_name = name };
	struct mseg_err err;
	char full[600];
	int r;

	snprintf(full, sizeof(full), "%s/%s", ns, name);
	fp = policy_set_find(&be->desired->pols[DESIRED_FILE], ns, name);
	if (fp) {
		api_resp_error(x, 409, "policy '%s' comes from the policy dir (%s); remove it there",
			   full, fp->pos.file ? fp->pos.file : "?");
		return;
	}
	if (!policy_set_find(&be->desired->pols[DESIRED_API], ns, name)) {
		api_resp_error(x, 404, "no policy '%s'", full);
		return;
	}
	if (query_flag(x, "dry_run")) {
		dry_run_answer(x, &ch, "would delete", "policy", full);
		return;
	}
	err_clear(&err);
	r = desired_api_policy_delete(be->desired, ns, name, &err);
	if (r < 0) {
		mutation_error(x, r, "cannot remove the stored policy", &err);
		return;
	}
	log_info("api: policy '%s' deleted", full);
	api_resp_json(x, 200, mutation_result(x, &ch, "deleted", "policy", full));
}

/* Another endpoint whose netns is the same network namespace as @ep's
 * (the same nsfs inode, whatever the path: /run/netns/x and
 * /proc/PID/ns/net of a process inside it), or NULL. */
static const char *netns_owner(struct api_ctx *x, const struct mseg_endpoint *ep)
{
	const struct desired *ds = x->be->desired;
	struct stat a, b;

	if (!ep->netns || stat(ep->netns, &a) < 0)
		return NULL;
	for (int src = 0; src < DESIRED_N_SOURCES; src++)
		for (size_t i = 0; i < ds->inv[src].n; i++) {
			const struct mseg_endpoint *o = ds->inv[src].eps[i];

			if (strcmp(o->id, ep->id) == 0 || !o->netns || stat(o->netns, &b) < 0)
				continue;
			if (a.st_dev == b.st_dev && a.st_ino == b.st_ino)
				return o->id;
		}
	return NULL;
}

/* Create or replace API endpoint @ep (taken) whose document is @doc: the
 * path PUT and PATCH share. */
static void endpoint_apply(struct api_ctx *x, struct mseg_endpoint *ep, const char *doc,
			   size_t len)
{
	const struct api_backend *be = x->be;
	struct desired_plan plan = { 0 };
	struct desired_change ch = { .put_ep = ep };
	const char *id = ep->id, *other;
	struct mseg_err err;
	bool existed;
	int r;

	if (inventory_find(&be->desired->inv[DESIRED_FILE], id)) {
		api_resp_error(x, 409, "endpoint '%s' comes from the inventory file (%s); change it there",
			   id, be->cfg->endpoints_file ? be->cfg->endpoints_file : "?");
		goto out_free;
	}
	other = netns_owner(x, ep);
	if (other) {
		api_resp_error(x, 409, "netns '%s' is the namespace of endpoint '%s' already; one "
			       "endpoint per network namespace", ep->netns, other);
		goto out_free;
	}
	existed = inventory_find(&be->desired->inv[DESIRED_API], id) != NULL;
	if (query_flag(x, "dry_run")) {
		dry_run_answer(x, &ch, existed ? "would replace" : "would create", "endpoint", id);
		goto out_free;
	}
	r = views_compile(x, &ch, &plan);
	desired_plan_release(&plan);
	if (r < 0) {
		api_resp_error(x, 500, "compile: %s; nothing changed", strerror(-r));
		goto out_free;
	}
	err_clear(&err);
	r = desired_api_endpoint_put(be->desired, ep, doc, len, &err);
	if (r < 0) {
		mutation_error(x, r, "cannot store the endpoint", &err);
		goto out_free;
	}
	log_info("api: endpoint '%s' %s", ep->id, existed ? "replaced" : "created");
	api_resp_json(x, existed ? 200 : 201,
		      mutation_result(x, &ch, existed ? "replaced" : "created", "endpoint", ep->id));
	return;
out_free:
	endpoint_free(ep);
}

/* A parse failure of an endpoint body: 413, 503 or 400 with the position. */
static void endpoint_parse_error(struct api_ctx *x, int r, const struct mseg_err *err)
{
	if (r == -EFBIG)
		api_resp_err(x, 413, err);
	else if (r == -ENOMEM)
		api_resp_error(x, 503, "out of memory");
	else
		api_resp_err(x, 400, err);
}

void api_handle_endpoint_put(struct api_ctx *x, const char *id)
{
	struct mseg_endpoint *ep = NULL;
	struct mseg_err err;
	char *doc = NULL;
	size_t len = 0;
	int r;

	if (!name_is_endpoint_id(id)) {
		api_resp_error(x, 400, "endpoint id '%s': " NAME_ENDPOINT_ID_HINT, id);
		return;
	}
	if (!body_type_ok(x))
		return;
	err_clear(&err);
	r = endpoint_parse_buffer(id, "body", x->rq->body ? x->rq->body : "", x->rq->len, &ep, &err);
	if (r < 0) {
		endpoint_parse_error(x, r, &err);
		return;
	}
	r = desired_api_endpoint_doc(x->be->desired, id, &doc, &len);
	if (api_doc_unchanged(r, doc, len, x->rq) &&
	    !inventory_find(&x->be->desired->inv[DESIRED_FILE], id)) {
		struct desired_change ch = { .put_ep = ep };

		unchanged_answer(x, &ch, query_flag(x, "dry_run"), "endpoint", id);
		endpoint_free(ep);
		return;
	}
	endpoint_apply(x, ep, x->rq->body ? x->rq->body : "", x->rq->len);
}

/* PATCH /v1/endpoints/{id}: a JSON merge patch (RFC 7386) of the labels
 * only: {"labels": {"k": "v", "gone": null}}. Everything else of the
 * endpoint stays; the result is stored as a whole JSON document. */
void api_handle_endpoint_patch(struct api_ctx *x, const char *id)
{
	const struct mseg_endpoint *cur;
	struct mseg_endpoint *ep = NULL;
	json_t *patch = NULL, *doc = NULL, *labels, *pl, *v;
	json_error_t je;
	struct mseg_err err;
	const char *key;
	char *text = NULL;
	int r;

	if (inventory_find(&x->be->desired->inv[DESIRED_FILE], id)) {
		api_resp_error(x, 409, "endpoint '%s' comes from the inventory file (%s); change it there",
			       id, x->be->cfg->endpoints_file ? x->be->cfg->endpoints_file : "?");
		return;
	}
	cur = inventory_find(&x->be->desired->inv[DESIRED_API], id);
	if (!cur) {
		api_resp_error(x, 404, "no endpoint '%s'", id);
		return;
	}
	patch = json_loadb(x->rq->body ? x->rq->body : "", x->rq->len, JSON_REJECT_DUPLICATES, &je);
	if (!patch) {
		api_resp_json(x, 400, api_json_error(je.text, (unsigned)je.line, (unsigned)je.column));
		return;
	}
	if (!json_is_object(patch)) {
		api_resp_error(x, 400, "expected a JSON object like {\"labels\": {\"app\": \"web\"}}");
		goto out_free;
	}
	json_object_foreach(patch, key, v) {
		if (strcmp(key, "labels") != 0) {
			api_resp_error(x, 400, "'%.64s': only labels can be patched; PUT the whole "
				       "endpoint to change it", key);
			goto out_free;
		}
	}
	pl = json_object_get(patch, "labels");
	if (!json_is_object(pl)) {
		api_resp_error(x, 400, "labels: expected an object of \"key\": \"value\" "
			       "(null removes a label)");
		goto out_free;
	}
	doc = api_json_endpoint(cur, NULL);
	labels = doc ? json_object_get(doc, "labels") : NULL;
	if (!labels) {
		api_resp_error(x, 503, "out of memory");
		goto out_free;
	}
	json_object_del(doc, "id");
	json_object_foreach(pl, key, v) {
		if (json_is_null(v)) {
			json_object_del(labels, key);
		} else if (json_is_string(v)) {
			json_object_set(labels, key, v);
		} else {
			api_resp_error(x, 400, "labels.%.64s: expected a string, or null to remove it",
				       key);
			goto out_free;
		}
	}
	text = json_dumps(doc, JSON_SORT_KEYS | JSON_COMPACT);
	if (!text) {
		api_resp_error(x, 503, "out of memory");
		goto out_free;
	}
	err_clear(&err);
	r = endpoint_parse_buffer(id, "patch", text, strlen(text), &ep, &err);
	if (r < 0) {
		/* the position would point into the document built here: the
		 * message names the label */
		if (r == -EINVAL)
			api_resp_error(x, 400, "%s", err.msg);
		else
			endpoint_parse_error(x, r, &err);
		goto out_free;
	}
	endpoint_apply(x, ep, text, strlen(text));
out_free:
	free(text);
	json_decref(doc);
	json_decref(patch);
}

void api_handle_endpoint_delete(struct api_ctx *x, const char *id)
{
	const struct api_backend *be = x->be;
	struct desired_change ch = { .del_id = id };
	struct mseg_err err;
	int r;

	if (inventory_find(&be->desired->inv[DESIRED_FILE], id)) {
		api_resp_error(x, 409, "endpoint '%s' comes from the inventory file (%s); remove it there",
			   id, be->cfg->endpoints_file ? be->cfg->endpoints_file : "?");
		return;
	}
	if (!inventory_find(&be->desired->inv[DESIRED_API], id)) {
		api_resp_error(x, 404, "no endpoint '%s'", id);
		return;
	}
	if (query_flag(x, "dry_run")) {
		dry_run_answer(x, &ch, "would delete", "endpoint", id);
		return;
	}
	err_clear(&err);
	r = desired_api_endpoint_delete(be->desired, id, &err);
	if (r < 0) {
		mutation_error(x, r, "cannot remove the stored endpoint", &err);
		return;
	}
	log_info("api: endpoint '%s' deleted", id);
	api_resp_json(x, 200, mutation_result(x, &ch, "deleted", "endpoint", id));
}

/* ---- namespaces ---- */

static json_t *namespace_entry(struct api_ctx *x, const struct mseg_namespace *ns,
			       enum desired_source src)
{
	const struct desired *ds = x->be->desired;
	json_t *o = json_object(), *labels = json_object();
	size_t n = 0;
	char where[PATH_MAX + 8];

	for (size_t i = 0; i < ns->n_labels; i++)
		json_object_set_new(labels, ns->labels[i].key, json_string(ns->labels[i].value));
	for (int s2 = 0; s2 < DESIRED_N_SOURCES; s2++)
		for (size_t i = 0; i < ds->inv[s2].n; i++)
			n += strcmp(selector_ns_name(ds->inv[s2].eps[i]->ns), ns->name) == 0;
	if (src == DESIRED_FILE)
		snprintf(where, sizeof(where), "file:%s", x->be->cfg->endpoints_file ?
			 x->be->cfg->endpoints_file : "?");
	else
		snprintf(where, sizeof(where), "api");
	json_object_set_new(o, "name", json_string(ns->name));
	json_object_set_new(o, "labels", labels);
	json_object_set_new(o, "endpoints", json_integer((json_int_t)n));
	json_object_set_new(o, "source", json_string(where));
	return o;
}

void api_handle_namespaces_list(struct api_ctx *x)
{
	const struct desired *ds = x->be->desired;
	json_t *arr = json_array();

	for (int src = 0; src < DESIRED_N_SOURCES; src++)
		for (size_t i = 0; i < ds->inv[src].n_nss; i++) {
			const struct mseg_namespace *ns = ds->inv[src].nss[i];
			enum desired_source won;

			/* a name both define: the file's */
			if (desired_namespace_find(ds, ns->name, &won) == ns)
				json_array_append_new(arr, namespace_entry(x, ns, (enum desired_source)src));
		}
	api_resp_json(x, 200, json_pack("{so}", "namespaces", arr));
}

void api_handle_namespace_get(struct api_ctx *x, const char *name)
{
	enum desired_source src;
	const struct mseg_namespace *ns = desired_namespace_find(x->be->desired, name, &src);

	if (!ns) {
		api_resp_error(x, 404, "no namespace '%s'", name);
		return;
	}
	api_resp_json(x, 200, namespace_entry(x, ns, src));
}

void api_handle_namespace_put(struct api_ctx *x, const char *name)
{
	struct desired *ds = x->be->desired;
	struct mseg_namespace *ns = NULL;
	struct mseg_err err;
	char *doc = NULL;
	size_t len = 0;
	bool existed;
	int r;

	if (!name_is_dns_label(name)) {
		api_resp_error(x, 400, "namespace '%s': " NAME_DNS_LABEL_HINT, name);
		return;
	}
	if (!body_type_ok(x))
		return;
	if (inventory_ns_find(&ds->inv[DESIRED_FILE], name)) {
		api_resp_error(x, 409, "namespace '%s' comes from the inventory file (%s); change it "
			       "there", name, x->be->cfg->endpoints_file ? x->be->cfg->endpoints_file : "?");
		return;
	}
	err_clear(&err);
	r = namespace_parse_buffer(name, "body", x->rq->body ? x->rq->body : "", x->rq->len, &ns,
				   &err);
	if (r < 0) {
		endpoint_parse_error(x, r, &err);
		return;
	}
	existed = inventory_ns_find(&ds->inv[DESIRED_API], name) != NULL;
	r = existed ? desired_api_namespace_doc(ds, name, &doc, &len) : -ENOENT;
	if (api_doc_unchanged(r, doc, len, x->rq)) {
		unchanged_answer(x, NULL, query_flag(x, "dry_run"), "namespace", name);
		namespace_free(ns);
		return;
	}
	if (query_flag(x, "dry_run")) {
		json_t *o = json_pack("{sbssss}", "dry_run", 1, "result",
				      existed ? "would replace" : "would create", "namespace", name);

		api_resp_json(x, 200, o);
		namespace_free(ns);
		return;
	}
	err_clear(&err);
	r = desired_api_namespace_put(ds, ns, x->rq->body ? x->rq->body : "", x->rq->len, &err);
	if (r < 0) {
		mutation_error(x, r, "cannot store the namespace", &err);
		namespace_free(ns);
		return;
	}
	log_info("api: namespace '%s' %s", name, existed ? "replaced" : "created");
	api_resp_json(x, existed ? 200 : 201,
		      mutation_result(x, NULL, existed ? "replaced" : "created", "namespace", name));
}

void api_handle_namespace_delete(struct api_ctx *x, const char *name)
{
	struct desired *ds = x->be->desired;
	struct mseg_err err;
	int r;

	if (inventory_ns_find(&ds->inv[DESIRED_FILE], name)) {
		api_resp_error(x, 409, "namespace '%s' comes from the inventory file (%s); remove it "
			       "there", name, x->be->cfg->endpoints_file ? x->be->cfg->endpoints_file : "?");
		return;
	}
	if (!inventory_ns_find(&ds->inv[DESIRED_API], name)) {
		api_resp_error(x, 404, "no namespace '%s'", name);
		return;
	}
	if (query_flag(x, "dry_run")) {
		api_resp_json(x, 200, json_pack("{sbssss}", "dry_run", 1, "result", "would delete",
						"namespace", name));
		return;
	}
	err_clear(&err);
	r = desired_api_namespace_delete(ds, name, &err);
	if (r < 0) {
		mutation_error(x, r, "cannot remove the stored namespace", &err);
		return;
	}
	log_info("api: namespace '%s' deleted", name);
	api_resp_json(x, 200, mutation_result(x, NULL, "deleted", "namespace", name));
}

/* ---- reads ---- */

/* A policy as GET shows it: with the number of endpoints it covers in @v
 * (NULL: left out); the single GET (@with_doc) adds the API's stored
 * document, each group's endpoints and the coverage warnings. */
static json_t *policy_entry(struct api_ctx *x, const struct mseg_policy *p, bool from_file,
			    bool with_doc, const struct desired_view *v)
{
	char src[PATH_MAX + 8];
	json_t *o;

	if (from_file)
		snprintf(src, sizeof(src), "file:%s", p->pos.file ? p->pos.file : "?");
	else
		snprintf(src, sizeof(src), "api");
	o = api_json_policy(p, src);
	if (o) {
		/* the stage: a mode set through the API, the end of learning */
		static const char *const names[] = { "enforce", "audit", "learn" };
		const struct stage_entry *st = desired_stage_find(x->be->desired, p->ns, p->name);
		bool learning = st && (st->mode == STAGE_LEARN || (st->mode == STAGE_SPEC && p->learn));

		if (st && st->mode != STAGE_SPEC) {
			json_object_set_new(o, "mode", json_string(names[st->mode]));
			json_object_set_new(o, "mode_set", json_string("api"));
		}
		if (learning && st->until_s) {
			char ts[64];

			json_object_set_new(o, "learn_until",
					    json_string(flow_time_format(st->until_s * 1000000000ull,
									 ts, sizeof(ts))));
		}
	}
	if (o && v) {
		json_object_set_new(o, "covers", json_integer((json_int_t)policy_covers(p, v)));
		if (with_doc) {
			json_t *w = json_array();

			json_object_set_new(o, "groups", policy_groups(p, v, w));
			json_object_set_new(o, "warnings", w);
		}
	}
	if (o && !from_file) {
		const struct mseg_policy *fp = policy_set_find(&x->be->desired->pols[DESIRED_FILE], p->ns, p->name);

		if (fp)
			json_object_set_new(o, "shadowed_by", json_string(fp->pos.file ? fp->pos.file : "?"));
		if (with_doc) {
			char *doc = NULL;
			size_t len = 0;

			if (desired_api_policy_doc(x->be->desired, p->ns, p->name, &doc, &len) == 0)
				json_object_set_new(o, "document", json_stringn(doc, len));
			free(doc);
		}
	}
	return o;
}

void api_handle_policies_list(struct api_ctx *x)
{
	const struct desired *ds = x->be->desired;
	json_t *arr = json_array();
	struct desired_view v;
	bool have_view = desired_view_build(ds, NULL, &v) == 0;

	for (size_t i = 0; i < ds->pols[DESIRED_FILE].n; i++)
		json_array_append_new(arr, policy_entry(x, ds->pols[DESIRED_FILE].items[i], true,
							false, have_view ? &v : NULL));
	for (size_t i = 0; i < ds->pols[DESIRED_API].n; i++)
		json_array_append_new(arr, policy_entry(x, ds->pols[DESIRED_API].items[i], false,
							false, have_view ? &v : NULL));
	if (have_view)
		desired_view_release(&v);
	api_resp_json(x, 200, json_pack("{so}", "policies", arr));
}

void api_handle_policy_get(struct api_ctx *x, const char *ns, const char *name)
{
	const struct desired *ds = x->be->desired;
	const struct mseg_policy *p = policy_set_find(&ds->pols[DESIRED_FILE], ns, name);
	bool from_file = p != NULL;
	struct desired_view v;
	bool have_view;

	if (!p)
		p = policy_set_find(&ds->pols[DESIRED_API], ns, name);
	if (!p) {
		api_resp_error(x, 404, "no policy '%s/%s'", ns, name);
		return;
	}
	have_view = desired_view_build(ds, NULL, &v) == 0;
	api_resp_json(x, 200, policy_entry(x, p, from_file, true, have_view ? &v : NULL));
	if (have_view)
		desired_view_release(&v);
}

/* The effective mode of each direction of endpoint @id (with its status
 * @st): null when not isolated, "audit", "enforce", or "learn" when it is
 * enforced and a policy in its learning stage isolates it in that
 * direction; "learn_until", the latest end of those stages. @v: the
 * merged view (NULL: no learn shown). */
static void endpoint_modes(json_t *o, const struct desired_view *v, const char *id,
			   const struct reconcile_ep_status *st)
{
	const struct mseg_endpoint *vep = v ? inventory_find(&v->inv, id) : NULL;
	uint64_t now = clock_real_ns() / 1000000000ull, until = 0;
	unsigned learning = vep ? desired_ep_learning_dirs(v, vep, now, &until) : 0;
	bool shown = false;
	json_t *m = json_object();

	for (int d = 0; d < MSEG_DIR_COUNT; d++) {
		const char *name = NULL;

		if (st->isolated[d])
			name = st->mode[d] == MSEG_MODE_AUDIT ? "audit" : "enforce";
		if (name && st->mode[d] == MSEG_MODE_ENFORCE && (learning & (1u << d))) {
			name = "learn";
			shown = true;
		}
		json_object_set_new(m, flow_dir_name((enum mseg_dir)d),
				    name ? json_string(name) : json_null());
	}
	json_object_set_new(o, "mode", m);
	if (shown && until) {
		char ts[64];

		json_object_set_new(o, "learn_until",
				    json_string(flow_time_format(until * 1000000000ull, ts, sizeof(ts))));
	}
}

static json_t *endpoint_entry(struct api_ctx *x, const struct mseg_endpoint *ep, bool from_file,
			      const struct desired_view *v)
{
	char src[PATH_MAX + 8];
	ssize_t i;
	json_t *o;

	if (from_file)
		snprintf(src, sizeof(src), "file:%s", x->be->cfg->endpoints_file ? x->be->cfg->endpoints_file : "?");
	else
		snprintf(src, sizeof(src), "api");
	o = api_json_endpoint(ep, src);
	if (!o)
		return NULL;
	if (!from_file && inventory_find(&x->be->desired->inv[DESIRED_FILE], ep->id))
		json_object_set_new(o, "shadowed_by", json_string(x->be->cfg->endpoints_file));
	if (desired_endpoint_is_gone(x->be->desired, ep->id)) {
		json_object_set_new(o, "programmed", json_false());
		json_object_set_new(o, "error", json_sprintf("netns '%s' is gone: not enforced until "
							     "it comes back", ep->netns));
		return o;
	}
	i = reconciler_ep_index(x->be->rec, ep->id);
	if (i >= 0) {
		struct reconcile_ep_status st;

		reconciler_ep_status(x->be->rec, (size_t)i, &st);
		json_object_set_new(o, "programmed", json_boolean(st.programmed));
		if (st.error)
			json_object_set_new(o, "error", json_string(st.error));
		endpoint_modes(o, v, ep->id, &st);
	}
	return o;
}

void api_handle_endpoints_list(struct api_ctx *x)
{
	json_t *arr = json_array();
	struct desired_view v;
	bool have_view = desired_view_build(x->be->desired, NULL, &v) == 0;
	const struct desired_view *vp = have_view ? &v : NULL;

	for (size_t i = 0; i < x->be->desired->inv[DESIRED_FILE].n; i++)
		json_array_append_new(arr, endpoint_entry(x, x->be->desired->inv[DESIRED_FILE].eps[i],
							  true, vp));
	for (size_t i = 0; i < x->be->desired->inv[DESIRED_API].n; i++)
		json_array_append_new(arr, endpoint_entry(x, x->be->desired->inv[DESIRED_API].eps[i],
							  false, vp));
	if (have_view)
		desired_view_release(&v);
	api_resp_json(x, 200, json_pack("{so}", "endpoints", arr));
}

void api_handle_endpoint_get(struct api_ctx *x, const char *id)
{
	const struct mseg_endpoint *ep = inventory_find(&x->be->desired->inv[DESIRED_FILE], id);
	bool from_file = ep != NULL;
	struct desired_view v;
	bool have_view;

	if (!ep)
		ep = inventory_find(&x->be->desired->inv[DESIRED_API], id);
	if (!ep) {
		api_resp_error(x, 404, "no endpoint '%s'", id);
		return;
	}
	have_view = desired_view_build(x->be->desired, NULL, &v) == 0;
	api_resp_json(x, 200, endpoint_entry(x, ep, from_file, have_view ? &v : NULL));
	if (have_view)
		desired_view_release(&v);
}

static json_t *rules_entry(struct api_ctx *x, size_t i, bool with_table)
{
	struct reconcile_ep_status st;
	struct ep_table_report rep = { 0 };
	struct mseg_err err;
	json_t *o = json_object(), *diffs = json_array();
	int r;

	reconciler_ep_status(x->be->rec, i, &st);
	json_object_set_new(o, "endpoint", json_string(st.id));
	json_object_set_new(o, "netns", st.netns ? json_string(st.netns) : json_null());
	json_object_set_new(o, "programmed", json_boolean(st.programmed));
	json_object_set_new(o, "isolated", json_pack("{sbsb}", "ingress", st.isolated[0], "egress",
						    st.isolated[1]));
	json_object_set_new(o, "entries", json_pack("{sIsI}", "ingress", (json_int_t)st.n_entries[0],
						   "egress", (json_int_t)st.n_entries[1]));
	if (st.error)
		json_object_set_new(o, "error", json_string(st.error));
	err_clear(&err);
	r = reconciler_ep_verify(x->be->rec, i, &rep, &err);
	if (r < 0) {
		char msg[1024];

		json_object_set_new(o, "state", json_string("unknown"));
		json_object_set_new(o, "readback_error", json_string(err_format(&err, msg, sizeof(msg))));
	} else {
		json_object_set_new(o, "state", json_string(rep.in_sync ? "in_sync" : "drifted"));
		json_object_set_new(o, "in_sync", json_boolean(rep.in_sync));
		json_object_set_new(o, "genid", json_integer(rep.genid));
		json_object_set_new(o, "n_differences", json_integer((json_int_t)rep.n_diffs));
		if (rep.text) {
			char *save = NULL;

			for (char *line = strtok_r(rep.text, "\n", &save); line;
			     line = strtok_r(NULL, "\n", &save))
				json_array_append_new(diffs, json_string(line));
		}
	}
	json_object_set_new(o, "differences", diffs);
	ep_table_report_release(&rep);
	if (with_table) {
		char *text = NULL;

		if (reconciler_ep_render(x->be->rec, i, &text) == 0)
			json_object_set_new(o, "table", json_string(text));
		free(text);
	}
	return o;
}

/* Changes whenever anything was (re)programmed or the API changed state. */
static uint64_t rules_cache_key(struct api_ctx *x)
{
	const struct reconcile_stats *st = reconciler_stats(x->be->rec);

	return x->be->desired->generation + st->replaces + st->updates + st->deletes + st->failures +
	       st->drift_repairs + st->adopted + reconciler_ep_count(x->be->rec);
}

/* Make slots[] follow the reconciler's endpoints (both sorted by id). */
static int rules_slots_sync(struct api_server *a)
{
	struct reconciler *rec = a->be.rec;
	size_t n = reconciler_ep_count(rec), k = 0;
	struct rules_slot *v;
	bool same = n == a->n_slots;

	for (size_t i = 0; i < n && same; i++) {
		struct reconcile_ep_status st;

		reconciler_ep_status(rec, i, &st);
		same = strcmp(st.id, a->slots[i].id) == 0;
	}
	if (same)
		return 0;
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct reconcile_ep_status st;

		reconciler_ep_status(rec, i, &st);
		while (k < a->n_slots && strcmp(a->slots[k].id, st.id) < 0) {
			free(a->slots[k].id);
			json_decref(a->slots[k].entry);
			k++;
		}
		if (k < a->n_slots && strcmp(a->slots[k].id, st.id) == 0) {
			v[i] = a->slots[k++];
			continue;
		}
		v[i].id = strdup(st.id);
		if (!v[i].id) {
			/* keep what was built consistent: ids may not be NULL */
			v[i].id = strdup("");
		}
	}
	for (; k < a->n_slots; k++) {
		free(a->slots[k].id);
		json_decref(a->slots[k].entry);
	}
	free(a->slots);
	a->slots = v;
	a->n_slots = n;
	free(a->rules_text);
	a->rules_text = NULL;
	return 0;
}

static void rules_slot_refresh(struct api_server *a, size_t i, bool with_table)
{
	struct api_ctx x = { .a = a, .be = &a->be };
	struct rules_slot *sl = &a->slots[i];
	json_t *e = rules_entry(&x, i, with_table);
	bool changed;

	if (!e)
		return;
	/* the cached list answer stays valid when nothing it shows changed */
	changed = !sl->entry || !json_equal(sl->entry, e) || sl->shown_stale;
	json_decref(sl->entry);
	sl->entry = e;
	sl->checked_ns = clock_mono_ns();
	sl->key = rules_cache_key(&x);
	if (changed) {
		free(a->rules_text);
		a->rules_text = NULL;
	}
}

/* The background read-back: the stalest few namespaces per tick. */
static void on_rules_timer(struct evloop_source *src, uint64_t now, struct api_server *a)
{
	struct api_ctx x = { .a = a, .be = &a->be };
	uint64_t key = rules_cache_key(&x);

	if (!a->rules_wanted_ns || now - a->rules_wanted_ns > (uint64_t)API_RULES_IDLE_MS * 1000000ull)
		return;
	if (rules_slots_sync(a) < 0)
		return;
	for (int k = 0; k < API_RULES_PER_TICK; k++) {
		size_t best = SIZE_MAX;
		uint64_t best_age = 0;

		for (size_t i = 0; i < a->n_slots; i++) {
			const struct rules_slot *sl = &a->slots[i];
			uint64_t age = !sl->entry || sl->key != key ? UINT64_MAX :
				       sl->checked_ns >= now ? 0 : now - sl->checked_ns;

			if (age > best_age) {
				best_age = age;
				best = i;
			}
		}
		if (best == SIZE_MAX || best_age < (uint64_t)API_RULES_MAX_AGE_MS * 1000000ull)
			return;
		rules_slot_refresh(a, best, false);
	}
}

/* The background counter read for /metrics: the stalest namespace per
 * tick, while somebody scrapes. */
static void on_counters_timer(uint64_t now, struct api_server *a)
{
	struct reconciler *rec = a->be.rec;
	size_t best = SIZE_MAX;
	uint64_t best_age = 0;

	if (!a->metrics_wanted_ns || now - a->metrics_wanted_ns > (uint64_t)API_RULES_IDLE_MS * 1000000ull)
		return;
	if (rules_slots_sync(a) < 0)
		return;
	for (size_t i = 0; i < a->n_slots; i++) {
		uint64_t age = !a->slots[i].ctr_ns ? UINT64_MAX : now - a->slots[i].ctr_ns;

		if (age > best_age) {
			best_age = age;
			best = i;
		}
	}
	if (best == SIZE_MAX || best_age < (uint64_t)API_COUNTERS_MAX_AGE_MS * 1000000ull)
		return;
	{
		struct rules_slot *sl = &a->slots[best];
		struct reconcile_ep_status st;
		struct mseg_err err;

		sl->ctr_ns = now;
		reconciler_ep_status(rec, best, &st);
		sl->ctr_valid = st.programmed && reconciler_ep_counters(rec, best, &sl->ctr, &err) == 0;
	}
}

void api_on_rules_tick(struct evloop_source *src, uint32_t events, void *data)
{
	uint64_t exp, now = clock_mono_ns();

	if (read(evloop_source_fd(src), &exp, sizeof(exp)) < 0) {
		/* a spurious wakeup */
	}
	on_rules_timer(src, now, data);
	on_counters_timer(now, data);
}

void api_handle_rules(struct api_ctx *x, const char *id)
{
	bool with_table = query_flag(x, "table");

	if (id) {
		ssize_t i = reconciler_ep_index(x->be->rec, id);
		const struct mseg_endpoint *w;

		if (i < 0 && (w = desired_endpoint_waiting(x->be->desired, id))) {
			/* what mseg-cni's ADD says when it gives up waiting */
			api_resp_error(x, 404, "endpoint '%s' waits for Pod %s/%s (uid %s) from the "
				       "Kubernetes API: it is not programmed before its labels are "
				       "known", id, w->ns, w->name ? w->name : "?", w->pod_uid);
			return;
		}
		if (i < 0) {
			api_resp_error(x, 404, "no endpoint '%s'", id);
			return;
		}
		api_resp_json(x, 200, rules_entry(x, (size_t)i, true));
		return;
	}
	bool fresh = with_table || query_flag(x, "fresh");
	json_t *arr, *o;
	size_t drifted = 0, stale = 0, live = 0;
	uint64_t now = clock_mono_ns(), key = rules_cache_key(x);

	/* a live read of every namespace holds the loop: not more than one a
	 * second, however many clients ask */
	if (fresh) {
		if (x->a->fresh_ns &&
		    now - x->a->fresh_ns < (uint64_t)API_FRESH_MIN_INTERVAL_MS * 1000000ull) {
			api_resp_error(x, 429, "a live read of every namespace (fresh or table) was "
				       "done less than %u ms ago; try again in a second, or leave "
				       "out fresh/table for the background read-back",
				       API_FRESH_MIN_INTERVAL_MS);
			return;
		}
		x->a->fresh_ns = now;
	}

	/* after an idle spell the background stopped: rebuild, marking old reads */
	if (now - x->a->rules_wanted_ns > (uint64_t)API_RULES_IDLE_MS * 1000000ull) {
		free(x->a->rules_text);
		x->a->rules_text = NULL;
	}
	x->a->rules_wanted_ns = now;
	if (rules_slots_sync(x->a) < 0) {
		api_resp_error(x, 503, "out of memory");
		return;
	}
	if (!fresh && x->a->rules_text && x->a->rules_text_key == key) {
		x->resp.code = 200;
		x->resp.text = strdup(x->a->rules_text);
		x->resp.ctype = "application/json";
		if (!x->resp.text)
			api_resp_error(x, 503, "out of memory");
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < x->a->n_slots; i++) {
		struct rules_slot *sl = &x->a->slots[i];
		json_t *e;

		/* read live what was never read (a budget keeps a first
		 * request short; the rest comes from the background) */
		if (with_table) {
			e = rules_entry(x, i, true);
			if (!json_is_true(json_object_get(e, "in_sync")))
				drifted++;
			json_array_append_new(arr, e);
			continue;
		}
		if (fresh || (!sl->entry && live < 4)) {
			rules_slot_refresh(x->a, i, false);
			live++;
		}
		sl->shown_stale = false;
		if (!sl->entry) {
			e = json_pack("{sssbsssb}", "endpoint", sl->id, "programmed", false, "state",
				      "unknown", "stale", true);
			sl->shown_stale = true;
			stale++;
		} else {
			e = json_copy(sl->entry);
			if (sl->key != key ||
			    sl->checked_ns + 2ull * API_RULES_MAX_AGE_MS * 1000000ull < now) {
				json_object_set_new(e, "stale", json_true());
				sl->shown_stale = true;
				stale++;
			}
			if (!json_is_true(json_object_get(e, "in_sync")))
				drifted++;
		}
		json_array_append_new(arr, e);
	}
	o = json_pack("{sosIsI}", "endpoints", arr, "not_in_sync", (json_int_t)drifted, "stale",
		      (json_int_t)stale);
	if (!fresh && o) {
		char *text = json_dumps(o, JSON_COMPACT);
		size_t n = text ? strlen(text) : 0;
		char *t = text ? realloc(text, n + 2) : NULL;

		if (t) {
			t[n] = '\n';
			t[n + 1] = '\0';
			free(x->a->rules_text);
			x->a->rules_text = t;
			x->a->rules_text_key = key;
		} else {
			free(text);
		}
	}
	api_resp_json(x, 200, o);
}

/* Everything /v1/status shows changes this key (or the uptime second). */
static uint64_t status_key(struct api_ctx *x)
{
	const struct api_backend *be = x->be;
	uint64_t k = rules_cache_key(x);

	k = k * 31 + (clock_mono_ns() - x->a->start_ns) / 1000000000ull;
	k = k * 31 + be->desired->pols[DESIRED_FILE].n + (be->desired->pols[DESIRED_API].n << 20);
	k = k * 31 + be->desired->inv[DESIRED_FILE].n + (be->desired->inv[DESIRED_API].n << 20);
	if (x->a->flows)
		k = k * 31 + flow_ring_seq(x->a->flows);
	if (be->kube) {
		uint64_t local, none;

		kube_watcher_pod_events(be->kube, &local, &none);
		k = k * 31 + local + (none << 32);
	}
	return k;
}

static void h_status_build(struct api_ctx *x);

/* Built once per change (or second) and then served as text: building the
 * document costs more than serving it. */
void api_handle_status(struct api_ctx *x)
{
	uint64_t key = status_key(x);
	char *text, *t;
	size_t n;

	if (!x->a->status_text || x->a->status_key != key) {
		h_status_build(x);
		if (x->resp.code != 200 || !x->resp.json)
			return;
		text = json_dumps(x->resp.json, JSON_COMPACT);
		n = text ? strlen(text) : 0;
		t = text ? realloc(text, n + 2) : NULL;
		if (!t) {
			free(text);
			return;   /* the JSON answer goes out as it is */
		}
		t[n] = '\n';
		t[n + 1] = '\0';
		free(x->a->status_text);
		x->a->status_text = t;
		x->a->status_key = key;
		json_decref(x->resp.json);
		x->resp.json = NULL;
	}
	x->resp.code = 200;
	x->resp.text = strdup(x->a->status_text);
	x->resp.ctype = "application/json";
	if (!x->resp.text)
		api_resp_error(x, 503, "out of memory");
}

/* "2026-12-06T05:30:00Z" into @buf. */
static const char *time_format(uint64_t real_ns, char *buf, size_t size)
{
	time_t t = (time_t)(real_ns / 1000000000ull);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

/* The Kubernetes watcher for /v1/status and /readyz: per resource, whether
 * it is listed, and since when it is stale (the API server unreachable:
 * the last known state stays in force). */
static json_t *kube_status_json(const struct api_backend *be, bool full)
{
	json_t *o = json_object(), *res = json_array(), *stale = json_array();
	char ts[32];

	for (size_t i = 0; i < KUBE_N_RESOURCES; i++) {
		struct kube_resource_status st;
		json_t *r;

		kube_watcher_status(be->kube, i, &st);
		if (st.stale_since_ns)
			json_array_append_new(stale, json_pack("{sssssi}", "resource", st.resource,
				"since", time_format(st.stale_since_ns, ts, sizeof(ts)),
				"seconds", (int)((clock_real_ns() - st.stale_since_ns) / 1000000000ull)));
		if (!full)
			continue;
		r = json_pack("{sssbsIsIsIsIsIsIsssI}", "resource", st.resource, "synced", st.synced,
			      "lists", (json_int_t)st.lists, "relists", (json_int_t)st.relists,
			      "watches", (json_int_t)st.watches, "restarts", (json_int_t)st.restarts,
			      "errors", (json_int_t)st.errors, "events", (json_int_t)st.events,
			      "resource_version", st.rv, "objects", (json_int_t)st.objects);
		json_object_set_new(r, "stale_since", st.stale_since_ns ?
				    json_string(time_format(st.stale_since_ns, ts, sizeof(ts))) :
				    json_null());
		json_object_set_new(r, "last_error", st.last_error[0] ? json_string(st.last_error) :
				    json_null());
		json_array_append_new(res, r);
	}
	json_object_set_new(o, "server", json_string(kube_watcher_server(be->kube)));
	json_object_set_new(o, "synced", json_boolean(kube_watcher_synced(be->kube)));
	if (full) {
		uint64_t local, none;

		/* pod watch events that could change a table here, and those
		 * that could not (folded into a later reconcile) */
		kube_watcher_pod_events(be->kube, &local, &none);
		json_object_set_new(o, "pod_events", json_pack("{sIsI}", "local", (json_int_t)local,
							       "none", (json_int_t)none));
	}
	json_object_set_new(o, "stale", stale);
	if (full) {
		const struct compile_opts *co = reconciler_compile_opts(be->rec);
		json_t *addrs = json_array();
		char buf[64];

		json_object_set_new(o, "resources", res);
		/* what the compiler uses: --node-addr and the Node object's */
		for (size_t i = 0; i < co->n_node_addrs; i++)
			json_array_append_new(addrs, json_string(addr_format(&co->node_addrs[i], buf,
									    sizeof(buf))));
		json_object_set_new(o, "node_addresses", addrs);
		json_object_set_new(o, "service_routes", json_integer((json_int_t)co->n_svc_routes));
	} else {
		json_decref(res);
	}
	return o;
}

static void h_status_build(struct api_ctx *x)
{
	const struct api_backend *be = x->be;
	const struct reconcile_stats *st = reconciler_stats(be->rec);
	size_t programmed = 0, failed = 0, n = reconciler_ep_count(be->rec);
	json_t *o = json_object(), *lis = json_array();

	for (size_t i = 0; i < n; i++) {
		struct reconcile_ep_status s;

		reconciler_ep_status(be->rec, i, &s);
		if (s.programmed)
			programmed++;
		if (s.error)
			failed++;
	}
	for (size_t i = 0; i < x->a->n_lis; i++)
		json_array_append_new(lis, json_string(x->a->lis[i].name));
	json_object_set_new(o, "version", json_string(MSEG_VERSION));
	json_object_set_new(o, "uptime_seconds",
			    json_integer((json_int_t)((clock_mono_ns() - x->a->start_ns) / 1000000000ull)));
	json_object_set_new(o, "generation", json_integer((json_int_t)x->be->desired->generation));
	json_object_set_new(o, "mode", json_string(be->cfg->mode == MSEG_MODE_AUDIT ? "audit" : "enforce"));
	json_object_set_new(o, "default_deny", json_boolean(be->cfg->default_deny));
	json_object_set_new(o, "ready", json_boolean(reconciler_ready(be->rec)));
	json_object_set_new(o, "policies", json_pack("{sIsIsI}", "total",
		(json_int_t)(be->desired->pols[DESIRED_FILE].n + be->desired->pols[DESIRED_API].n), "file",
		(json_int_t)be->desired->pols[DESIRED_FILE].n, "api", (json_int_t)be->desired->pols[DESIRED_API].n));
	json_object_set_new(o, "endpoints", json_pack("{sIsIsIsIsI}", "total", (json_int_t)n,
		"file", (json_int_t)be->desired->inv[DESIRED_FILE].n, "api", (json_int_t)be->desired->inv[DESIRED_API].n,
		"programmed", (json_int_t)programmed, "failed", (json_int_t)failed));
	json_object_set_new(o, "kernel", json_pack("{sssbsbsbsb}", "queue",
		queue_method_name(be->features->queue), "queue_native", be->features->queue_native,
		"queue_xt", be->features->queue_xt, "nflog", be->features->nflog, "concat_interval",
		be->features->concat_interval));
	json_object_set_new(o, "reconcile", json_pack("{sIsIsIsIsIsI}", "replaces",
		(json_int_t)st->replaces, "updates", (json_int_t)st->updates, "deletes",
		(json_int_t)st->deletes, "adopted", (json_int_t)st->adopted, "failures",
		(json_int_t)st->failures, "drift_repairs", (json_int_t)st->drift_repairs));
	json_object_set_new(o, "state_dir", json_string(desired_state_dir(x->be->desired)));
	json_object_set_new(o, "listen", lis);
	if (be->kube) {
		json_object_set_new(o, "kubernetes", kube_status_json(be, true));
		json_object_set_new(json_object_get(o, "policies"), "kubernetes",
				    json_integer((json_int_t)be->desired->pols[DESIRED_KUBE].n));
		json_object_set_new(json_object_get(o, "endpoints"), "kubernetes",
				    json_integer((json_int_t)inventory_count(&be->desired->inv[DESIRED_KUBE])));
	}
	if (x->a->flows)
		json_object_set_new(o, "flows", json_pack("{sIsI}", "records",
			(json_int_t)flow_ring_count(x->a->flows), "capacity",
			(json_int_t)flow_ring_capacity(x->a->flows)));
	api_resp_json(x, 200, o);
}

void api_handle_readyz(struct api_ctx *x)
{
	json_t *missing = json_array();
	bool ready = reconciler_ready(x->be->rec);

	for (size_t i = 0; i < reconciler_ep_count(x->be->rec); i++) {
		struct reconcile_ep_status s;

		reconciler_ep_status(x->be->rec, i, &s);
		if (!s.programmed)
			json_array_append_new(missing, json_string(s.id));
	}
	if (x->be->kube) {
		/* stale is not unready: the last known state is enforced; not
		 * listed yet is (nothing from the cluster is programmed) */
		json_t *k = kube_status_json(x->be, false);

		ready = ready && kube_watcher_synced(x->be->kube);
		api_resp_json(x, ready ? 200 : 503, json_pack("{sbsoso}", "ready", ready,
			      "not_programmed", missing, "kubernetes", k));
		return;
	}
	api_resp_json(x, ready ? 200 : 503, json_pack("{sbso}", "ready", ready, "not_programmed", missing));
}

/* ---- metrics ---- */

static void m_head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

struct flow_counts {
	uint64_t by_verdict[2];
	uint64_t packets[2];
};

static int flow_count_cb(const struct flow_record *rec, void *data)
{
	struct flow_counts *fc = data;

	if (rec->verdict < 2) {
		fc->by_verdict[rec->verdict]++;
		fc->packets[rec->verdict] += rec->count;
	}
	return 0;
}

static long open_fds_count(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *de;
	long n = 0;

	if (!dir)
		return -1;
	while ((de = readdir(dir)))
		if (de->d_name[0] != '.')
			n++;
	closedir(dir);
	return n - 1;   /* not the directory's own fd */
}

/* jemalloc's control interface: msegd links jemalloc (Makefile); weak, so
 * that a program on glibc's malloc (sanitized builds, tests) has none */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
	__attribute__((weak));

/* Bytes the program's malloc has handed out and not had back. */
static size_t heap_in_use(void)
{
	struct mallinfo2 mi;

	if (mallctl) {
		uint64_t epoch = 1;
		size_t allocated, len = sizeof(allocated);

		/* jemalloc's statistics are a snapshot taken at each epoch */
		if (mallctl("epoch", NULL, NULL, &epoch, sizeof(epoch)) == 0 &&
		    mallctl("stats.allocated", &allocated, &len, NULL, 0) == 0)
			return allocated;
	}
	mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

/* What one endpoint costs msegd shows here (docs/operations.md, memory). */
static void m_head_process(FILE *f)
{
	long fds = open_fds_count();

	m_head(f, "process_heap_bytes", "gauge",
	       "Heap in use by msegd (allocated and not freed: jemalloc's stats.allocated, "
	       "or glibc's arena plus mmapped chunks).");
	fprintf(f, "process_heap_bytes %zu\n", heap_in_use());
	if (fds >= 0) {
		m_head(f, "process_open_fds", "gauge", "File descriptors msegd has open.");
		fprintf(f, "process_open_fds %ld\n", fds);
	}
}

void api_handle_metrics(struct api_ctx *x)
{
	const struct api_backend *be = x->be;
	const struct reconcile_stats *st = reconciler_stats(be->rec);
	size_t n = reconciler_ep_count(be->rec), programmed = 0, elems = 0;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f) {
		api_resp_error(x, 503, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct reconcile_ep_status s;

		reconciler_ep_status(be->rec, i, &s);
		if (s.programmed) {
			programmed++;
			elems += s.n_entries[0] + s.n_entries[1];
		}
	}
	m_head(f, "mseg_endpoints", "gauge", "Endpoints in the desired state, by source.");
	fprintf(f, "mseg_endpoints{source=\"file\"} %zu\n", be->desired->inv[DESIRED_FILE].n);
	fprintf(f, "mseg_endpoints{source=\"api\"} %zu\n", be->desired->inv[DESIRED_API].n);
	if (be->kube) {
		fprintf(f, "mseg_endpoints{source=\"kubernetes\"} %zu\n",
			inventory_count(&be->desired->inv[DESIRED_KUBE]));
		m_head(f, "mseg_kube_watch_restarts_total", "counter", "Kubernetes watches that broke and were resumed or retried, by resource.");
		for (size_t i = 0; i < KUBE_N_RESOURCES; i++) {
			struct kube_resource_status ks;

			kube_watcher_status(be->kube, i, &ks);
			fprintf(f, "mseg_kube_watch_restarts_total{resource=\"%s\"} %llu\n", ks.resource, (unsigned long long)ks.restarts);
		}
		m_head(f, "mseg_kube_relists_total", "counter", "Kubernetes lists after the first (410 Gone: resourceVersion too old; or after a refused token), by resource.");
		for (size_t i = 0; i < KUBE_N_RESOURCES; i++) {
			struct kube_resource_status ks;

			kube_watcher_status(be->kube, i, &ks);
			fprintf(f, "mseg_kube_relists_total{resource=\"%s\"} %llu\n", ks.resource, (unsigned long long)ks.relists);
		}
		m_head(f, "mseg_kube_errors_total", "counter", "Failed Kubernetes lists and watches, by resource.");
		for (size_t i = 0; i < KUBE_N_RESOURCES; i++) {
			struct kube_resource_status ks;

			kube_watcher_status(be->kube, i, &ks);
			fprintf(f, "mseg_kube_errors_total{resource=\"%s\"} %llu\n", ks.resource, (unsigned long long)ks.errors);
		}
		m_head(f, "mseg_kube_objects", "gauge", "Kubernetes objects held (after the watcher's filters), by resource.");
		for (size_t i = 0; i < KUBE_N_RESOURCES; i++) {
			struct kube_resource_status ks;

			kube_watcher_status(be->kube, i, &ks);
			fprintf(f, "mseg_kube_objects{resource=\"%s\"} %zu\n", ks.resource, ks.objects);
		}
		{
			uint64_t local, none;

			kube_watcher_pod_events(be->kube, &local, &none);
			m_head(f, "mseg_kube_pod_events_total", "counter", "Pod watch events, by effect: local (may change a table of this node: reconciled at once), none (cannot: folded into a later reconcile).");
			fprintf(f, "mseg_kube_pod_events_total{effect=\"local\"} %llu\n", (unsigned long long)local);
			fprintf(f, "mseg_kube_pod_events_total{effect=\"none\"} %llu\n", (unsigned long long)none);
		}
		m_head(f, "mseg_service_routes", "gauge", "Service routes (VIP:port to a ready backend) the compiler adds to egress allows.");
		fprintf(f, "mseg_service_routes %zu\n", reconciler_compile_opts(be->rec)->n_svc_routes);
		m_head(f, "mseg_kube_stale", "gauge", "1 while the watch of a resource is down (the last known state is enforced).");
		for (size_t i = 0; i < KUBE_N_RESOURCES; i++) {
			struct kube_resource_status ks;

			kube_watcher_status(be->kube, i, &ks);
			fprintf(f, "mseg_kube_stale{resource=\"%s\"} %d\n", ks.resource, ks.stale_since_ns != 0);
		}
	}
	m_head(f, "mseg_endpoints_programmed", "gauge", "Endpoints whose kernel table matches the desired state.");
	fprintf(f, "mseg_endpoints_programmed %zu\n", programmed);
	m_head(f, "mseg_policies", "gauge", "Policies in the desired state, by source.");
	fprintf(f, "mseg_policies{source=\"file\"} %zu\n", be->desired->pols[DESIRED_FILE].n);
	fprintf(f, "mseg_policies{source=\"api\"} %zu\n", be->desired->pols[DESIRED_API].n);
	if (be->kube)
		fprintf(f, "mseg_policies{source=\"kubernetes\"} %zu\n", be->desired->pols[DESIRED_KUBE].n);
	m_head(f, "mseg_programmed_entries", "gauge", "Allow entries programmed into kernel sets, all endpoints.");
	fprintf(f, "mseg_programmed_entries %zu\n", elems);
	m_head(f, "mseg_batches_total", "counter", "Netlink batches sent, by kind.");
	fprintf(f, "mseg_batches_total{kind=\"replace\"} %llu\n", (unsigned long long)st->replaces);
	fprintf(f, "mseg_batches_total{kind=\"update\"} %llu\n", (unsigned long long)st->updates);
	fprintf(f, "mseg_batches_total{kind=\"delete\"} %llu\n", (unsigned long long)st->deletes);
	m_head(f, "mseg_batch_failures_total", "counter", "Batches the kernel refused or namespaces not reachable.");
	fprintf(f, "mseg_batch_failures_total %llu\n", (unsigned long long)st->failures);
	m_head(f, "mseg_batch_seconds_total", "counter", "Wall time spent programming tables.");
	fprintf(f, "mseg_batch_seconds_total %.9f\n", (double)st->batch_ns_total / 1e9);
	m_head(f, "mseg_tables_adopted_total", "counter", "Tables found in sync at start and kept.");
	fprintf(f, "mseg_tables_adopted_total %llu\n", (unsigned long long)st->adopted);
	m_head(f, "mseg_drift_repairs_total", "counter", "Tables re-programmed after a read-back found drift.");
	fprintf(f, "mseg_drift_repairs_total %llu\n", (unsigned long long)st->drift_repairs);
	m_head(f, "mseg_elements_added_total", "counter", "Kernel set elements added.");
	fprintf(f, "mseg_elements_added_total %llu\n", (unsigned long long)st->elements_added);
	m_head(f, "mseg_elements_deleted_total", "counter", "Kernel set elements deleted.");
	fprintf(f, "mseg_elements_deleted_total %llu\n", (unsigned long long)st->elements_deleted);
	m_head(f, "mseg_conntrack_revoked_total", "counter", "Established connections cut because a change removed their allow.");
	fprintf(f, "mseg_conntrack_revoked_total %llu\n", (unsigned long long)st->conntrack_revoked);
	m_head(f, "mseg_conntrack_walks_total", "counter", "Conntrack tables walked after a change removed allows.");
	fprintf(f, "mseg_conntrack_walks_total %llu\n", (unsigned long long)st->conntrack_walks);
	m_head(f, "mseg_conntrack_walks_skipped_total", "counter", "Conntrack walks left out because the namespace had no conntrack entry.");
	fprintf(f, "mseg_conntrack_walks_skipped_total %llu\n", (unsigned long long)st->conntrack_walks_skipped);
	m_head(f, "mseg_conntrack_failures_total", "counter", "Conntrack walks or deletes that failed.");
	fprintf(f, "mseg_conntrack_failures_total %llu\n", (unsigned long long)st->conntrack_failures);
	if (x->be->accepted) {
		const struct accepted *acc = x->be->accepted;

		m_head(f, "mseg_accepted_summaries", "gauge",
		       "Accepted-connection summaries kept (learning endpoints).");
		fprintf(f, "mseg_accepted_summaries %zu\n", acc->n_entries);
		m_head(f, "mseg_accepted_dropped_total", "counter",
		       "Accepted-connection summaries not kept: the bound was reached.");
		fprintf(f, "mseg_accepted_dropped_total %llu\n", (unsigned long long)acc->dropped);
		m_head(f, "mseg_seen_reads_total", "counter",
		       "Reads of a learning endpoint's seen sets.");
		fprintf(f, "mseg_seen_reads_total %llu\n", (unsigned long long)acc->reads);
		m_head(f, "mseg_seen_read_failures_total", "counter",
		       "Reads of a learning endpoint's seen sets that failed.");
		fprintf(f, "mseg_seen_read_failures_total %llu\n",
			(unsigned long long)acc->read_failures);
	}

	/* per endpoint: the background reads' latest (on_counters_timer) */
	x->a->metrics_wanted_ns = clock_mono_ns();
	rules_slots_sync(x->a);
	m_head(f, "mseg_overlimit_packets_total", "counter",
	       "Unmatched packets over the queue rate limit (not sent to msegd), per endpoint and direction.");
	for (size_t i = 0; i < x->a->n_slots; i++) {
		const struct rules_slot *sl = &x->a->slots[i];

		for (int dir = 0; dir < MSEG_DIR_COUNT; dir++)
			if (sl->ctr_valid && sl->ctr.present[dir])
				fprintf(f, "mseg_overlimit_packets_total{endpoint=\"%s\",direction=\"%s\"} %llu\n",
					sl->id, dir == 0 ? "ingress" : "egress",
					(unsigned long long)sl->ctr.packets[dir]);
	}
	m_head(f, "mseg_invalid_packets_total", "counter",
	       "Packets conntrack found invalid, dropped in the kernel before the queue, per endpoint and direction.");
	for (size_t i = 0; i < x->a->n_slots; i++) {
		const struct rules_slot *sl = &x->a->slots[i];

		for (int dir = 0; dir < MSEG_DIR_COUNT; dir++)
			if (sl->ctr_valid && sl->ctr.present[dir])
				fprintf(f, "mseg_invalid_packets_total{endpoint=\"%s\",direction=\"%s\"} %llu\n",
					sl->id, dir == 0 ? "ingress" : "egress",
					(unsigned long long)sl->ctr.invalid_packets[dir]);
	}
	if (x->a->flows) {
		struct flow_counts fc;
		struct flow_ring_stats fs;
		struct flow_filter flt;

		memset(&fc, 0, sizeof(fc));
		flow_filter_init(&flt);
		flow_ring_query(x->a->flows, &flt, flow_count_cb, &fc);
		flow_ring_stats_get(x->a->flows, &fs);
		m_head(f, "mseg_flow_records", "gauge", "Flow records held in the ring, by verdict.");
		fprintf(f, "mseg_flow_records{verdict=\"dropped\"} %llu\n", (unsigned long long)fc.by_verdict[0]);
		fprintf(f, "mseg_flow_records{verdict=\"audited\"} %llu\n", (unsigned long long)fc.by_verdict[1]);
		m_head(f, "mseg_flow_record_packets", "gauge", "Packets counted by the flow records in the ring, by verdict.");
		fprintf(f, "mseg_flow_record_packets{verdict=\"dropped\"} %llu\n", (unsigned long long)fc.packets[0]);
		fprintf(f, "mseg_flow_record_packets{verdict=\"audited\"} %llu\n", (unsigned long long)fc.packets[1]);
		m_head(f, "mseg_flow_packets_total", "counter", "Unmatched packets msegd recorded.");
		fprintf(f, "mseg_flow_packets_total %llu\n", (unsigned long long)fs.packets);
		m_head(f, "mseg_flow_records_overwritten_total", "counter", "Flow records pushed out of the full ring.");
		fprintf(f, "mseg_flow_records_overwritten_total %llu\n", (unsigned long long)fs.overwritten);
	}
	if (be->flows) {
		struct flowpipe_stats ps;

		flowpipe_stats_get(be->flows, &ps);
		m_head(f, "mseg_queue_listeners", "gauge", "NFQUEUE listeners open (one per isolated namespace).");
		fprintf(f, "mseg_queue_listeners %llu\n", (unsigned long long)ps.listeners);
		m_head(f, "mseg_queue_packets_total", "counter", "Queued packets msegd gave a verdict, by verdict.");
		fprintf(f, "mseg_queue_packets_total{verdict=\"dropped\"} %llu\n", (unsigned long long)ps.dropped);
		fprintf(f, "mseg_queue_packets_total{verdict=\"audited\"} %llu\n", (unsigned long long)ps.audited);
		m_head(f, "mseg_queue_malformed_total", "counter", "Queued packets that did not parse.");
		fprintf(f, "mseg_queue_malformed_total %llu\n", (unsigned long long)ps.malformed);
		m_head(f, "mseg_queue_drops_total", "counter",
		       "Packets lost on the way to msegd: kernel queue full, socket full, socket overruns.");
		fprintf(f, "mseg_queue_drops_total{reason=\"queue_full\"} %llu\n", (unsigned long long)ps.queue_dropped);
		fprintf(f, "mseg_queue_drops_total{reason=\"socket_full\"} %llu\n", (unsigned long long)ps.user_dropped);
		fprintf(f, "mseg_queue_drops_total{reason=\"enobufs\"} %llu\n", (unsigned long long)ps.enobufs);
		m_head(f, "mseg_queue_listener_failures_total", "counter", "NFQUEUE listener opens that failed.");
		fprintf(f, "mseg_queue_listener_failures_total %llu\n", (unsigned long long)ps.listener_failures);
		m_head(f, "mseg_queue_mode_switch_failures_total", "counter",
		       "Switches of a queue between fail-open (audit) and fail-closed (enforce) that failed (retried at each sync).");
		fprintf(f, "mseg_queue_mode_switch_failures_total %llu\n",
			(unsigned long long)ps.fail_open_failures);
	}
	m_head(f, "mseg_api_requests_total", "counter", "REST API requests answered, by status code.");
	for (unsigned c = 100; c < API_MAX_CODE; c++)
		if (x->a->requests[c])
			fprintf(f, "mseg_api_requests_total{code=\"%u\"} %llu\n", c,
				(unsigned long long)x->a->requests[c]);
	m_head(f, "mseg_api_generation", "gauge", "Changes accepted over the API since start.");
	fprintf(f, "mseg_api_generation %llu\n", (unsigned long long)x->be->desired->generation);
	m_head(f, "mseg_state_quarantined_total", "counter",
	       "Stored documents that no longer loaded at start and were moved aside.");
	fprintf(f, "mseg_state_quarantined_total %zu\n",
		desired_store_quarantined_count(x->be->desired));
	m_head(f, "mseg_api_flow_followers", "gauge", "Open flow follow streams.");
	fprintf(f, "mseg_api_flow_followers %zu\n", x->a->n_follows);
	m_head(f, "mseg_start_time_seconds", "gauge", "Start time of msegd since the epoch.");
	fprintf(f, "mseg_start_time_seconds %llu\n", (unsigned long long)x->a->start_real_s);
	m_head(f, "mseg_ready", "gauge", "1 when every endpoint is programmed.");
	fprintf(f, "mseg_ready %d\n", reconciler_ready(be->rec) ? 1 : 0);
	m_head_process(f);
	if (fclose(f) != 0) {
		free(buf);
		api_resp_error(x, 503, "out of memory");
		return;
	}
	x->resp.code = 200;
	x->resp.text = buf;
	x->resp.ctype = "text/plain; version=0.0.4; charset=utf-8";
}

/* ---- check ---- */

static int proto_parse(const char *s, uint8_t *ret)
{
	static const struct { const char *n; uint8_t p; } t[] = {
		{ "tcp", IPPROTO_TCP }, { "udp", IPPROTO_UDP }, { "sctp", IPPROTO_SCTP },
		{ "udplite", IPPROTO_UDPLITE }, { "icmp", IPPROTO_ICMP },
		{ "icmpv6", IPPROTO_ICMPV6 }, { "any", 0 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(s, t[i].n) == 0) {
			*ret = t[i].p;
			return 0;
		}
	return -EINVAL;
}

void api_handle_check(struct api_ctx *x)
{
	json_error_t je;
	json_t *in = json_loadb(x->rq->body ? x->rq->body : "", x->rq->len, JSON_REJECT_DUPLICATES, &je);
	struct check_query q = { 0 };
	struct check_result res;
	struct desired_view v;
	struct mseg_err err;
	const char *proto = "tcp";
	json_t *port;
	int r;

	if (!in) {
		api_resp_json(x, 400, api_json_error(je.text, je.line > 0 ? (unsigned)je.line : 0,
						 je.column > 0 ? (unsigned)je.column : 0));
		return;
	}
	if (!json_is_object(in) ||
	    json_unpack_ex(in, &je, 0, "{ss,ss,s?s}", "from", &q.from, "to", &q.to, "proto", &proto) < 0) {
		api_resp_error(x, 400, "expected {\"from\": ID|ADDR, \"to\": ID|ADDR, \"proto\": \"tcp\", \"port\": N}: %s",
			   je.text);
		goto out_decref;
	}
	port = json_object_get(in, "port");
	if (json_is_string(port)) {
		/* "tcp/5432" */
		const char *s = json_string_value(port), *slash = strchr(s, '/');
		char pn[16];
		char *end;
		unsigned long pv;

		if (!slash || (size_t)(slash - s) >= sizeof(pn)) {
			api_resp_error(x, 400, "port '%s': expected PROTO/PORT or a number with \"proto\"", s);
			goto out_decref;
		}
		memcpy(pn, s, (size_t)(slash - s));
		pn[slash - s] = '\0';
		proto = NULL;
		if (proto_parse(pn, &q.proto) < 0) {
			api_resp_error(x, 400, "unknown protocol '%s'", pn);
			goto out_decref;
		}
		errno = 0;
		pv = strtoul(slash + 1, &end, 10);
		if (errno || *end || !slash[1] || pv > 65535) {
			api_resp_error(x, 400, "port '%s': not a port number", s);
			goto out_decref;
		}
		q.port = (uint16_t)pv;
	} else if (json_is_integer(port) || !port) {
		json_int_t pv = port ? json_integer_value(port) : 0;

		if (pv < 0 || pv > 65535) {
			api_resp_error(x, 400, "port %lld: out of range", (long long)pv);
			goto out_decref;
		}
		q.port = (uint16_t)pv;
	} else {
		api_resp_error(x, 400, "port: expected a number or \"tcp/5432\"");
		goto out_decref;
	}
	if (proto && proto_parse(proto, &q.proto) < 0) {
		api_resp_error(x, 400, "unknown protocol '%s'", proto);
		goto out_decref;
	}
	if (proto_has_ports(q.proto) && (!port || q.port == 0)) {
		api_resp_error(x, 400, "a port is required for %s", proto ? proto : "this protocol");
		goto out_decref;
	}
	r = desired_view_build(x->be->desired, NULL, &v);
	if (r < 0) {
		api_resp_error(x, 503, "out of memory");
		goto out_decref;
	}
	err_clear(&err);
	r = check_decide((const struct mseg_policy *const *)v.pols.items, v.pols.n,
			 (const struct mseg_endpoint *const *)v.inv.eps, v.inv.n, api_copts(x), &q,
			 &res, &err);
	if (r == -EINVAL)
		api_resp_err(x, 400, &err);
	else if (r < 0)
		api_resp_error(x, 500, "%s", err.msg);
	else
		api_resp_json(x, 200, api_json_check(&res, &q));
	desired_view_release(&v);
out_decref:
	json_decref(in);
}

/* ---- flows ---- */

struct flows_out {
	json_t *arr;
	char **out;
	size_t *out_len;
	int err;
};

static int flows_json_cb(const struct flow_record *rec, void *data)
{
	struct flows_out *fo = data;
	json_t *j = flow_record_to_json(rec);

	if (!j)
		return -ENOMEM;
	json_array_append_new(fo->arr, j);
	return 0;
}

/* Fill @f from the query; 400 on a bad value. @ret_endpoint/@ret_ns borrow
 * MHD's strings (valid for the request). */
static bool flows_filter_parse(struct api_ctx *x, struct flow_filter *f)
{
	const char *v;
	char *end;

	flow_filter_init(f);
	v = api_query(x, "endpoint");
	if (v && *v)
		f->endpoint = v;
	v = api_query(x, "namespace");
	if (v && *v)
		f->ns = v;
	v = api_query(x, "direction");
	if (v && *v) {
		enum mseg_dir dir;

		if (flow_dir_parse(v, &dir) < 0) {
			api_resp_error(x, 400, "direction '%s': ingress or egress", v);
			return false;
		}
		f->dir = (int)dir;
	}
	v = api_query(x, "verdict");
	if (v && *v) {
		enum flow_verdict vd;

		if (flow_verdict_parse(v, &vd) < 0) {
			api_resp_error(x, 400, "verdict '%s': dropped or audited", v);
			return false;
		}
		f->verdict = (int)vd;
	}
	v = api_query(x, "proto");
	if (v && *v) {
		uint8_t p;

		if (proto_parse(v, &p) == 0) {
			f->proto = p;
		} else {
			unsigned long n;

			errno = 0;
			n = strtoul(v, &end, 10);
			if (errno || *end || n > 255) {
				api_resp_error(x, 400, "proto '%s': a name or a number", v);
				return false;
			}
			f->proto = (int)n;
		}
	}
	v = api_query(x, "port");
	if (v && *v) {
		unsigned long n;

		errno = 0;
		n = strtoul(v, &end, 10);
		if (errno || *end || n > 65535) {
			api_resp_error(x, 400, "port '%s': 0 to 65535", v);
			return false;
		}
		f->port = (int)n;
	}
	v = api_query(x, "since");
	if (v && *v) {
		uint64_t ns;
		unsigned long long secs;

		/* RFC 3339, or seconds since the epoch */
		errno = 0;
		secs = strtoull(v, &end, 10);
		if (!errno && !*end)
			ns = (uint64_t)secs * 1000000000ull;
		else if (flow_time_parse(v, &ns) < 0) {
			api_resp_error(x, 400, "since '%s': RFC 3339 time or seconds since the epoch", v);
			return false;
		}
		f->since_ns = ns;
	}
	v = api_query(x, "limit");
	if (v && *v) {
		unsigned long n;

		errno = 0;
		n = strtoul(v, &end, 10);
		if (errno || *end || n > 1000000) {
			api_resp_error(x, 400, "limit '%s': 0 to 1000000", v);
			return false;
		}
		f->limit = n;
	}
	return true;
}

void api_follow_unlink(struct api_follow *fw)
{
	struct api_server *a = fw->srv;

	if (!a)
		return;
	if (fw->prev)
		fw->prev->next = fw->next;
	else
		a->follows = fw->next;
	a->n_follows--;
	if (fw->next)
		fw->next->prev = fw->prev;
	fw->prev = fw->next = NULL;
	fw->srv = NULL;
}

static void follow_free(void *cls)
{
	struct api_follow *fw = cls;

	api_follow_unlink(fw);
	free(fw->endpoint);
	free(fw->ns);
	free(fw->out);
	free(fw);
}

struct follow_fill {
	struct api_follow *fw;
	int err;
};

static int follow_fill_cb(const struct flow_record *rec, void *data)
{
	struct follow_fill *ff = data;
	struct api_follow *fw = ff->fw;
	json_t *j = flow_record_to_json(rec);
	char *s;
	size_t n;

	if (!j)
		return -ENOMEM;
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!s)
		return -ENOMEM;
	n = strlen(s);
	{
		char *t = realloc(fw->out, fw->out_len + n + 2);

		if (!t) {
			free(s);
			return -ENOMEM;
		}
		fw->out = t;
	}
	memcpy(fw->out + fw->out_len, s, n);
	fw->out[fw->out_len + n] = '\n';
	fw->out_len += n + 1;
	free(s);
	return fw->out_len >= API_FOLLOW_BUF ? 1 : 0;   /* full: send this first */
}

/* Refill @fw's empty output buffer with the next piece of the current
 * round, starting a round when the ring moved. -ENOMEM. */
static int follow_refill(struct api_follow *fw, const struct flow_ring *ring)
{
	struct follow_fill ff = { .fw = fw };
	uint64_t seq = flow_ring_seq(ring);
	int r;

	fw->out_len = fw->out_pos = 0;
	if (!fw->in_round) {
		if (seq == fw->filter.after_seq)
			return 0;
		fw->in_round = true;
		fw->round_upto = seq;
		fw->filter.upto_seq = seq;
		fw->pos = 0;
	}
	r = flow_ring_query_from(ring, &fw->filter, &fw->pos, follow_fill_cb, &ff);
	if (r < 0)
		return r;
	if (r == 0) {
		/* round done: next time, what changed after it */
		fw->in_round = false;
		fw->filter.after_seq = fw->round_upto;
		fw->filter.upto_seq = 0;
		fw->filter.limit = 0;
	}
	return 0;
}

static ssize_t follow_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct api_follow *fw = cls;
	struct api_server *a = fw->srv;
	size_t n;

	if (!a || a->stopping || fw->hangup)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (fw->out_pos == fw->out_len && a->flows && follow_refill(fw, a->flows) < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (fw->out_pos == fw->out_len) {
		/* nothing new: park the connection until the ring moves */
		fw->suspended = true;
		MHD_suspend_connection(fw->c);
		return 0;
	}
	n = fw->out_len - fw->out_pos;
	if (n > max)
		n = max;
	memcpy(buf, fw->out + fw->out_pos, n);
	fw->out_pos += n;
	return (ssize_t)n;
}

void api_handle_flows(struct api_ctx *x)
{
	struct flow_filter f;
	struct api_follow *fw;
	struct MHD_Response *m;

	if (!x->a->flows) {
		api_resp_error(x, 503, "flow records are not available (no queue listener)");
		return;
	}
	if (!flows_filter_parse(x, &f))
		return;
	if (!query_flag(x, "follow")) {
		struct flows_out fo = { .arr = json_array() };

		if (flow_ring_query(x->a->flows, &f, flows_json_cb, &fo) < 0) {
			json_decref(fo.arr);
			api_resp_error(x, 503, "out of memory");
			return;
		}
		api_resp_json(x, 200, json_pack("{so}", "flows", fo.arr));
		return;
	}
	if (strcmp(x->method, "HEAD") == 0) {
		/* the headers of a stream, and no stream */
		api_resp_json(x, 200, NULL);
		x->resp.text = strdup("");
		x->resp.ctype = "application/x-ndjson";
		return;
	}
	if (x->a->n_follows >= API_MAX_FOLLOWERS) {
		api_resp_error(x, 503, "too many flow followers (%u); try again later",
			       API_MAX_FOLLOWERS);
		return;
	}
	fw = calloc(1, sizeof(*fw));
	if (!fw) {
		api_resp_error(x, 503, "out of memory");
		return;
	}
	fw->filter = f;
	fw->endpoint = f.endpoint ? strdup(f.endpoint) : NULL;
	fw->ns = f.ns ? strdup(f.ns) : NULL;
	fw->filter.endpoint = fw->endpoint;
	fw->filter.ns = fw->ns;
	/* without since/limit, a follow starts with what arrives from now on */
	if (!f.since_ns && !f.limit)
		fw->filter.after_seq = flow_ring_seq(x->a->flows);
	fw->srv = x->a;
	fw->c = x->c;
	m = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, follow_reader, fw, follow_free);
	if (!m) {
		follow_free(fw);
		api_resp_error(x, 503, "out of memory");
		return;
	}
	fw->next = x->a->follows;
	if (fw->next)
		fw->next->prev = fw;
	x->a->follows = fw;
	x->a->n_follows++;
	if (x->rq->conn) {
		x->rq->conn->streaming = true;
		MHD_set_connection_option(x->c, MHD_CONNECTION_OPTION_TIMEOUT, 0);
	}
	x->resp.code = 200;
	x->resp.raw = m;
	x->resp.ctype = "application/x-ndjson";
}

/* ---- recommendations (learn) ---- */

struct learn_in {
	struct learn_flow *v;
	size_t n, cap;
};

static int learn_collect_cb(const struct flow_record *rec, void *data)
{
	struct learn_in *in = data;
	struct learn_flow *f;

	if (in->n == in->cap) {
		size_t cap = in->cap ? in->cap * 2 : 256;
		struct learn_flow *v = realloc(in->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		in->v = v;
		in->cap = cap;
	}
	f = &in->v[in->n++];
	memset(f, 0, sizeof(*f));
	f->ep_id = rec->ep->id;   /* the ring's: valid for this request */
	f->dir = (enum mseg_dir)rec->dir;
	f->src = rec->src;
	f->dst = rec->dst;
	f->proto = rec->proto;
	f->has_port = (rec->flags & FLOW_F_PORTS) != 0;
	f->dport = rec->dport;
	f->count = 1;             /* one record: one connection attempt (and its retries) */
	f->first_ns = rec->first_ns;
	f->last_ns = rec->last_ns;
	return 0;
}

/* The accepted-connection summaries of the endpoints of namespace @ns
 * (learning directions, include/mseg/daemon/accepted.h), last seen since
 * @since_ns: each stands for its connections. */
static int learn_collect_accepted(struct learn_in *in, const struct accepted *acc,
				  const struct desired_view *v, const char *ns, uint64_t since_ns)
{
	for (size_t i = 0; acc && i < acc->n_eps; i++) {
		const struct accepted_ep *aep = &acc->eps[i];
		const struct mseg_endpoint *ep = inventory_find(&v->inv, aep->id);

		if (!ep || strcmp(ep->ns, ns) != 0)
			continue;
		for (size_t k = 0; k < aep->n; k++) {
			const struct accepted_entry *e = &aep->v[k];
			const struct mseg_addr *own = NULL;
			struct learn_flow *f;

			if (e->last_ns < since_ns || !e->connections)
				continue;
			for (size_t a = 0; a < ep->n_ips && !own; a++)
				if (ep->ips[a].family == e->peer.family)
					own = &ep->ips[a];
			if (!own)
				continue;   /* no address of the peer's family: nothing to pair */
			if (VEC_RESERVE(in->v, in->cap, in->n + 1) < 0)
				return -ENOMEM;
			f = &in->v[in->n++];
			memset(f, 0, sizeof(*f));
			f->ep_id = aep->id;
			f->dir = (enum mseg_dir)e->dir;
			f->src = e->dir == MSEG_DIR_INGRESS ? e->peer : *own;
			f->dst = e->dir == MSEG_DIR_INGRESS ? *own : e->peer;
			f->proto = e->proto;
			f->has_port = e->has_port;
			f->dport = e->port;
			f->count = e->connections;
			f->accepted = true;
			f->first_ns = e->first_ns;
			f->last_ns = e->last_ns;
		}
	}
	return 0;
}

/* "24" or "/24" within 1..@max; 0 when absent */
static bool prefix_param(struct api_ctx *x, const char *key, unsigned max, uint8_t *ret)
{
	const char *v = api_query(x, key);
	unsigned long n;
	char *end;

	*ret = 0;
	if (!v || !*v)
		return true;
	errno = 0;
	n = strtoul(v + (*v == '/'), &end, 10);
	if (errno || *end || !v[*v == '/'] || n < 1 || n > max) {
		api_resp_error(x, 400, "%s '%s': a prefix length /1 to /%u", key, v, max);
		return false;
	}
	*ret = (uint8_t)n;
	return true;
}

static json_t *learn_json(const struct learn_result *r, const char *format, const char *yaml)
{
	json_t *groups = json_object(), *rules = json_array(), *warns = json_array();
	char buf[64], t1[FLOW_TIME_MAX], t2[FLOW_TIME_MAX];

	for (size_t i = 0; i < r->n_groups; i++) {
		const struct learn_group *g = &r->groups[i];
		json_t *o = json_object(), *inner = g->is_addrs ? json_array() : json_object();

		for (size_t k = 0; g->is_addrs && k < g->n_cidrs; k++) {
			char a[64];

			snprintf(buf, sizeof(buf), "%s/%u", addr_format(&g->cidrs[k].addr, a, sizeof(a)),
				 g->cidrs[k].plen);
			json_array_append_new(inner, json_string(buf));
		}
		for (size_t k = 0; !g->is_addrs && k < g->n_labels; k++)
			json_object_set_new(inner, g->labels[k]->key, json_string(g->labels[k]->value));
		json_object_set_new(o, g->is_addrs ? "cidrs" : "selector", inner);
		json_object_set_new(groups, g->name, o);
	}
	for (size_t i = 0; i < r->n_rules; i++) {
		const struct learn_rule *ru = &r->rules[i];
		json_t *ports = json_array();

		for (size_t k = 0; k < ru->n_ports; k++)
			json_array_append_new(ports, json_string(learn_port_format(&ru->ports[k], buf,
										  sizeof(buf))));
		json_array_append_new(rules, json_pack("{ss,ss,so,sI,sI,ss,ss}", "from",
						       r->groups[ru->from].name, "to",
						       r->groups[ru->to].name, "ports", ports, "flows",
						       (json_int_t)ru->flows, "accepted_connections",
						       (json_int_t)ru->connections, "first_seen",
						       flow_time_format(ru->first_ns, t1, sizeof(t1)),
						       "last_seen",
						       flow_time_format(ru->last_ns, t2, sizeof(t2))));
	}
	for (size_t i = 0; i < r->n_warnings; i++)
		json_array_append_new(warns, json_string(r->warnings[i]));
	return json_pack("{sI,sI,sI,so,so,so,ss,ss}", "flows", (json_int_t)r->flows_used,
			 "accepted_connections", (json_int_t)r->accepted_used, "skipped",
			 (json_int_t)r->flows_skipped, "groups", groups, "rules", rules, "warnings",
			 warns, "format", format, "yaml", yaml);
}

/* GET /v1/recommendations?namespace=&since=&aggregate=&aggregate6=&name=&format=:
 * an AllowList (or, with format=networkpolicy, the same allows as
 * NetworkPolicies) learned from the audited flow records of the
 * namespace's endpoints and the accepted-connection summaries of its
 * learning endpoints (docs/lifecycle.md). */
void api_handle_recommendations(struct api_ctx *x)
{
	struct learn_opts o = { 0 };
	struct learn_result *res = NULL;
	struct learn_in in = { 0 };
	struct desired_view v;
	struct flow_filter f;
	const char *format;
	char *yaml = NULL;
	size_t yaml_len = 0;
	FILE *mf;
	int r;

	if (!x->a->flows) {
		api_resp_error(x, 503, "flow records are not available (no queue listener)");
		return;
	}
	if (!flows_filter_parse(x, &f) || !prefix_param(x, "aggregate", 32, &o.aggregate4) ||
	    !prefix_param(x, "aggregate6", 128, &o.aggregate6))
		return;
	o.ns = f.ns ? f.ns : "default";
	if (!name_is_dns_label(o.ns)) {
		api_resp_error(x, 400, "namespace '%.100s': %s", o.ns, NAME_DNS_LABEL_HINT);
		return;
	}
	o.name = api_query(x, "name");
	if (o.name && !name_is_dns_label(o.name)) {
		api_resp_error(x, 400, "name '%.100s': %s", o.name, NAME_DNS_LABEL_HINT);
		return;
	}
	format = api_query(x, "format");
	if (!format || !*format)
		format = "allowlist";
	if (strcmp(format, "allowlist") != 0 && strcmp(format, "networkpolicy") != 0) {
		api_resp_error(x, 400, "format '%.100s': allowlist or networkpolicy", format);
		return;
	}
	/* what audit mode let through: the traffic the list must admit */
	f.verdict = FLOW_AUDITED;
	f.limit = 0;
	if (flow_ring_query(x->a->flows, &f, learn_collect_cb, &in) < 0) {
		api_resp_error(x, 503, "out of memory");
		goto out_free;
	}
	r = desired_view_build(x->be->desired, NULL, &v);
	if (r < 0) {
		api_resp_error(x, 503, "out of memory");
		goto out_free;
	}
	/* what learn mode admitted: the traffic the list already allows */
	r = learn_collect_accepted(&in, x->be->accepted, &v, o.ns, f.since_ns);
	if (r == 0)
		r = learn_run(in.v, in.n, (const struct mseg_endpoint *const *)v.inv.eps, v.inv.n,
			      &o, &res);
	if (r == 0) {
		mf = open_memstream(&yaml, &yaml_len);
		if (!mf || (strcmp(format, "networkpolicy") == 0 ? learn_render_netpol(mf, res, &o) :
								   learn_render_yaml(mf, res, &o)) < 0)
			r = -ENOMEM;
		if (mf && fclose(mf) != 0)
			r = -ENOMEM;
	}
	if (r < 0)
		api_resp_error(x, 503, "out of memory");
	else
		api_resp_json(x, 200, learn_json(res, format, yaml));
	desired_view_release(&v);
out_free:
	free(yaml);
	learn_result_free(res);
	free(in.v);
}

/* ---- accepted-connection summaries ---- */

static json_t *accepted_ep_json(const struct accepted_ep *aep, const char *id,
				const struct desired_view *v)
{
	const struct mseg_endpoint *ep = v ? inventory_find(&v->inv, id) : NULL;
	uint64_t until = 0;
	unsigned learning = ep ? desired_ep_learning_dirs(v, ep, clock_real_ns() / 1000000000ull,
							  &until) : 0;
	json_t *o = json_object(), *list = json_array(), *dirs = json_array();
	char ts[FLOW_TIME_MAX];

	json_object_set_new(o, "endpoint", json_string(id));
	for (int d = 0; d < MSEG_DIR_COUNT; d++)
		if (learning & (1u << d))
			json_array_append_new(dirs, json_string(flow_dir_name((enum mseg_dir)d)));
	json_object_set_new(o, "learning", dirs);
	json_object_set_new(o, "learn_until",
			    learning && until ? json_string(flow_time_format(until * 1000000000ull,
									     ts, sizeof(ts)))
					      : json_null());
	json_object_set_new(o, "last_read",
			    aep && aep->read_ns ? json_string(flow_time_format(aep->read_ns, ts,
									       sizeof(ts)))
						: json_null());
	for (size_t i = 0; aep && i < aep->n; i++) {
		const struct accepted_entry *e = &aep->v[i];
		char a[64], proto[16], t1[FLOW_TIME_MAX], t2[FLOW_TIME_MAX];
		json_t *g;

		addr_format(&e->peer, a, sizeof(a));
		if (!render_text_proto(e->proto, proto, sizeof(proto)))
			snprintf(proto, sizeof(proto), "%u", e->proto);
		g = json_pack("{ss,ss,ss,sI,ss,ss}", "direction", flow_dir_name((enum mseg_dir)e->dir),
			      "peer", a, "proto", proto, "connections", (json_int_t)e->connections,
			      "first_seen", flow_time_format(e->first_ns, t1, sizeof(t1)), "last_seen",
			      flow_time_format(e->last_ns, t2, sizeof(t2)));
		if (g && e->has_port)
			json_object_set_new(g, "port", json_integer(e->port));
		json_array_append_new(list, g);
	}
	json_object_set_new(o, "accepted", list);
	return o;
}

/* GET /v1/accepted, GET /v1/endpoints/{id}/accepted: the accepted-connection
 * summaries msegd keeps (of endpoints that were learning), per endpoint. */
void api_handle_accepted(struct api_ctx *x, const char *id)
{
	const struct accepted *acc = x->be->accepted;
	struct desired_view v;
	bool have_view;
	json_t *o;

	if (!acc) {
		api_resp_error(x, 503, "accepted-connection summaries are not available");
		return;
	}
	have_view = desired_view_build(x->be->desired, NULL, &v) == 0;
	if (id) {
		const struct accepted_ep *aep = accepted_ep_find(acc, id);

		if (!aep && !(have_view && inventory_find(&v.inv, id)))
			api_resp_error(x, 404, "no endpoint '%s'", id);
		else
			api_resp_json(x, 200, accepted_ep_json(aep, id, have_view ? &v : NULL));
	} else {
		json_t *eps = json_array();

		for (size_t i = 0; i < acc->n_eps; i++)
			if (acc->eps[i].n)
				json_array_append_new(eps, accepted_ep_json(&acc->eps[i], acc->eps[i].id,
									    have_view ? &v : NULL));
		o = json_pack("{so,sI,sI,sI}", "endpoints", eps, "entries",
			      (json_int_t)acc->n_entries, "max_entries", (json_int_t)acc->max_entries,
			      "dropped", (json_int_t)acc->dropped);
		api_resp_json(x, 200, o);
	}
	if (have_view)
		desired_view_release(&v);
}
