/* The REST API: routes of DESIGN.md §5 on libmicrohttpd, driven by msegd's
 * event loop. See include/mseg/api.h and docs/rest-api.md. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "mseg/api.h"
#include "mseg/check.h"
#include "mseg/flow.h"
#include "mseg/inventory.h"
#include "mseg/log.h"
#include "mseg/nft.h"
#include "mseg/policy.h"
#include "mseg/reconcile.h"
#include "mseg/store.h"
#include "api_json.h"
#include "daemon_priv.h"
#include "flowpipe.h"

#ifndef MSEG_VERSION
#define MSEG_VERSION "0.1.0"
#endif

#define API_SWEEP_MS 250
/* background read-back for GET /v1/rules: every TICK ms, up to PER_TICK
 * namespaces whose last read is older than MAX_AGE ms or older than the
 * last programming; only while somebody asked within IDLE ms */
#define API_RULES_TICK_MS 10
#define API_RULES_PER_TICK 1
#define API_RULES_MAX_AGE_MS 1000
#define API_RULES_IDLE_MS 30000
#define API_DIFF_MAX_LIST 200
#define API_FOLLOW_BUF (64u << 10)
#define API_MAX_CODE 600
/* an oversized body without Content-Length is read and dropped up to this,
 * then the connection is closed */
#define API_MAX_DRAIN (16u << 20)

struct api_server;

struct api_listener {
	struct api_server *srv;
	struct MHD_Daemon *mhd;
	struct evloop_source *src;
	bool tcp;
	char *name;                    /* "unix:/run/mseg/api.sock", "tcp:ADDR:PORT" */
};

/* One client connection (MHD's socket context). */
struct api_conn {
	struct api_conn *prev, *next;
	struct MHD_Connection *c;
	uint64_t since_ns;             /* connection start or last completed request */
	bool streaming;                /* a follow stream: no deadline */
	bool forced;                   /* deadline passed: timeout forced to 1 s */
};

/* A follow stream (GET /v1/flows?follow=1). */
struct api_follow {
	struct api_follow *prev, *next;
	struct api_server *srv;
	struct MHD_Connection *c;
	struct flow_filter filter;
	char *endpoint, *ns;
	bool suspended;
	bool hangup;
	char *out;
	size_t out_len, out_pos;
};

struct api_server {
	struct daemon *d;
	struct store *store;
	struct api_listener lis[2];
	size_t n_lis;
	struct evloop_source *timer;
	char *token;
	char *tls_cert, *tls_key;
	struct api_conn *conns;
	struct api_follow *follows;
	struct flow_ring *flows;
	uint64_t follow_seq;
	uint64_t start_ns, start_real_s;
	uint64_t generation;
	uint64_t requests[API_MAX_CODE];
	uint64_t timer_due_ns;         /* when the armed timer fires; 0 = fired */
	/* GET /v1/rules of all endpoints: per-endpoint read-backs kept
	 * fresh by a background timer (a few namespaces per tick), so that
	 * no request reads 100 namespaces while packets wait */
	struct rules_slot *slots;
	size_t n_slots;
	struct evloop_source *rules_timer;
	uint64_t rules_wanted_ns;      /* last GET /v1/rules */
	char *rules_text;              /* the last list answer, until a slot changes */
	uint64_t rules_text_key;
	char *status_text;             /* the last /v1/status, until status_key() moves */
	uint64_t status_key;
	bool stopping;
};

struct rules_slot {
	char *id;
	json_t *entry;                 /* the last read-back; NULL: none yet */
	uint64_t checked_ns;
	uint64_t key;                  /* rules_cache_key() when it was read */
	bool shown_stale;              /* the cached list answer marks it stale */
};

/* Per request (MHD's con_cls). */
struct api_req {
	struct api_listener *l;
	struct api_conn *conn;
	char *body;
	size_t len, cap;
	bool too_large;
	bool answered;
};

/* What a handler produced. */
struct api_resp {
	unsigned code;
	json_t *json;                  /* owned */
	char *text;                    /* owned; sent instead of json when set */
	const char *ctype;
	const char *allow;             /* Allow header for 405 */
	struct MHD_Response *raw;      /* prepared response (streams) */
};

struct api_ctx {
	struct api_server *a;
	struct daemon *d;
	struct MHD_Connection *c;
	struct api_req *rq;
	const char *method;
	const char *segs[8];
	size_t n_segs;
	struct api_resp resp;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- helpers exposed for tests ---- */

bool api_token_equal(const char *given, size_t given_len, const char *secret, size_t secret_len)
{
	volatile unsigned char diff = given_len != secret_len;

	for (size_t i = 0; i < secret_len; i++) {
		unsigned char g = i < given_len ? (unsigned char)given[i] : 0;

		diff |= g ^ (unsigned char)secret[i];
	}
	return diff == 0;
}

int api_auth_check(const char *header, const char *secret)
{
	const char *tok;
	size_t len;

	if (!header || strncasecmp(header, "Bearer ", 7) != 0)
		return 401;
	tok = header + 7;
	while (*tok == ' ')
		tok++;
	len = strlen(tok);
	while (len && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
		len--;
	if (len == 0)
		return 401;
	return api_token_equal(tok, len, secret, strlen(secret)) ? 0 : 403;
}

int api_token_load(const char *path, char **ret_token, struct mseg_err *err)
{
	char buf[4097];
	size_t len = 0;
	char *s, *e;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return err_set(err, path, 0, 0, errno, "cannot read the token file: %s",
			       strerror(errno));
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e2 = errno;

			close(fd);
			return err_set(err, path, 0, 0, e2, "cannot read the token file: %s",
				       strerror(e2));
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf) - 1)
			break;
	}
	close(fd);
	buf[len] = '\0';
	s = buf;
	while (*s && isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	*e = '\0';
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f) {
			explicit_bzero(buf, sizeof(buf));
			return err_set(err, path, 0, 0, EINVAL,
				       "the token must be printable ASCII without spaces");
		}
	if (strlen(s) < API_TOKEN_MIN_LEN) {
		size_t n = strlen(s);

		explicit_bzero(buf, sizeof(buf));
		return err_set(err, path, 0, 0, EINVAL,
			       "the token has %zu characters; at least %u are required", n,
			       API_TOKEN_MIN_LEN);
	}
	*ret_token = strdup(s);
	explicit_bzero(buf, sizeof(buf));
	if (!*ret_token)
		return err_setf(err, ENOMEM, "out of memory");
	return 0;
}

bool api_segment_valid(const char *seg)
{
	size_t len = strlen(seg);

	if (len == 0 || len > API_MAX_SEGMENT || strcmp(seg, ".") == 0 || strcmp(seg, "..") == 0)
		return false;
	for (const char *p = seg; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f || *p == '%' || *p == '\\')
			return false;
	return true;
}

/* ---- responses ---- */

static void resp_json(struct api_ctx *x, unsigned code, json_t *j)
{
	json_decref(x->resp.json);
	x->resp.code = code;
	x->resp.json = j;
}

__attribute__((format(printf, 3, 4))) static void resp_error(struct api_ctx *x, unsigned code,
							     const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	resp_json(x, code, api_json_error(msg, 0, 0));
}

static void resp_err(struct api_ctx *x, unsigned code, const struct mseg_err *err)
{
	resp_json(x, code, api_json_error_from(err));
}

static enum MHD_Result send_resp(struct api_server *a, struct MHD_Connection *c,
				 struct api_resp *r)
{
	struct MHD_Response *m = r->raw;
	enum MHD_Result ret;

	if (!m) {
		char *s = NULL;
		size_t len;

		if (r->text) {
			s = r->text;
			r->text = NULL;
		} else {
			if (!r->json) {
				r->code = 500;
				r->json = api_json_error("out of memory", 0, 0);
			}
			s = r->json ? json_dumps(r->json, JSON_COMPACT) : NULL;
			if (s) {
				size_t n = strlen(s);
				char *t = realloc(s, n + 2);

				if (t) {
					s = t;
					s[n] = '\n';
					s[n + 1] = '\0';
				}
			}
			if (!r->ctype)
				r->ctype = "application/json";
		}
		if (!s)
			return MHD_NO;
		len = strlen(s);
		m = MHD_create_response_from_buffer(len, s, MHD_RESPMEM_MUST_FREE);
		if (!m) {
			free(s);
			return MHD_NO;
		}
	}
	MHD_add_response_header(m, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype ? r->ctype : "application/json");
	if (r->allow)
		MHD_add_response_header(m, MHD_HTTP_HEADER_ALLOW, r->allow);
	if (r->code == 401)
		MHD_add_response_header(m, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	ret = MHD_queue_response(c, r->code, m);
	MHD_destroy_response(m);
	r->raw = NULL;
	if (r->code < API_MAX_CODE)
		a->requests[r->code]++;
	return ret;
}

static void resp_release(struct api_resp *r)
{
	json_decref(r->json);
	free(r->text);
	if (r->raw)
		MHD_destroy_response(r->raw);
	memset(r, 0, sizeof(*r));
}

/* ---- views: the desired state, optionally with one change applied ---- */

struct api_change {
	const struct mseg_policy *put_pol;
	const char *del_ns, *del_name;
	const struct mseg_endpoint *put_ep;
	const char *del_id;
};

struct api_views {
	const struct mseg_policy **pols;
	size_t n_pols;
	const struct mseg_endpoint **eps;
	size_t n_eps;
};

static void views_release(struct api_views *v)
{
	free(v->pols);
	free(v->eps);
	memset(v, 0, sizeof(*v));
}

static bool pol_is(const struct mseg_policy *p, const char *ns, const char *name)
{
	return ns && strcmp(p->ns, ns) == 0 && strcmp(p->name, name) == 0;
}

static int views_build(struct daemon *d, const struct api_change *ch, struct api_views *v)
{
	size_t np = d->file_policies.n + d->api_policies.n + 1;
	size_t ne = d->file_inventory.n + d->api_inventory.n + 1;

	memset(v, 0, sizeof(*v));
	v->pols = calloc(np, sizeof(*v->pols));
	v->eps = calloc(ne, sizeof(*v->eps));
	if (!v->pols || !v->eps) {
		views_release(v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < d->file_policies.n; i++)
		v->pols[v->n_pols++] = d->file_policies.items[i];
	for (size_t i = 0; i < d->api_policies.n; i++) {
		const struct mseg_policy *p = d->api_policies.items[i];

		if (policy_set_find(&d->file_policies, p->ns, p->name))
			continue;
		if (ch && ch->put_pol && pol_is(p, ch->put_pol->ns, ch->put_pol->name))
			continue;
		if (ch && pol_is(p, ch->del_ns, ch->del_name))
			continue;
		v->pols[v->n_pols++] = p;
	}
	if (ch && ch->put_pol)
		v->pols[v->n_pols++] = ch->put_pol;
	for (size_t i = 0; i < d->file_inventory.n; i++)
		v->eps[v->n_eps++] = d->file_inventory.eps[i];
	for (size_t i = 0; i < d->api_inventory.n; i++) {
		const struct mseg_endpoint *ep = d->api_inventory.eps[i];

		if (inventory_find(&d->file_inventory, ep->id))
			continue;
		if (ch && ch->put_ep && strcmp(ep->id, ch->put_ep->id) == 0)
			continue;
		if (ch && ch->del_id && strcmp(ep->id, ch->del_id) == 0)
			continue;
		v->eps[v->n_eps++] = ep;
	}
	if (ch && ch->put_ep)
		v->eps[v->n_eps++] = ch->put_ep;
	return 0;
}

static const struct compile_opts *api_copts(struct daemon *d)
{
	return reconciler_compile_opts(d->rec);
}

static int views_compile(struct daemon *d, const struct api_change *ch, struct mseg_plan **ret)
{
	struct api_views v;
	int r = views_build(d, ch, &v);

	if (r < 0)
		return r;
	r = compile_plan(v.pols, v.n_pols, v.eps, v.n_eps, api_copts(d), ret);
	views_release(&v);
	return r;
}

/* ---- the mutation path: validate, compile, persist, swap, reconcile ---- */

static bool query_flag(struct MHD_Connection *c, const char *key)
{
	const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);

	return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0);
}

/* After a change: reconcile and describe the outcome. */
static json_t *mutation_result(struct api_ctx *x, const char *what, const char *kind,
			       const char *name)
{
	struct daemon *d = x->d;
	json_t *o = json_object(), *errs = json_array();
	int r;

	x->a->generation++;
	r = daemon_reconcile(d);
	for (size_t i = 0; i < reconciler_ep_count(d->rec); i++) {
		struct reconcile_ep_status st;

		if (reconciler_ep_status(d->rec, i, &st) == 0 && st.error)
			json_array_append_new(errs, json_pack("{ssss}", "endpoint", st.id, "error",
							      st.error));
	}
	json_object_set_new(o, "result", json_string(what));
	json_object_set_new(o, kind, json_string(name));
	json_object_set_new(o, "generation", json_integer((json_int_t)x->a->generation));
	json_object_set_new(o, "programmed", json_boolean(r == 0));
	json_object_set_new(o, "errors", errs);
	return o;
}

static void dry_run_answer(struct api_ctx *x, const struct api_change *ch, const char *what,
			   const char *kind, const char *name)
{
	struct mseg_plan *before = NULL, *after = NULL;
	json_t *o, *changes;
	int r;

	r = views_compile(x->d, NULL, &before);
	if (r == 0)
		r = views_compile(x->d, ch, &after);
	if (r < 0) {
		resp_error(x, 500, "compile: %s", strerror(-r));
		goto out_free;
	}
	changes = api_json_plan_diff(before, after, API_DIFF_MAX_LIST);
	o = json_object();
	json_object_set_new(o, "dry_run", json_true());
	json_object_set_new(o, "result", json_string(what));
	json_object_set_new(o, kind, json_string(name));
	json_object_set_new(o, "endpoints_changed",
			    json_integer(changes ? (json_int_t)json_array_size(changes) : 0));
	json_object_set_new(o, "changes", changes ? changes : json_array());
	resp_json(x, 200, o);
out_free:
	plan_free(before);
	plan_free(after);
}

static bool dns_label_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 63 || !isalnum((unsigned char)s[0]) ||
	    !isalnum((unsigned char)s[len - 1]))
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return false;
	return true;
}

static bool ident_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 128 || !isalnum((unsigned char)s[0]))
		return false;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
			return false;
	return true;
}

/* Policy and endpoint bodies: YAML or JSON, whatever the Content-Type says
 * (one parser reads both; curl's default form type is sniffed as a
 * document too). Multipart forms are refused: there is no form processor. */
static bool body_type_ok(struct api_ctx *x)
{
	const char *ct = MHD_lookup_connection_value(x->c, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_TYPE);

	if (ct && strncasecmp(ct, "multipart/", 10) == 0) {
		resp_error(x, 415, "unsupported Content-Type '%.64s': send YAML or JSON", ct);
		return false;
	}
	return true;
}

static void h_policy_put(struct api_ctx *x, const char *ns, const char *name)
{
	struct daemon *d = x->d;
	struct mseg_policy_set tmp;
	struct mseg_policy *p, *fp;
	struct mseg_plan *plan = NULL;
	struct api_change ch = { 0 };
	struct mseg_err err;
	char full[160];
	bool existed;
	int r;

	if (!dns_label_valid(ns) || !dns_label_valid(name)) {
		resp_error(x, 400, "'%s/%s': namespace and name must be DNS labels", ns, name);
		return;
	}
	if (!body_type_ok(x))
		return;
	snprintf(full, sizeof(full), "%s/%s", ns, name);
	policy_set_init(&tmp);
	err_clear(&err);
	r = policy_parse_buffer(&tmp, "body", x->rq->body ? x->rq->body : "", x->rq->len, &err);
	if (r == -EFBIG) {
		resp_err(x, 413, &err);
		goto out_release;
	}
	if (r == -ENOMEM) {
		resp_error(x, 503, "out of memory");
		goto out_release;
	}
	if (r < 0) {
		resp_err(x, 400, &err);
		goto out_release;
	}
	if (tmp.n != 1) {
		resp_error(x, 400, "expected exactly one policy document, found %zu", tmp.n);
		goto out_release;
	}
	p = tmp.items[0];
	if (strcmp(p->ns, ns) != 0 || strcmp(p->name, name) != 0) {
		resp_json(x, 400, api_json_error("", p->pos.line, p->pos.col));
		{
			char msg[512];

			snprintf(msg, sizeof(msg), "the document is policy '%s/%s' but the path names '%s'",
				 p->ns, p->name, full);
			json_object_set_new(x->resp.json, "error", json_string(msg));
		}
		goto out_release;
	}
	fp = policy_set_find(&d->file_policies, ns, name);
	if (fp) {
		resp_error(x, 409, "policy '%s' comes from the policy dir (%s); change it there",
			   full, fp->pos.file ? fp->pos.file : "?");
		goto out_release;
	}
	existed = policy_set_find(&d->api_policies, ns, name) != NULL;
	ch.put_pol = p;
	if (query_flag(x->c, "dry_run")) {
		dry_run_answer(x, &ch, existed ? "would replace" : "would create", "policy", full);
		goto out_release;
	}
	/* compile first: a state that does not compile is never stored */
	r = views_compile(d, &ch, &plan);
	plan_free(plan);
	if (r < 0) {
		resp_error(x, 500, "compile: %s; nothing changed", strerror(-r));
		goto out_release;
	}
	err_clear(&err);
	r = store_policy_put(x->a->store, ns, name, x->rq->body ? x->rq->body : "", x->rq->len, &err);
	if (r < 0) {
		char msg[1024];

		resp_error(x, 500, "cannot store the policy: %s; nothing changed",
			   err_format(&err, msg, sizeof(msg)));
		goto out_release;
	}
	r = policy_set_put(&d->api_policies, p);
	if (r < 0) {
		/* stored but not in memory: the next start would bring it; say so */
		resp_error(x, 503, "out of memory after storing policy '%s'", full);
		goto out_release;
	}
	tmp.n = 0;   /* taken */
	log_info("api: policy '%s' %s", full, existed ? "replaced" : "created");
	resp_json(x, existed ? 200 : 201,
		  mutation_result(x, existed ? "replaced" : "created", "policy", full));
out_release:
	policy_set_release(&tmp);
}

static void h_policy_delete(struct api_ctx *x, const char *ns, const char *name)
{
	struct daemon *d = x->d;
	struct mseg_policy *fp;
	struct api_change ch = { .del_ns = ns, .del_name = name };
	struct mseg_err err;
	char full[600];
	int r;

	snprintf(full, sizeof(full), "%s/%s", ns, name);
	fp = policy_set_find(&d->file_policies, ns, name);
	if (fp) {
		resp_error(x, 409, "policy '%s' comes from the policy dir (%s); remove it there",
			   full, fp->pos.file ? fp->pos.file : "?");
		return;
	}
	if (!policy_set_find(&d->api_policies, ns, name)) {
		resp_error(x, 404, "no policy '%s'", full);
		return;
	}
	if (query_flag(x->c, "dry_run")) {
		dry_run_answer(x, &ch, "would delete", "policy", full);
		return;
	}
	err_clear(&err);
	r = store_policy_delete(x->a->store, ns, name, &err);
	if (r < 0 && r != -ENOENT) {
		char msg[1024];

		resp_error(x, 500, "cannot remove the stored policy: %s; nothing changed",
			   err_format(&err, msg, sizeof(msg)));
		return;
	}
	policy_set_remove(&d->api_policies, ns, name);
	log_info("api: policy '%s' deleted", full);
	resp_json(x, 200, mutation_result(x, "deleted", "policy", full));
}

static void h_endpoint_put(struct api_ctx *x, const char *id)
{
	struct daemon *d = x->d;
	struct mseg_endpoint *ep = NULL, *fe;
	struct mseg_plan *plan = NULL;
	struct api_change ch = { 0 };
	struct mseg_err err;
	bool existed;
	int r;

	if (!ident_valid(id)) {
		resp_error(x, 400, "endpoint id '%s': letters, digits, '_', '.' and '-', beginning "
			   "with a letter or digit, at most 128 characters", id);
		return;
	}
	if (!body_type_ok(x))
		return;
	err_clear(&err);
	r = endpoint_parse_buffer(id, "body", x->rq->body ? x->rq->body : "", x->rq->len, &ep, &err);
	if (r == -EFBIG) {
		resp_err(x, 413, &err);
		return;
	}
	if (r == -ENOMEM) {
		resp_error(x, 503, "out of memory");
		return;
	}
	if (r < 0) {
		resp_err(x, 400, &err);
		return;
	}
	fe = inventory_find(&d->file_inventory, id);
	if (fe) {
		resp_error(x, 409, "endpoint '%s' comes from the inventory file (%s); change it there",
			   id, d->cfg->endpoints_file ? d->cfg->endpoints_file : "?");
		goto out_free;
	}
	existed = inventory_find(&d->api_inventory, id) != NULL;
	ch.put_ep = ep;
	if (query_flag(x->c, "dry_run")) {
		dry_run_answer(x, &ch, existed ? "would replace" : "would create", "endpoint", id);
		goto out_free;
	}
	r = views_compile(d, &ch, &plan);
	plan_free(plan);
	if (r < 0) {
		resp_error(x, 500, "compile: %s; nothing changed", strerror(-r));
		goto out_free;
	}
	err_clear(&err);
	r = store_endpoint_put(x->a->store, id, x->rq->body ? x->rq->body : "", x->rq->len, &err);
	if (r < 0) {
		char msg[1024];

		resp_error(x, 500, "cannot store the endpoint: %s; nothing changed",
			   err_format(&err, msg, sizeof(msg)));
		goto out_free;
	}
	r = inventory_put(&d->api_inventory, ep);
	if (r < 0) {
		resp_error(x, 503, "out of memory after storing endpoint '%s'", id);
		goto out_free;
	}
	ep = NULL;
	log_info("api: endpoint '%s' %s", id, existed ? "replaced" : "created");
	resp_json(x, existed ? 200 : 201,
		  mutation_result(x, existed ? "replaced" : "created", "endpoint", id));
out_free:
	endpoint_free(ep);
}

static void h_endpoint_delete(struct api_ctx *x, const char *id)
{
	struct daemon *d = x->d;
	struct api_change ch = { .del_id = id };
	struct mseg_err err;
	int r;

	if (inventory_find(&d->file_inventory, id)) {
		resp_error(x, 409, "endpoint '%s' comes from the inventory file (%s); remove it there",
			   id, d->cfg->endpoints_file ? d->cfg->endpoints_file : "?");
		return;
	}
	if (!inventory_find(&d->api_inventory, id)) {
		resp_error(x, 404, "no endpoint '%s'", id);
		return;
	}
	if (query_flag(x->c, "dry_run")) {
		dry_run_answer(x, &ch, "would delete", "endpoint", id);
		return;
	}
	err_clear(&err);
	r = store_endpoint_delete(x->a->store, id, &err);
	if (r < 0 && r != -ENOENT) {
		char msg[1024];

		resp_error(x, 500, "cannot remove the stored endpoint: %s; nothing changed",
			   err_format(&err, msg, sizeof(msg)));
		return;
	}
	inventory_remove(&d->api_inventory, id);
	log_info("api: endpoint '%s' deleted", id);
	resp_json(x, 200, mutation_result(x, "deleted", "endpoint", id));
}

/* ---- reads ---- */

static json_t *policy_entry(struct api_ctx *x, const struct mseg_policy *p, bool from_file,
			    bool with_doc)
{
	char src[PATH_MAX + 8];
	json_t *o;

	if (from_file)
		snprintf(src, sizeof(src), "file:%s", p->pos.file ? p->pos.file : "?");
	else
		snprintf(src, sizeof(src), "api");
	o = api_json_policy(p, src);
	if (o && !from_file) {
		const struct mseg_policy *fp = policy_set_find(&x->d->file_policies, p->ns, p->name);

		if (fp)
			json_object_set_new(o, "shadowed_by", json_string(fp->pos.file ? fp->pos.file : "?"));
		if (with_doc) {
			char *doc = NULL;
			size_t len = 0;

			if (store_policy_read(x->a->store, p->ns, p->name, &doc, &len) == 0)
				json_object_set_new(o, "document", json_stringn(doc, len));
			free(doc);
		}
	}
	return o;
}

static void h_policies_list(struct api_ctx *x)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < x->d->file_policies.n; i++)
		json_array_append_new(arr, policy_entry(x, x->d->file_policies.items[i], true, false));
	for (size_t i = 0; i < x->d->api_policies.n; i++)
		json_array_append_new(arr, policy_entry(x, x->d->api_policies.items[i], false, false));
	resp_json(x, 200, json_pack("{so}", "policies", arr));
}

static void h_policy_get(struct api_ctx *x, const char *ns, const char *name)
{
	const struct mseg_policy *p = policy_set_find(&x->d->file_policies, ns, name);

	if (p) {
		resp_json(x, 200, policy_entry(x, p, true, true));
		return;
	}
	p = policy_set_find(&x->d->api_policies, ns, name);
	if (p) {
		resp_json(x, 200, policy_entry(x, p, false, true));
		return;
	}
	resp_error(x, 404, "no policy '%s/%s'", ns, name);
}

/* reconciler index of endpoint @id (the reconciler keeps them sorted) */
static ssize_t rec_index(struct daemon *d, const char *id)
{
	size_t lo = 0, hi = reconciler_ep_count(d->rec);

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		struct reconcile_ep_status st;
		int c;

		if (reconciler_ep_status(d->rec, mid, &st) < 0)
			return -1;
		c = strcmp(st.id, id);
		if (c == 0)
			return (ssize_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static json_t *endpoint_entry(struct api_ctx *x, const struct mseg_endpoint *ep, bool from_file)
{
	char src[PATH_MAX + 8];
	ssize_t i;
	json_t *o;

	if (from_file)
		snprintf(src, sizeof(src), "file:%s", x->d->cfg->endpoints_file ? x->d->cfg->endpoints_file : "?");
	else
		snprintf(src, sizeof(src), "api");
	o = api_json_endpoint(ep, src);
	if (!o)
		return NULL;
	if (!from_file && inventory_find(&x->d->file_inventory, ep->id))
		json_object_set_new(o, "shadowed_by", json_string(x->d->cfg->endpoints_file));
	i = rec_index(x->d, ep->id);
	if (i >= 0) {
		struct reconcile_ep_status st;

		reconciler_ep_status(x->d->rec, (size_t)i, &st);
		json_object_set_new(o, "programmed", json_boolean(st.programmed));
		if (st.error)
			json_object_set_new(o, "error", json_string(st.error));
	}
	return o;
}

static void h_endpoints_list(struct api_ctx *x)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < x->d->file_inventory.n; i++)
		json_array_append_new(arr, endpoint_entry(x, x->d->file_inventory.eps[i], true));
	for (size_t i = 0; i < x->d->api_inventory.n; i++)
		json_array_append_new(arr, endpoint_entry(x, x->d->api_inventory.eps[i], false));
	resp_json(x, 200, json_pack("{so}", "endpoints", arr));
}

static void h_endpoint_get(struct api_ctx *x, const char *id)
{
	const struct mseg_endpoint *ep = inventory_find(&x->d->file_inventory, id);

	if (ep) {
		resp_json(x, 200, endpoint_entry(x, ep, true));
		return;
	}
	ep = inventory_find(&x->d->api_inventory, id);
	if (ep) {
		resp_json(x, 200, endpoint_entry(x, ep, false));
		return;
	}
	resp_error(x, 404, "no endpoint '%s'", id);
}

static json_t *rules_entry(struct api_ctx *x, size_t i, bool with_table)
{
	struct reconcile_ep_status st;
	struct ep_table_report rep = { 0 };
	struct mseg_err err;
	json_t *o = json_object(), *diffs = json_array();
	int r;

	reconciler_ep_status(x->d->rec, i, &st);
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
	r = reconciler_ep_verify(x->d->rec, i, &rep, &err);
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

		if (reconciler_ep_render(x->d->rec, i, &text) == 0)
			json_object_set_new(o, "table", json_string(text));
		free(text);
	}
	return o;
}

/* Changes whenever anything was (re)programmed or the API changed state. */
static uint64_t rules_cache_key(struct api_ctx *x)
{
	const struct reconcile_stats *st = reconciler_stats(x->d->rec);

	return x->a->generation + st->replaces + st->updates + st->deletes + st->failures +
	       st->drift_repairs + st->adopted + reconciler_ep_count(x->d->rec);
}

/* Make slots[] follow the reconciler's endpoints (both sorted by id). */
static int rules_slots_sync(struct api_server *a)
{
	struct reconciler *rec = a->d->rec;
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
	struct api_ctx x = { .a = a, .d = a->d };
	struct rules_slot *sl = &a->slots[i];
	json_t *e = rules_entry(&x, i, with_table);
	bool changed;

	if (!e)
		return;
	/* the cached list answer stays valid when nothing it shows changed */
	changed = !sl->entry || !json_equal(sl->entry, e) || sl->shown_stale;
	json_decref(sl->entry);
	sl->entry = e;
	sl->checked_ns = mono_ns();
	sl->key = rules_cache_key(&x);
	if (changed) {
		free(a->rules_text);
		a->rules_text = NULL;
	}
}

/* The background read-back: the stalest few namespaces per tick. */
static void on_rules_timer(struct evloop_source *src, uint64_t now, struct api_server *a)
{
	struct api_ctx x = { .a = a, .d = a->d };
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

static void on_rules_tick(struct evloop_source *src, uint32_t events, void *data)
{
	uint64_t exp;

	if (read(evloop_source_fd(src), &exp, sizeof(exp)) < 0) {
		/* a spurious wakeup */
	}
	on_rules_timer(src, mono_ns(), data);
}

static void h_rules(struct api_ctx *x, const char *id)
{
	bool with_table = query_flag(x->c, "table");

	if (id) {
		ssize_t i = rec_index(x->d, id);

		if (i < 0) {
			resp_error(x, 404, "no endpoint '%s'", id);
			return;
		}
		resp_json(x, 200, rules_entry(x, (size_t)i, true));
		return;
	}
	bool fresh = with_table || query_flag(x->c, "fresh");
	json_t *arr, *o;
	size_t drifted = 0, stale = 0, live = 0;
	uint64_t now = mono_ns(), key = rules_cache_key(x);

	/* after an idle spell the background stopped: rebuild, marking old reads */
	if (now - x->a->rules_wanted_ns > (uint64_t)API_RULES_IDLE_MS * 1000000ull) {
		free(x->a->rules_text);
		x->a->rules_text = NULL;
	}
	x->a->rules_wanted_ns = now;
	if (rules_slots_sync(x->a) < 0) {
		resp_error(x, 503, "out of memory");
		return;
	}
	if (!fresh && x->a->rules_text && x->a->rules_text_key == key) {
		x->resp.code = 200;
		x->resp.text = strdup(x->a->rules_text);
		x->resp.ctype = "application/json";
		if (!x->resp.text)
			resp_error(x, 503, "out of memory");
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
			e = json_pack("{sssbss}", "endpoint", sl->id, "programmed", false, "state", "unknown");
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
	resp_json(x, 200, o);
}

/* Everything /v1/status shows changes this key (or the uptime second). */
static uint64_t status_key(struct api_ctx *x)
{
	struct daemon *d = x->d;
	uint64_t k = rules_cache_key(x);

	k = k * 31 + (mono_ns() - x->a->start_ns) / 1000000000ull;
	k = k * 31 + d->file_policies.n + (d->api_policies.n << 20);
	k = k * 31 + d->file_inventory.n + (d->api_inventory.n << 20);
	if (x->a->flows)
		k = k * 31 + flow_ring_seq(x->a->flows);
	return k;
}

static void h_status_build(struct api_ctx *x);

/* Built once per change (or second) and then served as text: building the
 * document costs more than serving it. */
static void h_status(struct api_ctx *x)
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
		resp_error(x, 503, "out of memory");
}

static void h_status_build(struct api_ctx *x)
{
	struct daemon *d = x->d;
	const struct reconcile_stats *st = reconciler_stats(d->rec);
	size_t programmed = 0, failed = 0, n = reconciler_ep_count(d->rec);
	json_t *o = json_object(), *lis = json_array();

	for (size_t i = 0; i < n; i++) {
		struct reconcile_ep_status s;

		reconciler_ep_status(d->rec, i, &s);
		if (s.programmed)
			programmed++;
		if (s.error)
			failed++;
	}
	for (size_t i = 0; i < x->a->n_lis; i++)
		json_array_append_new(lis, json_string(x->a->lis[i].name));
	json_object_set_new(o, "version", json_string(MSEG_VERSION));
	json_object_set_new(o, "uptime_seconds",
			    json_integer((json_int_t)((mono_ns() - x->a->start_ns) / 1000000000ull)));
	json_object_set_new(o, "generation", json_integer((json_int_t)x->a->generation));
	json_object_set_new(o, "mode", json_string(d->cfg->mode == MSEG_MODE_AUDIT ? "audit" : "enforce"));
	json_object_set_new(o, "default_deny", json_boolean(d->cfg->default_deny));
	json_object_set_new(o, "ready", json_boolean(reconciler_ready(d->rec)));
	json_object_set_new(o, "policies", json_pack("{sIsIsI}", "total",
		(json_int_t)(d->file_policies.n + d->api_policies.n), "file",
		(json_int_t)d->file_policies.n, "api", (json_int_t)d->api_policies.n));
	json_object_set_new(o, "endpoints", json_pack("{sIsIsIsIsI}", "total", (json_int_t)n,
		"file", (json_int_t)d->file_inventory.n, "api", (json_int_t)d->api_inventory.n,
		"programmed", (json_int_t)programmed, "failed", (json_int_t)failed));
	json_object_set_new(o, "kernel", json_pack("{sssbsbsbsb}", "queue",
		queue_method_name(d->features.queue), "queue_native", d->features.queue_native,
		"queue_xt", d->features.queue_xt, "nflog", d->features.nflog, "concat_interval",
		d->features.concat_interval));
	json_object_set_new(o, "reconcile", json_pack("{sIsIsIsIsIsI}", "replaces",
		(json_int_t)st->replaces, "updates", (json_int_t)st->updates, "deletes",
		(json_int_t)st->deletes, "adopted", (json_int_t)st->adopted, "failures",
		(json_int_t)st->failures, "drift_repairs", (json_int_t)st->drift_repairs));
	json_object_set_new(o, "state_dir", json_string(store_dir(x->a->store)));
	json_object_set_new(o, "listen", lis);
	if (x->a->flows)
		json_object_set_new(o, "flows", json_pack("{sIsI}", "records",
			(json_int_t)flow_ring_count(x->a->flows), "capacity",
			(json_int_t)flow_ring_capacity(x->a->flows)));
	resp_json(x, 200, o);
}

static void h_readyz(struct api_ctx *x)
{
	json_t *missing = json_array();
	bool ready = reconciler_ready(x->d->rec);

	for (size_t i = 0; i < reconciler_ep_count(x->d->rec); i++) {
		struct reconcile_ep_status s;

		reconciler_ep_status(x->d->rec, i, &s);
		if (!s.programmed)
			json_array_append_new(missing, json_string(s.id));
	}
	resp_json(x, ready ? 200 : 503, json_pack("{sbso}", "ready", ready, "not_programmed", missing));
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

static void h_metrics(struct api_ctx *x)
{
	struct daemon *d = x->d;
	const struct reconcile_stats *st = reconciler_stats(d->rec);
	size_t n = reconciler_ep_count(d->rec), programmed = 0, elems = 0;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f) {
		resp_error(x, 503, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct reconcile_ep_status s;

		reconciler_ep_status(d->rec, i, &s);
		if (s.programmed) {
			programmed++;
			elems += s.n_entries[0] + s.n_entries[1];
		}
	}
	m_head(f, "mseg_endpoints", "gauge", "Endpoints in the desired state, by source.");
	fprintf(f, "mseg_endpoints{source=\"file\"} %zu\n", d->file_inventory.n);
	fprintf(f, "mseg_endpoints{source=\"api\"} %zu\n", d->api_inventory.n);
	m_head(f, "mseg_endpoints_programmed", "gauge", "Endpoints whose kernel table matches the desired state.");
	fprintf(f, "mseg_endpoints_programmed %zu\n", programmed);
	m_head(f, "mseg_policies", "gauge", "Policies in the desired state, by source.");
	fprintf(f, "mseg_policies{source=\"file\"} %zu\n", d->file_policies.n);
	fprintf(f, "mseg_policies{source=\"api\"} %zu\n", d->api_policies.n);
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

	m_head(f, "mseg_overlimit_packets_total", "counter",
	       "Unmatched packets over the queue rate limit (not sent to msegd), per endpoint and direction.");
	for (size_t i = 0; i < n; i++) {
		struct reconcile_ep_status s;
		struct ep_table_counters ctr;
		struct mseg_err err;

		reconciler_ep_status(d->rec, i, &s);
		if (!s.programmed || reconciler_ep_counters(d->rec, i, &ctr, &err) < 0)
			continue;
		for (int dir = 0; dir < MSEG_DIR_COUNT; dir++)
			if (ctr.present[dir])
				fprintf(f, "mseg_overlimit_packets_total{endpoint=\"%s\",direction=\"%s\"} %llu\n",
					s.id, dir == 0 ? "ingress" : "egress",
					(unsigned long long)ctr.packets[dir]);
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
	if (d->flows) {
		struct flowpipe_stats ps;

		flowpipe_stats_get(d->flows, &ps);
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
	}
	m_head(f, "mseg_api_requests_total", "counter", "REST API requests answered, by status code.");
	for (unsigned c = 100; c < API_MAX_CODE; c++)
		if (x->a->requests[c])
			fprintf(f, "mseg_api_requests_total{code=\"%u\"} %llu\n", c,
				(unsigned long long)x->a->requests[c]);
	m_head(f, "mseg_api_generation", "gauge", "Changes accepted over the API since start.");
	fprintf(f, "mseg_api_generation %llu\n", (unsigned long long)x->a->generation);
	m_head(f, "mseg_start_time_seconds", "gauge", "Start time of msegd since the epoch.");
	fprintf(f, "mseg_start_time_seconds %llu\n", (unsigned long long)x->a->start_real_s);
	m_head(f, "mseg_ready", "gauge", "1 when every endpoint is programmed.");
	fprintf(f, "mseg_ready %d\n", reconciler_ready(d->rec) ? 1 : 0);
	if (fclose(f) != 0) {
		free(buf);
		resp_error(x, 503, "out of memory");
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

static void h_check(struct api_ctx *x)
{
	json_error_t je;
	json_t *in = json_loadb(x->rq->body ? x->rq->body : "", x->rq->len, JSON_REJECT_DUPLICATES, &je);
	struct check_query q = { 0 };
	struct check_result res;
	struct api_views v;
	struct mseg_err err;
	const char *proto = "tcp";
	json_t *port;
	int r;

	if (!in) {
		resp_json(x, 400, api_json_error(je.text, je.line > 0 ? (unsigned)je.line : 0,
						 je.column > 0 ? (unsigned)je.column : 0));
		return;
	}
	if (!json_is_object(in) ||
	    json_unpack_ex(in, &je, 0, "{ss,ss,s?s}", "from", &q.from, "to", &q.to, "proto", &proto) < 0) {
		resp_error(x, 400, "expected {\"from\": ID|ADDR, \"to\": ID|ADDR, \"proto\": \"tcp\", \"port\": N}: %s",
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
			resp_error(x, 400, "port '%s': expected PROTO/PORT or a number with \"proto\"", s);
			goto out_decref;
		}
		memcpy(pn, s, (size_t)(slash - s));
		pn[slash - s] = '\0';
		proto = NULL;
		if (proto_parse(pn, &q.proto) < 0) {
			resp_error(x, 400, "unknown protocol '%s'", pn);
			goto out_decref;
		}
		errno = 0;
		pv = strtoul(slash + 1, &end, 10);
		if (errno || *end || !slash[1] || pv > 65535) {
			resp_error(x, 400, "port '%s': not a port number", s);
			goto out_decref;
		}
		q.port = (uint16_t)pv;
	} else if (json_is_integer(port) || !port) {
		json_int_t pv = port ? json_integer_value(port) : 0;

		if (pv < 0 || pv > 65535) {
			resp_error(x, 400, "port %lld: out of range", (long long)pv);
			goto out_decref;
		}
		q.port = (uint16_t)pv;
	} else {
		resp_error(x, 400, "port: expected a number or \"tcp/5432\"");
		goto out_decref;
	}
	if (proto && proto_parse(proto, &q.proto) < 0) {
		resp_error(x, 400, "unknown protocol '%s'", proto);
		goto out_decref;
	}
	if (proto_has_ports(q.proto) && (!port || q.port == 0)) {
		resp_error(x, 400, "a port is required for %s", proto ? proto : "this protocol");
		goto out_decref;
	}
	r = views_build(x->d, NULL, &v);
	if (r < 0) {
		resp_error(x, 503, "out of memory");
		goto out_decref;
	}
	err_clear(&err);
	r = check_decide(v.pols, v.n_pols, v.eps, v.n_eps, api_copts(x->d), &q, &res, &err);
	if (r == -EINVAL)
		resp_err(x, 400, &err);
	else if (r < 0)
		resp_error(x, 500, "%s", err.msg);
	else
		resp_json(x, 200, api_json_check(&res, &q));
	views_release(&v);
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
	struct MHD_Connection *c = x->c;
	const char *v;
	char *end;

	flow_filter_init(f);
	v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "endpoint");
	if (v && *v)
		f->endpoint = v;
	v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "namespace");
	if (v && *v)
		f->ns = v;
	v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "direction");
	if (v && *v) {
		enum mseg_dir dir;

		if (flow_dir_parse(v, &dir) < 0) {
			resp_error(x, 400, "direction '%s': ingress or egress", v);
			return false;
		}
		f->dir = (int)dir;
	}
	v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "verdict");
	if (v && *v) {
		enum flow_verdict vd;

		if (flow_verdict_parse(v, &vd) < 0) {
			resp_error(x, 400, "verdict '%s': dropped or audited", v);
			return false;
		}
		f->verdict = (int)vd;
	}
	v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "proto");
	if (v && *v) {
		uint8_t p;

		if (proto_parse(v, &p) == 0) {
			f->proto = p;
		} else {
			unsigned long n;

			errno = 0;
			n = strtoul(v, &end, 10);
			if (errno || *end || n > 255) {
				resp_error(x, 400, "proto '%s': a name or a number", v);
				return false;
			}
			f->proto = (int)n;
		}
	}
	v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "port");
	if (v && *v) {
		unsigned long n;

		errno = 0;
		n = strtoul(v, &end, 10);
		if (errno || *end || n > 65535) {
			resp_error(x, 400, "port '%s': 0 to 65535", v);
			return false;
		}
		f->port = (int)n;
	}
	v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since");
	if (v && *v) {
		uint64_t ns;
		unsigned long long secs;

		/* RFC 3339, or seconds since the epoch */
		errno = 0;
		secs = strtoull(v, &end, 10);
		if (!errno && !*end)
			ns = (uint64_t)secs * 1000000000ull;
		else if (flow_time_parse(v, &ns) < 0) {
			resp_error(x, 400, "since '%s': RFC 3339 time or seconds since the epoch", v);
			return false;
		}
		f->since_ns = ns;
	}
	v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
	if (v && *v) {
		unsigned long n;

		errno = 0;
		n = strtoul(v, &end, 10);
		if (errno || *end || n > 1000000) {
			resp_error(x, 400, "limit '%s': 0 to 1000000", v);
			return false;
		}
		f->limit = n;
	}
	return true;
}

static void follow_unlink(struct api_follow *fw)
{
	struct api_server *a = fw->srv;

	if (!a)
		return;
	if (fw->prev)
		fw->prev->next = fw->next;
	else
		a->follows = fw->next;
	if (fw->next)
		fw->next->prev = fw->prev;
	fw->prev = fw->next = NULL;
	fw->srv = NULL;
}

static void follow_free(void *cls)
{
	struct api_follow *fw = cls;

	follow_unlink(fw);
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
	return 0;
}

static ssize_t follow_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct api_follow *fw = cls;
	struct api_server *a = fw->srv;
	size_t n;

	if (!a || a->stopping || fw->hangup)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (fw->out_pos == fw->out_len && a->flows) {
		struct follow_fill ff = { .fw = fw };
		uint64_t seq = flow_ring_seq(a->flows);

		fw->out_len = fw->out_pos = 0;
		if (seq != fw->filter.after_seq) {
			if (flow_ring_query(a->flows, &fw->filter, follow_fill_cb, &ff) < 0)
				return MHD_CONTENT_READER_END_WITH_ERROR;
			fw->filter.after_seq = seq;
			fw->filter.limit = 0;
		}
	}
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

static void h_flows(struct api_ctx *x)
{
	struct flow_filter f;
	struct api_follow *fw;
	struct MHD_Response *m;

	if (!x->a->flows) {
		resp_error(x, 503, "flow records are not available (no queue listener)");
		return;
	}
	if (!flows_filter_parse(x, &f))
		return;
	if (!query_flag(x->c, "follow")) {
		struct flows_out fo = { .arr = json_array() };

		if (flow_ring_query(x->a->flows, &f, flows_json_cb, &fo) < 0) {
			json_decref(fo.arr);
			resp_error(x, 503, "out of memory");
			return;
		}
		resp_json(x, 200, json_pack("{so}", "flows", fo.arr));
		return;
	}
	fw = calloc(1, sizeof(*fw));
	if (!fw) {
		resp_error(x, 503, "out of memory");
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
		resp_error(x, 503, "out of memory");
		return;
	}
	fw->next = x->a->follows;
	if (fw->next)
		fw->next->prev = fw;
	x->a->follows = fw;
	if (x->rq->conn) {
		x->rq->conn->streaming = true;
		MHD_set_connection_option(x->c, MHD_CONNECTION_OPTION_TIMEOUT, 0);
	}
	x->resp.code = 200;
	x->resp.raw = m;
	x->resp.ctype = "application/x-ndjson";
}

/* ---- routing ---- */

enum { M_GET = 1, M_PUT = 2, M_DELETE = 4, M_POST = 8 };

static unsigned method_bit(const char *m)
{
	if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
		return M_GET;
	if (strcmp(m, "PUT") == 0)
		return M_PUT;
	if (strcmp(m, "DELETE") == 0)
		return M_DELETE;
	if (strcmp(m, "POST") == 0)
		return M_POST;
	return 0;
}

static const char *allow_text(unsigned mask)
{
	static char buf[64];

	buf[0] = '\0';
	if (mask & M_GET)
		strcat(buf, "GET, HEAD, ");
	if (mask & M_PUT)
		strcat(buf, "PUT, ");
	if (mask & M_DELETE)
		strcat(buf, "DELETE, ");
	if (mask & M_POST)
		strcat(buf, "POST, ");
	if (buf[0])
		buf[strlen(buf) - 2] = '\0';
	return buf;
}

static bool seg_is(const struct api_ctx *x, size_t i, const char *s)
{
	return i < x->n_segs && strcmp(x->segs[i], s) == 0;
}

/* Which methods the path allows (0: no such route). */
static unsigned route_methods(const struct api_ctx *x)
{
	size_t n = x->n_segs;

	if (n == 1 && (seg_is(x, 0, "healthz") || seg_is(x, 0, "readyz") || seg_is(x, 0, "metrics")))
		return M_GET;
	if (n < 2 || !seg_is(x, 0, "v1"))
		return 0;
	if (n == 2 && seg_is(x, 1, "status"))
		return M_GET;
	if (n == 2 && seg_is(x, 1, "check"))
		return M_POST;
	if (n == 2 && seg_is(x, 1, "flows"))
		return M_GET;
	if (seg_is(x, 1, "policies"))
		return n == 2 ? M_GET : n == 4 ? M_GET | M_PUT | M_DELETE : 0;
	if (seg_is(x, 1, "endpoints"))
		return n == 2 ? M_GET : n == 3 ? M_GET | M_PUT | M_DELETE : 0;
	if (seg_is(x, 1, "rules"))
		return n == 2 || n == 3 ? M_GET : 0;
	return 0;
}

static void api_route(struct api_ctx *x, const char *url)
{
	char path[2048];
	char *save = NULL, *seg;
	unsigned allowed, m;

	if (url[0] != '/' || strlen(url) >= sizeof(path)) {
		resp_error(x, 414, "path too long");
		return;
	}
	snprintf(path, sizeof(path), "%s", url);
	for (seg = strtok_r(path, "/", &save); seg; seg = strtok_r(NULL, "/", &save)) {
		if (!api_segment_valid(seg)) {
			resp_error(x, 400, "invalid path segment '%.64s%s'", seg,
				   strlen(seg) > 64 ? "..." : "");
			return;
		}
		if (x->n_segs == sizeof(x->segs) / sizeof(x->segs[0])) {
			resp_error(x, 404, "no such route");
			return;
		}
		x->segs[x->n_segs++] = seg;
	}
	/* an empty segment ("//", trailing '/') is not a route */
	if (strstr(url, "//") || (strlen(url) > 1 && url[strlen(url) - 1] == '/')) {
		resp_error(x, 404, "no such route");
		return;
	}
	allowed = route_methods(x);
	if (!allowed) {
		resp_error(x, 404, "no such route: %.200s", url);
		return;
	}
	m = method_bit(x->method);
	if (!(m & allowed)) {
		resp_error(x, 405, "method %.16s not allowed on %.200s", x->method, url);
		x->resp.allow = allow_text(allowed);
		return;
	}
	if (x->n_segs == 1) {
		if (seg_is(x, 0, "healthz"))
			resp_json(x, 200, json_pack("{ss}", "status", "ok"));
		else if (seg_is(x, 0, "readyz"))
			h_readyz(x);
		else
			h_metrics(x);
		return;
	}
	if (seg_is(x, 1, "status"))
		h_status(x);
	else if (seg_is(x, 1, "check"))
		h_check(x);
	else if (seg_is(x, 1, "flows"))
		h_flows(x);
	else if (seg_is(x, 1, "rules"))
		h_rules(x, x->n_segs == 3 ? x->segs[2] : NULL);
	else if (seg_is(x, 1, "policies") && x->n_segs == 2)
		h_policies_list(x);
	else if (seg_is(x, 1, "policies") && m == M_GET)
		h_policy_get(x, x->segs[2], x->segs[3]);
	else if (seg_is(x, 1, "policies") && m == M_PUT)
		h_policy_put(x, x->segs[2], x->segs[3]);
	else if (seg_is(x, 1, "policies"))
		h_policy_delete(x, x->segs[2], x->segs[3]);
	else if (x->n_segs == 2)
		h_endpoints_list(x);
	else if (m == M_GET)
		h_endpoint_get(x, x->segs[2]);
	else if (m == M_PUT)
		h_endpoint_put(x, x->segs[2]);
	else
		h_endpoint_delete(x, x->segs[2]);
}

/* ---- libmicrohttpd callbacks ---- */

static enum MHD_Result early_answer(struct api_listener *l, struct MHD_Connection *c,
				    struct api_req *rq, unsigned code, const char *msg)
{
	struct api_resp r = { .code = code, .json = api_json_error(msg, 0, 0) };
	enum MHD_Result ret = send_resp(l->srv, c, &r);

	resp_release(&r);
	rq->answered = true;
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct api_listener *l = cls;
	struct api_server *a = l->srv;
	struct api_req *rq = *con_cls;
	struct api_ctx x;
	enum MHD_Result ret;

	if (!rq) {
		const union MHD_ConnectionInfo *ci;
		const char *cl;

		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		rq->l = l;
		ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		rq->conn = ci ? ci->socket_context : NULL;
		*con_cls = rq;
		if (l->tcp) {
			int code = api_auth_check(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
									     MHD_HTTP_HEADER_AUTHORIZATION),
						  a->token);

			if (code == 401)
				return early_answer(l, c, rq, 401,
						    "missing or malformed Authorization: expected 'Bearer TOKEN'");
			if (code == 403)
				return early_answer(l, c, rq, 403, "wrong token");
		}
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl) {
			char *end;
			unsigned long long n;

			errno = 0;
			n = strtoull(cl, &end, 10);
			if (errno || *end || n > API_MAX_BODY) {
				char msg[128];

				snprintf(msg, sizeof(msg), "request body larger than %u bytes", API_MAX_BODY);
				return early_answer(l, c, rq, 413, msg);
			}
		}
		return MHD_YES;
	}
	if (rq->answered) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (!rq->too_large && rq->len + n > API_MAX_BODY) {
			/* drain the rest (so the client reads the 413 instead of a
			 * reset), but not without end */
			rq->too_large = true;
			free(rq->body);
			rq->body = NULL;
			rq->cap = 0;
		}
		if (rq->too_large) {
			rq->len += n;
			return rq->len > API_MAX_DRAIN ? MHD_NO : MHD_YES;
		}
		if (rq->len + n + 1 > rq->cap) {
			size_t cap = rq->cap ? rq->cap : 4096;
			char *b;

			while (cap < rq->len + n + 1)
				cap *= 2;
			b = realloc(rq->body, cap);
			if (!b)
				return early_answer(l, c, rq, 503, "out of memory");
			rq->body = b;
			rq->cap = cap;
		}
		memcpy(rq->body + rq->len, upload_data, n);
		rq->len += n;
		rq->body[rq->len] = '\0';
		return MHD_YES;
	}
	if (rq->too_large) {
		char msg[128];

		snprintf(msg, sizeof(msg), "request body larger than %u bytes", API_MAX_BODY);
		return early_answer(l, c, rq, 413, msg);
	}
	memset(&x, 0, sizeof(x));
	x.a = a;
	x.d = a->d;
	x.c = c;
	x.rq = rq;
	x.method = method;
	api_route(&x, url);
	rq->answered = true;
	ret = send_resp(a, c, &x.resp);
	resp_release(&x.resp);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct api_req *rq = *con_cls;

	if (!rq)
		return;
	if (rq->conn) {
		rq->conn->since_ns = mono_ns();
		rq->conn->forced = false;
	}
	free(rq->body);
	free(rq);
	*con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct api_listener *l = cls;
	struct api_server *a = l->srv;
	struct api_conn *k = *socket_context;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		k = calloc(1, sizeof(*k));
		if (!k)
			return;
		k->c = c;
		k->since_ns = mono_ns();
		k->next = a->conns;
		if (k->next)
			k->next->prev = k;
		a->conns = k;
		*socket_context = k;
		return;
	}
	if (!k)
		return;
	if (k->prev)
		k->prev->next = k->next;
	else
		a->conns = k->next;
	if (k->next)
		k->next->prev = k->prev;
	free(k);
	*socket_context = NULL;
}

/* Decode %XX except %00 and %2F, which stay escaped so that the path check
 * refuses them instead of seeing a truncated or re-split path. */
static size_t on_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	char *w = s;

	for (const char *r = s; *r;) {
		if (r[0] == '%' && isxdigit((unsigned char)r[1]) && isxdigit((unsigned char)r[2])) {
			char hex[3] = { r[1], r[2], 0 };
			unsigned v = (unsigned)strtoul(hex, NULL, 16);

			if (v != 0 && v != '/') {
				*w++ = (char)v;
				r += 3;
				continue;
			}
		}
		*w++ = *r++;
	}
	*w = '\0';
	return (size_t)(w - s);
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	log_debug("http: %s", msg);
}

/* ---- event loop glue ---- */

/* Keep the timer at the earliest of MHD's timeout and the next sweep;
 * re-arming costs a syscall, so only when that moves earlier (or after the
 * timer fired). */
static void api_schedule(struct api_server *a)
{
	uint64_t best = API_SWEEP_MS, now = mono_ns(), due;

	for (size_t i = 0; i < a->n_lis; i++) {
		MHD_UNSIGNED_LONG_LONG t;

		if (a->lis[i].mhd && MHD_get_timeout(a->lis[i].mhd, &t) == MHD_YES && t < best)
			best = t;
	}
	due = now + best * 1000000ull;
	if (a->timer_due_ns && a->timer_due_ns > now && a->timer_due_ns <= due)
		return;
	if (evloop_timer_arm(a->timer, best, 0) == 0)
		a->timer_due_ns = due;
}

static void api_run_all(struct api_server *a)
{
	for (size_t i = 0; i < a->n_lis; i++)
		if (a->lis[i].mhd)
			MHD_run(a->lis[i].mhd);
}

static void on_mhd_ready(struct evloop_source *src, uint32_t events, void *data)
{
	struct api_listener *l = data;

	MHD_run(l->mhd);
	api_schedule(l->srv);
}

/* Slow clients: a connection that has not completed a request within the
 * deadline gets a 1 s inactivity timeout, which a client trickling bytes
 * every few seconds cannot meet. Followers: resume when the ring moved or
 * the client hung up. */
static void api_sweep(struct api_server *a)
{
	uint64_t now = mono_ns();
	bool moved = a->flows && flow_ring_seq(a->flows) != a->follow_seq;

	for (struct api_conn *k = a->conns; k; k = k->next) {
		if (k->streaming || k->forced)
			continue;
		if (now - k->since_ns > (uint64_t)API_REQUEST_DEADLINE_MS * 1000000ull) {
			MHD_set_connection_option(k->c, MHD_CONNECTION_OPTION_TIMEOUT, 1);
			k->forced = true;
		}
	}
	if (a->flows)
		a->follow_seq = flow_ring_seq(a->flows);
	for (struct api_follow *fw = a->follows; fw; fw = fw->next) {
		bool resume = moved;

		if (!fw->suspended)
			continue;
		if (!resume) {
			const union MHD_ConnectionInfo *ci =
				MHD_get_connection_info(fw->c, MHD_CONNECTION_INFO_CONNECTION_FD);

			if (ci) {
				struct pollfd p = { .fd = ci->connect_fd, .events = POLLRDHUP };

				if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
					fw->hangup = true;
					resume = true;
				}
			}
		}
		if (resume) {
			fw->suspended = false;
			MHD_resume_connection(fw->c);
		}
	}
}

static void on_api_timer(struct evloop_source *src, uint32_t events, void *data)
{
	struct api_server *a = data;
	uint64_t exp;

	a->timer_due_ns = 0;
	if (read(evloop_source_fd(src), &exp, sizeof(exp)) < 0) {
		/* nothing: the timer may have been re-armed */
	}
	api_sweep(a);
	api_run_all(a);
	api_schedule(a);
}

/* ---- listeners ---- */

static int unix_listen(const char *path, int *ret_fd, struct mseg_err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[sizeof(sa.sun_path)];
	char *slash;
	struct stat st;
	mode_t old;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return err_setf(err, ENAMETOOLONG, "socket path '%s' too long", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	/* the parent directory, 0755 */
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		for (char *p = dir + 1; *p; p++) {
			if (*p != '/')
				continue;
			*p = '\0';
			mkdir(dir, 0755);
			*p = '/';
		}
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return err_set(err, dir, 0, 0, errno, "cannot create: %s", strerror(errno));
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_setf(err, errno, "socket: %s", strerror(errno));
	/* a stale socket file: refuse if somebody still answers on it */
	if (lstat(path, &st) == 0) {
		int probe;

		if (!S_ISSOCK(st.st_mode)) {
			close(fd);
			return err_set(err, path, 0, 0, EEXIST, "exists and is not a socket");
		}
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			close(fd);
			return err_set(err, path, 0, 0, EADDRINUSE,
				       "another process is listening on it (is msegd already running?)");
		}
		if (probe >= 0)
			close(probe);
		unlink(path);
	}
	old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0) {
		r = err_set(err, path, 0, 0, errno, "bind: %s", strerror(errno));
		close(fd);
		return r;
	}
	if (chmod(path, 0600) < 0 || listen(fd, 128) < 0) {
		r = err_set(err, path, 0, 0, errno, "listen: %s", strerror(errno));
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

static int tcp_listen(const char *spec, int *ret_fd, struct mseg_err *err)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	int fd, r, one = 1;
	size_t hl;

	if (!colon || colon == spec || !colon[1])
		return err_setf(err, EINVAL, "--listen-tcp '%s': expected ADDR:PORT", spec);
	hl = (size_t)(colon - spec);
	if (spec[0] == '[' && colon[-1] == ']') {
		spec++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		return err_setf(err, EINVAL, "--listen-tcp '%s': address too long", spec);
	memcpy(host, spec, hl);
	host[hl] = '\0';
	r = getaddrinfo(host, colon + 1, &hints, &res);
	if (r != 0)
		return err_setf(err, EINVAL, "--listen-tcp '%s': %s", spec, gai_strerror(r));
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		r = err_setf(err, errno, "socket: %s", strerror(errno));
		goto out_free;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		r = err_setf(err, errno, "--listen-tcp '%s': %s", spec, strerror(errno));
		close(fd);
		goto out_free;
	}
	*ret_fd = fd;
	r = 0;
out_free:
	freeaddrinfo(res);
	return r;
}

static int file_read_all(const char *path, char **ret, struct mseg_err *err)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0;
	FILE *m;
	char chunk[4096];
	size_t n;

	if (!f)
		return err_set(err, path, 0, 0, errno, "cannot open: %s", strerror(errno));
	m = open_memstream(&buf, &len);
	if (!m) {
		fclose(f);
		return err_setf(err, ENOMEM, "out of memory");
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(f);
	if (fclose(m) != 0) {
		free(buf);
		return err_setf(err, ENOMEM, "out of memory");
	}
	*ret = buf;
	return 0;
}

static int listener_start(struct api_server *a, const char *name, int fd, bool tcp,
			  struct mseg_err *err)
{
	struct api_listener *l = &a->lis[a->n_lis];
	struct MHD_OptionItem o[16];
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *di;
	size_t n = 0;
	int r;

	l->srv = a;
	l->tcp = tcp;
	l->name = strdup(name);
	if (!l->name) {
		close(fd);
		return err_setf(err, ENOMEM, "out of memory");
	}
	o[n++] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_SOCKET, fd, NULL };
	o[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT, API_MAX_CONNECTIONS, NULL };
	o[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_MEMORY_LIMIT, API_MAX_HEADER_MEMORY, NULL };
	o[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT, API_IDLE_TIMEOUT_S, NULL };
	o[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, l };
	o[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, l };
	o[n++] = (struct MHD_OptionItem){ MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)on_unescape, l };
	o[n++] = (struct MHD_OptionItem){ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, l };
	if (tcp) {
		o[n++] = (struct MHD_OptionItem){ MHD_OPTION_PER_IP_CONNECTION_LIMIT,
						  API_MAX_CONNECTIONS_PER_IP, NULL };
		if (a->tls_cert) {
			flags |= MHD_USE_TLS;
			o[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, a->tls_key };
			o[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, a->tls_cert };
		}
	}
	o[n++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	l->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, l, MHD_OPTION_ARRAY, o,
				  MHD_OPTION_END);
	if (!l->mhd) {
		close(fd);
		return err_setf(err, EINVAL, "%s: cannot start the HTTP server%s", name,
				tcp && a->tls_cert ? " (TLS: is the key/certificate valid?)" : "");
	}
	a->n_lis++;
	di = MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!di)
		return err_setf(err, EINVAL, "%s: no epoll fd from libmicrohttpd", name);
	l->src = evloop_add_fd(a->d->loop, di->epoll_fd, EPOLLIN, on_mhd_ready, l, &r);
	if (!l->src)
		return err_setf(err, -r, "%s: %s", name, strerror(-r));
	return 0;
}

int api_server_new(struct daemon *d, struct api_server **ret_api, struct mseg_err *err)
{
	const struct daemon_config *cfg = d->cfg;
	struct api_server *a = calloc(1, sizeof(*a));
	struct timespec ts;
	int fd = -1, r;

	if (!a)
		return err_setf(err, ENOMEM, "out of memory");
	a->d = d;
	a->start_ns = mono_ns();
	clock_gettime(CLOCK_REALTIME, &ts);
	a->start_real_s = (uint64_t)ts.tv_sec;
	if (cfg->listen_tcp) {
		if (!cfg->token_file) {
			r = err_setf(err, EINVAL, "--listen-tcp requires --token-file");
			goto out_free;
		}
		r = api_token_load(cfg->token_file, &a->token, err);
		if (r < 0)
			goto out_free;
		if (cfg->tls_cert) {
			r = file_read_all(cfg->tls_cert, &a->tls_cert, err);
			if (r == 0)
				r = file_read_all(cfg->tls_key, &a->tls_key, err);
			if (r < 0)
				goto out_free;
		}
	}
	r = store_open(cfg->state_dir, &a->store, err);
	if (r < 0)
		goto out_free;
	r = store_load(a->store, &d->api_policies, &d->api_inventory, err);
	if (r < 0)
		goto out_free;
	a->timer = evloop_add_timer(d->loop, API_SWEEP_MS, 0, on_api_timer, a, &r);
	if (!a->timer) {
		err_setf(err, -r, "timer: %s", strerror(-r));
		goto out_free;
	}
	a->rules_timer = evloop_add_timer(d->loop, API_RULES_TICK_MS, API_RULES_TICK_MS, on_rules_tick,
					  a, &r);
	if (!a->rules_timer) {
		err_setf(err, -r, "timer: %s", strerror(-r));
		goto out_free;
	}
	if (cfg->listen) {
		const char *path = cfg->listen + strlen("unix:");

		r = unix_listen(path, &fd, err);
		if (r == 0)
			r = listener_start(a, cfg->listen, fd, false, err);
		if (r < 0)
			goto out_free;
	}
	if (cfg->listen_tcp) {
		char name[300];

		snprintf(name, sizeof(name), "%s:%s", cfg->tls_cert ? "https" : "http", cfg->listen_tcp);
		r = tcp_listen(cfg->listen_tcp, &fd, err);
		if (r == 0)
			r = listener_start(a, name, fd, true, err);
		if (r < 0)
			goto out_free;
	}
	if (d->flows)
		api_server_set_flows(a, flowpipe_ring(d->flows));
	*ret_api = a;
	return 0;

out_free:
	api_server_free(a);
	return r;
}

struct api_server *api_server_free(struct api_server *a)
{
	if (!a)
		return NULL;
	a->stopping = true;
	for (size_t i = 0; i < a->n_lis; i++) {
		struct api_listener *l = &a->lis[i];

		if (l->src)
			evloop_source_remove(l->src);
		/* suspended followers must be resumed before MHD stops */
		for (struct api_follow *fw = a->follows; fw; fw = fw->next)
			if (fw->suspended) {
				fw->suspended = false;
				MHD_resume_connection(fw->c);
			}
		if (l->mhd)
			MHD_stop_daemon(l->mhd);
		if (!l->tcp && l->name && strncmp(l->name, "unix:", 5) == 0)
			unlink(l->name + 5);
		free(l->name);
	}
	while (a->follows)
		follow_unlink(a->follows);
	if (a->timer)
		evloop_source_remove(a->timer);
	store_free(a->store);
	if (a->rules_timer)
		evloop_source_remove(a->rules_timer);
	for (size_t i = 0; i < a->n_slots; i++) {
		free(a->slots[i].id);
		json_decref(a->slots[i].entry);
	}
	free(a->slots);
	free(a->rules_text);
	free(a->status_text);
	if (a->token) {
		explicit_bzero(a->token, strlen(a->token));
		free(a->token);
	}
	free(a->tls_cert);
	if (a->tls_key) {
		explicit_bzero(a->tls_key, strlen(a->tls_key));
		free(a->tls_key);
	}
	free(a);
	return NULL;
}

void api_server_set_flows(struct api_server *a, struct flow_ring *ring)
{
	a->flows = ring;
	a->follow_seq = ring ? flow_ring_seq(ring) : 0;
}
