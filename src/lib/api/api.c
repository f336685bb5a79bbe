/* The REST API's HTTP transport: listeners, authentication, limits and
 * routing on libmicrohttpd, driven by msegd's event loop. See
 * include/mseg/api/api.h and docs/rest-api.md. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
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

#include "mseg/util/clock.h"
#include "mseg/api/api.h"
#include "mseg/packet/flow.h"
#include "mseg/util/log.h"
#include "mseg/daemon/daemon.h"
#include "mseg/daemon/flowpipe.h"
#include "api/api_json.h"
#include "api/api_priv.h"

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
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	struct stat st;

	if (fd < 0)
		return err_set(err, path, 0, 0, errno, "cannot read the token file: %s",
			       strerror(errno));
	/* a secret others can read is no secret: refuse it, as ssh does */
	if (fstat(fd, &st) < 0) {
		int e2 = errno;

		close(fd);
		return err_set(err, path, 0, 0, e2, "cannot read the token file: %s", strerror(e2));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(err, path, 0, 0, EINVAL, "the token file is not a regular file");
	}
	if (st.st_mode & 077) {
		close(fd);
		return err_set(err, path, 0, 0, EPERM,
			       "the token file is readable or writable by group or others (mode "
			       "%04o); chmod 600 it", (unsigned)(st.st_mode & 07777));
	}
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
	MHD_add_response_header(m, "X-Content-Type-Options", "nosniff");
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

/* ---- routing ---- */

enum { M_GET = 1, M_PUT = 2, M_DELETE = 4, M_POST = 8, M_PATCH = 16 };

static unsigned method_bit(const char *m)
{
	static const struct { const char *name; unsigned bit; } methods[] = {
		{ "GET", M_GET }, { "HEAD", M_GET }, { "PUT", M_PUT }, { "DELETE", M_DELETE },
		{ "POST", M_POST }, { "PATCH", M_PATCH },
	};

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(m, methods[i].name) == 0)
			return methods[i].bit;
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
	if (mask & M_PATCH)
		strcat(buf, "PATCH, ");
	if (mask & M_DELETE)
		strcat(buf, "DELETE, ");
	if (mask & M_POST)
		strcat(buf, "POST, ");
	if (buf[0])
		buf[strlen(buf) - 2] = '\0';
	return buf;
}

static void r_healthz(struct api_ctx *x)
{
	api_resp_json(x, 200, json_pack("{ss}", "status", "ok"));
}
static void r_rules_all(struct api_ctx *x) { api_handle_rules(x, NULL); }
static void r_rules_one(struct api_ctx *x) { api_handle_rules(x, x->segs[2]); }
static void r_policy_get(struct api_ctx *x) { api_handle_policy_get(x, x->segs[2], x->segs[3]); }
static void r_policy_put(struct api_ctx *x) { api_handle_policy_put(x, x->segs[2], x->segs[3]); }
static void r_policy_delete(struct api_ctx *x)
{
	api_handle_policy_delete(x, x->segs[2], x->segs[3]);
}
static void r_policy_mode(struct api_ctx *x) { api_handle_policy_mode(x, x->segs[2], x->segs[3]); }
static void r_endpoint_get(struct api_ctx *x) { api_handle_endpoint_get(x, x->segs[2]); }
static void r_endpoint_put(struct api_ctx *x) { api_handle_endpoint_put(x, x->segs[2]); }
static void r_endpoint_patch(struct api_ctx *x) { api_handle_endpoint_patch(x, x->segs[2]); }
static void r_endpoint_delete(struct api_ctx *x) { api_handle_endpoint_delete(x, x->segs[2]); }
static void r_accepted_all(struct api_ctx *x) { api_handle_accepted(x, NULL); }
static void r_accepted_one(struct api_ctx *x) { api_handle_accepted(x, x->segs[2]); }
static void r_namespace_get(struct api_ctx *x) { api_handle_namespace_get(x, x->segs[2]); }
static void r_namespace_put(struct api_ctx *x) { api_handle_namespace_put(x, x->segs[2]); }
static void r_namespace_delete(struct api_ctx *x) { api_handle_namespace_delete(x, x->segs[2]); }

/* Every route: path segments ("*" is any one segment), method, handler. */
static const struct route {
	const char *path;
	unsigned method;
	void (*fn)(struct api_ctx *x);
} routes[] = {
	{ "/healthz", M_GET, r_healthz },
	{ "/readyz", M_GET, api_handle_readyz },
	{ "/metrics", M_GET, api_handle_metrics },
	{ "/v1/status", M_GET, api_handle_status },
	{ "/v1/check", M_POST, api_handle_check },
	{ "/v1/flows", M_GET, api_handle_flows },
	{ "/v1/graph", M_GET, api_handle_graph },
	{ "/v1/recommendations", M_GET, api_handle_recommendations },
	{ "/v1/accepted", M_GET, r_accepted_all },
	{ "/v1/rules", M_GET, r_rules_all },
	{ "/v1/rules/*", M_GET, r_rules_one },
	{ "/v1/policies", M_GET, api_handle_policies_list },
	{ "/v1/policies/*/*", M_GET, r_policy_get },
	{ "/v1/policies/*/*", M_PUT, r_policy_put },
	{ "/v1/policies/*/*", M_DELETE, r_policy_delete },
	{ "/v1/policies/*/*/mode", M_PUT, r_policy_mode },
	{ "/v1/endpoints", M_GET, api_handle_endpoints_list },
	{ "/v1/endpoints/*", M_GET, r_endpoint_get },
	{ "/v1/endpoints/*", M_PUT, r_endpoint_put },
	{ "/v1/endpoints/*", M_PATCH, r_endpoint_patch },
	{ "/v1/endpoints/*", M_DELETE, r_endpoint_delete },
	{ "/v1/endpoints/*/accepted", M_GET, r_accepted_one },
	{ "/v1/namespaces", M_GET, api_handle_namespaces_list },
	{ "/v1/namespaces/*", M_GET, r_namespace_get },
	{ "/v1/namespaces/*", M_PUT, r_namespace_put },
	{ "/v1/namespaces/*", M_DELETE, r_namespace_delete },
};

static bool route_matches(const struct route *rt, const struct api_ctx *x)
{
	const char *p = rt->path;
	size_t i = 0;

	while (*p == '/') {
		size_t len;

		p++;
		len = strcspn(p, "/");
		if (i >= x->n_segs)
			return false;
		if (!(len == 1 && *p == '*') &&
		    (strlen(x->segs[i]) != len || strncmp(x->segs[i], p, len) != 0))
			return false;
		i++;
		p += len;
	}
	return i == x->n_segs;
}

void api_route(struct api_ctx *x, const char *url)
{
	char path[2048];
	char *save = NULL, *seg;
	unsigned allowed, m;

	if (url[0] != '/' || strlen(url) >= sizeof(path)) {
		api_resp_error(x, 414, "path too long");
		return;
	}
	/* the page's files: one handler for the folder (its paths end in '/') */
	if (api_ui_path(url)) {
		api_handle_ui(x, url);
		return;
	}
	snprintf(path, sizeof(path), "%s", url);
	for (seg = strtok_r(path, "/", &save); seg; seg = strtok_r(NULL, "/", &save)) {
		if (!api_segment_valid(seg)) {
			api_resp_error(x, 400, "invalid path segment '%.64s%s'", seg,
				   strlen(seg) > 64 ? "..." : "");
			return;
		}
		if (x->n_segs == sizeof(x->segs) / sizeof(x->segs[0])) {
			api_resp_error(x, 404, "no such route");
			return;
		}
		x->segs[x->n_segs++] = seg;
	}
	/* an empty segment ("//", trailing '/') is not a route */
	if (strstr(url, "//") || (strlen(url) > 1 && url[strlen(url) - 1] == '/')) {
		api_resp_error(x, 404, "no such route");
		return;
	}
	allowed = 0;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (route_matches(&routes[i], x))
			allowed |= routes[i].method;
	if (!allowed) {
		api_resp_error(x, 404, "no such route: %.200s", url);
		return;
	}
	m = method_bit(x->method);
	if (!(m & allowed)) {
		api_resp_error(x, 405, "method %.16s not allowed on %.200s", x->method, url);
		x->resp.allow = allow_text(allowed);
		return;
	}
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (routes[i].method == m && route_matches(&routes[i], x)) {
			routes[i].fn(x);
			return;
		}
}

/* ---- browsers ---- */

/* No cross-site requests (docs/ui.md): a request that carries an Origin
 * must come from this listener's own origin (scheme://Host), a fetch
 * metadata header must not say cross-site, and a browser's request that
 * changes state must carry X-Mseg-UI or Authorization, which a cross-site
 * form cannot send. Clients that are not browsers send none of these.
 * 0, or 403 with @msg. */
static int browser_guard(struct MHD_Connection *c, const char *method, bool tls, char *msg,
			 size_t size)
{
	const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
	const char *site = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-Fetch-Site");
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	const char *scheme = tls ? "https://" : "http://";

	if (origin && (!host || strncmp(origin, scheme, strlen(scheme)) != 0 ||
		       strcmp(origin + strlen(scheme), host) != 0)) {
		snprintf(msg, size, "cross-origin request refused: Origin '%.100s' is not this listener",
			 origin);
		return 403;
	}
	if (site && strcmp(site, "cross-site") == 0) {
		snprintf(msg, size, "cross-site request refused");
		return 403;
	}
	if ((origin || site) && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
	    !MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Mseg-UI") &&
	    !MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION)) {
		snprintf(msg, size, "a browser's %.16s must carry the header X-Mseg-UI", method);
		return 403;
	}
	return 0;
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
		{
			char msg[200];

			if (browser_guard(c, method, l->tcp && a->tls_cert, msg, sizeof(msg)))
				return early_answer(l, c, rq, 403, msg);
		}
		/* the page's files carry no data: a browser loads them
		 * without a token, then the page asks for it */
		if (l->tcp && !(api_ui_path(url) && (strcmp(method, "GET") == 0 ||
						     strcmp(method, "HEAD") == 0))) {
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
	x.be = &a->be;
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
		/* a follow stream that ended leaves a keep-alive connection
		 * like any other: back under the sweep's deadline */
		rq->conn->since_ns = clock_mono_ns();
		rq->conn->forced = false;
		if (rq->conn->streaming) {
			rq->conn->streaming = false;
			MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT,
						  API_IDLE_TIMEOUT_S);
		}
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
		k->since_ns = clock_mono_ns();
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
	uint64_t best = API_SWEEP_MS, now = clock_mono_ns(), due;

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
	uint64_t now = clock_mono_ns();
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
			/* TLS 1.2 and 1.3 only, GnuTLS's secure ciphers */
			o[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0,
				(void *)API_TLS_PRIORITIES };
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
	l->src = evloop_add_fd(a->be.loop, di->epoll_fd, EPOLLIN, on_mhd_ready, l, &r);
	if (!l->src)
		return err_setf(err, -r, "%s: %s", name, strerror(-r));
	return 0;
}

int api_server_new(const struct api_backend *be, struct api_server **ret_api,
		   struct mseg_err *err)
{
	const struct daemon_config *cfg = be->cfg;
	struct api_server *a = calloc(1, sizeof(*a));
	int fd = -1, r;

	if (!a)
		return err_setf(err, ENOMEM, "out of memory");
	a->be = *be;
	a->start_ns = clock_mono_ns();
	a->start_real_s = clock_real_ns() / 1000000000ull;
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
	a->timer = evloop_add_timer(be->loop, API_SWEEP_MS, 0, on_api_timer, a, &r);
	if (!a->timer) {
		err_setf(err, -r, "timer: %s", strerror(-r));
		goto out_free;
	}
	a->rules_timer = evloop_add_timer(be->loop, API_RULES_TICK_MS, API_RULES_TICK_MS, api_on_rules_tick,
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
		if (!cfg->tls_cert)
			log_warn("%s: TCP listener without TLS: the bearer token and every answer "
				 "cross the network in clear text (give --tls-cert and --tls-key)",
				 name);
		r = tcp_listen(cfg->listen_tcp, &fd, err);
		if (r == 0)
			r = listener_start(a, name, fd, true, err);
		if (r < 0)
			goto out_free;
	}
	if (be->flows)
		api_server_set_flows(a, flowpipe_ring(be->flows));
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
		api_follow_unlink(a->follows);
	if (a->timer)
		evloop_source_remove(a->timer);
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
