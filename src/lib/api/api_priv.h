/* Private to the REST API: the server's state shared by the HTTP transport
 * (api.c: listeners, authentication, limits, routing), the route handlers
 * (api_routes.c) and the response helpers (api_resp.c). The transport
 * calls the handlers; both use the response helpers; nothing calls back
 * into the transport. */
#ifndef MSEG_API_PRIV_H
#define MSEG_API_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <microhttpd.h>

#include "mseg/api/api.h"
#include "mseg/kernel/nft.h"
#include "mseg/packet/flow.h"

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
/* GET /metrics: the per-endpoint kernel counters come from the same
 * background timer (one namespace per tick, each read at most this old)
 * while somebody scraped within API_RULES_IDLE_MS, so a scrape does no
 * netlink round trip */
#define API_COUNTERS_MAX_AGE_MS 5000
/* GET /v1/rules?fresh=1 (and ?table=1) read every namespace on the loop:
 * at most one such read per this many ms (429 otherwise) */
#define API_FRESH_MIN_INTERVAL_MS 1000
#define API_DIFF_MAX_LIST 200
/* a follower's output buffer: the backlog is sent in pieces of about this */
#define API_FOLLOW_BUF (64u << 10)
/* follow streams open at once (503 beyond) */
#define API_MAX_FOLLOWERS 32
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
	/* a round sends what changed after filter.after_seq and up to
	 * round_upto; it is resumed at ring position @pos while the output
	 * buffer fills, so a large backlog is never copied at once */
	bool in_round;
	uint64_t round_upto;
	uint64_t pos;
	char *out;
	size_t out_len, out_pos;
};

struct api_server {
	struct api_backend be;
	struct api_listener lis[2];
	size_t n_lis;
	struct evloop_source *timer;
	char *token;
	char *tls_cert, *tls_key;
	struct api_conn *conns;
	struct api_follow *follows;
	size_t n_follows;
	struct flow_ring *flows;
	uint64_t follow_seq;
	uint64_t start_ns, start_real_s;
	uint64_t requests[API_MAX_CODE];
	uint64_t timer_due_ns;         /* when the armed timer fires; 0 = fired */
	/* GET /v1/rules of all endpoints: per-endpoint read-backs kept
	 * fresh by a background timer (a few namespaces per tick), so that
	 * no request reads 100 namespaces while packets wait */
	struct rules_slot *slots;
	size_t n_slots;
	struct evloop_source *rules_timer;
	uint64_t rules_wanted_ns;      /* last GET /v1/rules */
	uint64_t metrics_wanted_ns;    /* last GET /metrics */
	uint64_t fresh_ns;             /* last full live read (?fresh=1, ?table=1) */
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
	/* the table's counters, for /metrics */
	struct ep_table_counters ctr;
	bool ctr_valid;
	uint64_t ctr_ns;               /* when read; 0: never */
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

/* Where a request's query arguments and headers come from. */
enum api_value_kind { API_VALUE_QUERY, API_VALUE_HEADER };

struct api_ctx {
	struct api_server *a;
	const struct api_backend *be;  /* = &a->be */
	struct MHD_Connection *c;      /* NULL: a request without HTTP (api_fuzz.c) */
	/* the query and headers when there is no connection (NULL: none) */
	const char *(*value)(const struct api_ctx *x, enum api_value_kind kind, const char *key);
	void *value_data;
	struct api_req *rq;
	const char *method;
	const char *segs[8];
	size_t n_segs;
	struct api_resp resp;
};

struct evloop_source;
struct mseg_err;

/* ---- api_resp.c: answers, for the transport and the handlers ---- */


/* Set the answer: @j (owned) with status @code, replacing any earlier one. */
void api_resp_json(struct api_ctx *x, unsigned code, json_t *j);
/* {"error": MSG} with status @code. */
__attribute__((format(printf, 3, 4))) void api_resp_error(struct api_ctx *x, unsigned code,
							  const char *fmt, ...);
/* {"error", "line", "column"} from @err with status @code. */
void api_resp_err(struct api_ctx *x, unsigned code, const struct mseg_err *err);

/* A query argument / header of the request (MHD's, or x->value's without
 * a connection); NULL when absent. Valid for the request. */
const char *api_query(const struct api_ctx *x, const char *key);
const char *api_header(const struct api_ctx *x, const char *key);

/* ---- api.c: routing ---- */

/* Route the request in @x (method set, segments empty) for @url (the path,
 * without the query) to its handler, which fills x->resp. */
void api_route(struct api_ctx *x, const char *url);

/* ---- api_routes.c: the route handlers ---- */

void api_handle_readyz(struct api_ctx *x);
void api_handle_metrics(struct api_ctx *x);
void api_handle_status(struct api_ctx *x);
void api_handle_check(struct api_ctx *x);
void api_handle_flows(struct api_ctx *x);
void api_handle_recommendations(struct api_ctx *x);
void api_handle_accepted(struct api_ctx *x, const char *id);
void api_handle_rules(struct api_ctx *x, const char *id);
void api_handle_policies_list(struct api_ctx *x);
void api_handle_policy_get(struct api_ctx *x, const char *ns, const char *name);
void api_handle_policy_put(struct api_ctx *x, const char *ns, const char *name);
void api_handle_policy_mode(struct api_ctx *x, const char *ns, const char *name);
void api_handle_policy_delete(struct api_ctx *x, const char *ns, const char *name);
void api_handle_endpoints_list(struct api_ctx *x);
void api_handle_endpoint_get(struct api_ctx *x, const char *id);
void api_handle_endpoint_put(struct api_ctx *x, const char *id);
void api_handle_endpoint_patch(struct api_ctx *x, const char *id);
void api_handle_endpoint_delete(struct api_ctx *x, const char *id);
void api_handle_namespaces_list(struct api_ctx *x);
void api_handle_namespace_get(struct api_ctx *x, const char *name);
void api_handle_namespace_put(struct api_ctx *x, const char *name);
void api_handle_namespace_delete(struct api_ctx *x, const char *name);

/* ---- api_ui.c: the flow map's files (/ui/) ---- */

/* Is @url the page's (/ui or below)? */
bool api_ui_path(const char *url);
void api_handle_ui(struct api_ctx *x, const char *url);

/* ---- api_graph.c: GET /v1/graph ---- */

void api_handle_graph(struct api_ctx *x);

/* The GET /v1/rules background read-back timer's callback. */
void api_on_rules_tick(struct evloop_source *src, uint32_t events, void *data);
/* Take a follow stream off its server's list (idempotent). */
void api_follow_unlink(struct api_follow *fw);

#endif
