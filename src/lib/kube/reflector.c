/* List/watch reflectors on libcurl's multi interface in the event loop
 * (src/lib/kube/reflector.h). */
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>

#include "kube/reflector.h"
#include "mseg/util/hash.h"
#include "mseg/util/clock.h"
#include "mseg/util/evloop.h"

#define LIST_MAX_BYTES (256u << 20)     /* a list larger than this is refused */
#define CONNECT_TIMEOUT_S 10
#define LIST_TIMEOUT_S 120

struct kube_http {
	struct evloop *loop;
	struct kube_config *cfg;
	CURLM *multi;
	struct evloop_source *timer;
	struct curl_blob ca, cert, key;
};

enum rf_phase { RF_IDLE, RF_LIST, RF_WATCH };

struct kube_reflector {
	struct kube_http *h;
	char *path;
	char *query;                   /* opts.query ("" when none), without "?" */
	struct kube_reflector_opts o;
	const struct kube_reflector_ops *ops;
	void *data;
	json_t *store;                 /* key -> trimmed object */
	json_t *event;                 /* the watch event's object being applied */
	enum rf_phase phase;
	CURL *easy;                    /* kept from request to request (reset) */
	bool in_multi;                 /* a request of @easy is running */
	struct curl_slist *headers;
	char *body;                    /* list answer */
	size_t body_len, body_cap;
	bool body_too_big;
	struct kube_watch_parser parser;
	bool gone;                     /* the watch said 410: relist */
	bool stream_error;             /* the stream did not parse */
	bool got_event;                /* on this watch connection */
	bool listed_once;
	/* a list in pages: the continue token of the next page, and the keys
	 * every page so far had (what is not in any page is gone); a list
	 * into an empty store (the first) has nothing to remove: no keys */
	char *cont;
	json_t *seen;
	bool list_into_empty;
	unsigned attempts;             /* failures in a row: the backoff */
	struct evloop_source *retry;   /* backoff timer */
	enum rf_phase retry_phase;
	struct kube_resource_status st;
	char last_logged[512];
	char errbuf[CURL_ERROR_SIZE];
};

/* ---- logging through the owner, once per distinct message ---- */

static void rf_log(struct kube_reflector *rf, enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void rf_log(struct kube_reflector *rf, enum log_level lvl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (lvl <= LOG_LVL_WARN) {
		/* the same failure again and again is said once */
		if (strcmp(rf->last_logged, msg) == 0)
			return;
		snprintf(rf->last_logged, sizeof(rf->last_logged), "%s", msg);
		snprintf(rf->st.last_error, sizeof(rf->st.last_error), "%s", msg);
	}
	if (rf->ops->log)
		rf->ops->log(rf->data, lvl, msg);
}

/* ---- curl multi <-> evloop ---- */

static void http_drain(struct kube_http *h);

static void on_curl_fd(struct evloop_source *src, uint32_t events, void *data)
{
	struct kube_http *h = data;
	int flags = 0, running;

	if (events & EPOLLIN)
		flags |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (events & (EPOLLERR | EPOLLHUP))
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(h->multi, evloop_source_fd(src), flags, &running);
	http_drain(h);
}

static int on_curl_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct kube_http *h = userp;
	struct evloop_source *src = socketp;
	uint32_t ev = 0;
	int r;

	if (what == CURL_POLL_REMOVE) {
		evloop_source_remove(src);
		curl_multi_assign(h->multi, s, NULL);
		return 0;
	}
	if (what & CURL_POLL_IN)
		ev |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev |= EPOLLOUT;
	if (src)
		return evloop_source_modify(src, ev) < 0 ? -1 : 0;
	src = evloop_add_fd(h->loop, s, ev, on_curl_fd, h, &r);
	if (!src)
		return -1;
	curl_multi_assign(h->multi, s, src);
	return 0;
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
	struct kube_http *h = userp;

	/* -1: no timeout wanted; a late firing is harmless */
	if (timeout_ms < 0)
		return evloop_timer_arm(h->timer, 3600 * 1000, 0) < 0 ? -1 : 0;
	return evloop_timer_arm(h->timer, (uint64_t)timeout_ms, 0) < 0 ? -1 : 0;
}

static void on_http_timer(struct evloop_source *src, uint32_t events, void *data)
{
	struct kube_http *h = data;
	int running;

	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	http_drain(h);
}

struct kube_http *kube_http_new(struct evloop *loop, struct kube_config *cfg, int *ret_err)
{
	struct kube_http *h = calloc(1, sizeof(*h));

	*ret_err = -ENOMEM;
	if (!h)
		return NULL;
	h->loop = loop;
	h->cfg = cfg;
	h->multi = curl_multi_init();
	if (!h->multi)
		goto out_free;
	h->timer = evloop_add_timer(loop, 0, 0, on_http_timer, h, ret_err);
	if (!h->timer)
		goto out_free;
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	h->ca = (struct curl_blob){ cfg->ca_pem, cfg->ca_pem_len, CURL_BLOB_NOCOPY };
	h->cert = (struct curl_blob){ cfg->cert_pem, cfg->cert_pem_len, CURL_BLOB_NOCOPY };
	h->key = (struct curl_blob){ cfg->key_pem, cfg->key_pem_len, CURL_BLOB_NOCOPY };
	*ret_err = 0;
	return h;
out_free:
	kube_http_free(h);
	return NULL;
}

struct kube_http *kube_http_free(struct kube_http *h)
{
	if (!h)
		return NULL;
	if (h->multi)
		curl_multi_cleanup(h->multi);
	evloop_source_remove(h->timer);
	free(h);
	return NULL;
}

/* ---- one reflector ---- */

static void rf_start(struct kube_reflector *rf, enum rf_phase phase);
static void rf_done(struct kube_reflector *rf, CURLcode res, long code);

static void http_drain(struct kube_http *h)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(h->multi, &left))) {
		struct kube_reflector *rf = NULL;
		CURL *e = msg->easy_handle;
		CURLcode res = msg->data.result;
		long code = 0;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&rf);
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
		curl_multi_remove_handle(h->multi, e);
		rf->in_multi = false;
		rf_done(rf, res, code);
	}
}

static uint64_t now_ns(void)
{
	return clock_real_ns();
}

static void rf_mark_stale(struct kube_reflector *rf)
{
	if (!rf->st.stale_since_ns)
		rf->st.stale_since_ns = now_ns();
}

static void rf_mark_fresh(struct kube_reflector *rf)
{
	if (rf->st.stale_since_ns || rf->last_logged[0]) {
		if (rf->last_logged[0])
			rf_log(rf, LOG_LVL_INFO, "%s: watching again (resourceVersion %s)", rf->path,
			       rf->st.rv);
		rf->last_logged[0] = '\0';
	}
	rf->st.stale_since_ns = 0;
	rf->attempts = 0;
}

/* Jitter from the kernel: every node must not retry in step (random()
 * unseeded is the same sequence everywhere). */
static uint64_t rf_random(void)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != sizeof(v))
		v = now_ns() * 6364136223846793005ull;
	return v;
}

uint64_t kube_random(void)
{
	return rf_random();
}

static void on_retry(struct evloop_source *src, uint32_t events, void *data)
{
	struct kube_reflector *rf = data;

	rf_start(rf, rf->retry_phase);
}

/* Try @phase again after the backoff: min * 2^attempts, capped, with
 * jitter (half to all of it). */
static void rf_backoff(struct kube_reflector *rf, enum rf_phase phase)
{
	uint64_t d = rf->o.backoff_min_ms;

	for (unsigned i = 0; i < rf->attempts && d < rf->o.backoff_max_ms; i++)
		d *= 2;
	if (d > rf->o.backoff_max_ms)
		d = rf->o.backoff_max_ms;
	d = d / 2 + rf_random() % (d / 2 + 1);
	rf->attempts++;
	rf->phase = RF_IDLE;
	rf->retry_phase = phase;
	if (evloop_timer_arm(rf->retry, d, 0) < 0)
		rf_start(rf, phase);
}

static void key_of(json_t *obj, char *buf, size_t size)
{
	json_t *md = json_object_get(obj, "metadata");
	const char *ns = json_string_value(json_object_get(md, "namespace"));
	const char *name = json_string_value(json_object_get(md, "name"));

	if (ns && *ns)
		snprintf(buf, size, "%s/%s", ns, name ? name : "");
	else
		snprintf(buf, size, "%s", name ? name : "");
}

static void rf_set_rv(struct kube_reflector *rf, json_t *obj)
{
	const char *rv = json_string_value(
		json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));

	if (rv && *rv)
		snprintf(rf->st.rv, sizeof(rf->st.rv), "%s", rv);
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* A hash of the value itself, walked in place (no text): a member's
 * place in an object does not count, an item's in an array does. */
static uint64_t rf_hash(json_t *t)
{
	uint64_t h = HASH_FNV_OFFSET ^ (uint64_t)json_typeof(t), sum = 0;
	const char *k;
	json_int_t i;
	double d;
	json_t *v;
	size_t n;

	switch (json_typeof(t)) {
	case JSON_OBJECT:
		json_object_foreach(t, k, v)
			sum += mix64(hash_fnv(h, k, strlen(k) + 1) ^ (rf_hash(v) * 0x9e3779b97f4a7c15ull));
		return mix64(h ^ sum ^ json_object_size(t));
	case JSON_ARRAY:
		json_array_foreach(t, n, v)
			h = mix64(h ^ rf_hash(v)) + n;
		return h;
	case JSON_STRING:
		return mix64(hash_fnv(h, json_string_value(t), json_string_length(t)) ^
			     json_string_length(t));
	case JSON_INTEGER:
		i = json_integer_value(t);
		return mix64(hash_fnv(h, &i, sizeof(i)));
	case JSON_REAL:
		d = json_real_value(t);
		return mix64(hash_fnv(h, &d, sizeof(d)));
	default:
		return mix64(h);
	}
}

/* What the store keeps of a pod: a positive number that changes when the
 * trimmed object does. */
static json_int_t rf_digest(json_t *t)
{
	return (json_int_t)(rf_hash(t) >> 1) + 1;
}

/* Put @obj (the full object) into the store; tell the owner if it changed. */
static void rf_apply(struct kube_reflector *rf, json_t *obj)
{
	json_t *t = rf->ops->trim(obj), *old;
	char key[512];

	if (!t)
		return;
	key_of(obj, key, sizeof(key));
	old = json_object_get(rf->store, key);
	if (rf->o.store_digest) {
		json_int_t h = rf_digest(t);

		if (old && json_integer_value(old) == h) {
			json_decref(t);
			return;
		}
		if (old)
			json_integer_set(old, h);
		else
			json_object_set_new(rf->store, key, json_integer(h));
		rf->ops->upsert(rf->data, key, t);
		json_decref(t);
		return;
	}
	if (old && json_equal(old, t)) {
		json_decref(t);
		return;
	}
	json_object_set_new(rf->store, key, t);
	rf->ops->upsert(rf->data, key, t);
}

static void rf_delete(struct kube_reflector *rf, json_t *obj)
{
	json_t *old;
	char key[512];

	key_of(obj, key, sizeof(key));
	old = json_object_get(rf->store, key);
	if (!old)
		return;
	json_incref(old);
	json_object_del(rf->store, key);
	rf->ops->remove(rf->data, key, old);
	json_decref(old);
}

static int on_event(enum kube_event_type type, json_t *obj, void *data)
{
	struct kube_reflector *rf = data;
	json_t *code;

	rf->st.events++;
	rf->got_event = true;
	switch (type) {
	case KUBE_EV_ADDED:
	case KUBE_EV_MODIFIED:
		rf->event = obj;
		rf_apply(rf, obj);
		rf->event = NULL;
		break;
	case KUBE_EV_DELETED:
		rf->event = obj;
		rf_delete(rf, obj);
		rf->event = NULL;
		break;
	case KUBE_EV_BOOKMARK:
		break;
	case KUBE_EV_ERROR:
		code = json_object_get(obj, "code");
		if (json_integer_value(code) == 410) {
			rf->gone = true;
			return 1;   /* stop: relist */
		}
		rf_log(rf, LOG_LVL_WARN, "%s: watch ERROR event: %d %.200s", rf->path,
		       (int)json_integer_value(code),
		       json_string_value(json_object_get(obj, "message")) ?: "");
		rf->stream_error = true;
		return 1;
	}
	rf_set_rv(rf, obj);
	rf_mark_fresh(rf);
	return 0;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *data)
{
	struct kube_reflector *rf = data;
	size_t n = size * nmemb;
	long code = 0;
	struct mseg_err err;
	char msg[600];
	int r;

	curl_easy_getinfo(rf->easy, CURLINFO_RESPONSE_CODE, &code);
	if (rf->phase == RF_LIST || code != 200) {
		/* a list, or an error answer: keep the body (bounded) */
		if (rf->body_len + n > LIST_MAX_BYTES) {
			rf->body_too_big = true;
			return 0;
		}
		if (rf->body_len + n + 1 > rf->body_cap) {
			size_t cap = rf->body_cap ? rf->body_cap : 65536;
			char *b;

			while (cap < rf->body_len + n + 1)
				cap *= 2;
			b = realloc(rf->body, cap);
			if (!b)
				return 0;
			rf->body = b;
			rf->body_cap = cap;
		}
		memcpy(rf->body + rf->body_len, ptr, n);
		rf->body_len += n;
		rf->body[rf->body_len] = '\0';
		return n;
	}
	err_clear(&err);
	r = kube_watch_feed(&rf->parser, ptr, n, on_event, rf, &err);
	if (r < 0) {
		rf->stream_error = true;
		rf_log(rf, LOG_LVL_WARN, "%s: %s", rf->path, err_format(&err, msg, sizeof(msg)));
		return 0;
	}
	return r ? 0 : n;
}

static void rf_start(struct kube_reflector *rf, enum rf_phase phase)
{
	struct kube_config *cfg = rf->h->cfg;
	struct mseg_err err;
	const char *token = NULL;
	char url[2048], hdr[8192], msg[600];
	CURL *e;

	rf->phase = phase;
	rf->body_len = 0;
	rf->body_too_big = false;
	rf->gone = rf->stream_error = rf->got_event = false;
	kube_watch_parser_reset(&rf->parser);
	if (phase == RF_LIST && rf->o.page_size) {
		char *cont = rf->cont ? curl_easy_escape(NULL, rf->cont, 0) : NULL;

		if (rf->cont && !cont) {
			rf->st.errors++;
			rf_log(rf, LOG_LVL_ERROR, "%s: out of memory", rf->path);
			rf_backoff(rf, phase);
			return;
		}
		snprintf(url, sizeof(url), "%s%s?limit=%u%s%s%s%s", cfg->server, rf->path,
			 rf->o.page_size, cont ? "&continue=" : "", cont ? cont : "",
			 rf->query[0] ? "&" : "", rf->query);
		curl_free(cont);
	} else if (phase == RF_LIST)
		snprintf(url, sizeof(url), "%s%s%s%s", cfg->server, rf->path,
			 rf->query[0] ? "?" : "", rf->query);
	else
		snprintf(url, sizeof(url),
			 "%s%s?watch=1&resourceVersion=%s&allowWatchBookmarks=true&timeoutSeconds=%u"
			 "%s%s", cfg->server, rf->path, rf->st.rv, rf->o.watch_timeout_s,
			 rf->query[0] ? "&" : "", rf->query);
	err_clear(&err);
	if (kube_config_token(cfg, &token, &err) < 0)
		rf_log(rf, LOG_LVL_WARN, "%s (using the last token read)",
		       err_format(&err, msg, sizeof(msg)));
	curl_slist_free_all(rf->headers);
	rf->headers = curl_slist_append(NULL, "Accept: application/json");
	if (token) {
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", token);
		rf->headers = curl_slist_append(rf->headers, hdr);
		explicit_bzero(hdr, sizeof(hdr));
	}
	/* one handle for every page, watch and relist: a handle is tens of
	 * KiB that a fragmented heap pays for at each new one */
	if (rf->easy)
		curl_easy_reset(rf->easy);
	else
		rf->easy = curl_easy_init();
	e = rf->easy;
	if (!e || !rf->headers) {
		rf->st.errors++;
		rf_log(rf, LOG_LVL_ERROR, "%s: out of memory", rf->path);
		rf_backoff(rf, phase);
		return;
	}
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, rf);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, rf->headers);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, rf);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, rf->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT_S);
	/* idle: fewer than 1 byte/s for idle_timeout_s (bookmarks keep a
	 * healthy watch busier than that) */
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)rf->o.idle_timeout_s);
	if (phase == RF_LIST)
		curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)LIST_TIMEOUT_S);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (cfg->insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (cfg->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, cfg->ca_file);
	else if (cfg->ca_pem)
		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &rf->h->ca);
	if (cfg->cert_file)
		curl_easy_setopt(e, CURLOPT_SSLCERT, cfg->cert_file);
	else if (cfg->cert_pem)
		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &rf->h->cert);
	if (cfg->key_file)
		curl_easy_setopt(e, CURLOPT_SSLKEY, cfg->key_file);
	else if (cfg->key_pem)
		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &rf->h->key);
	rf->errbuf[0] = '\0';
	if (phase == RF_WATCH)
		rf->st.watches++;
	if (curl_multi_add_handle(rf->h->multi, e) != CURLM_OK) {
		rf->st.errors++;
		rf_backoff(rf, phase);
		return;
	}
	rf->in_multi = true;
}

static void rf_list_reset(struct kube_reflector *rf)
{
	free(rf->cont);
	rf->cont = NULL;
	json_decref(rf->seen);
	rf->seen = NULL;
}

/* A page of the list arrived (or the whole list): apply its objects; at
 * the last page, make the store equal to the list, reporting only the
 * differences. 1: more pages follow (rf->cont), the next one is asked for. */
static int rf_list_apply(struct kube_reflector *rf)
{
	json_error_t jerr;
	json_t *list, *items, *item, *seen, *v;
	const char *rv, *key, *cont;
	char k[512];
	bool more;
	size_t i;
	void *tmp;

	list = json_loadb(rf->body, rf->body_len, 0, &jerr);
	if (!list) {
		rf_log(rf, LOG_LVL_WARN, "%s: list: not JSON: %s (at byte %d)", rf->path, jerr.text,
		       jerr.position);
		return -EINVAL;
	}
	items = json_object_get(list, "items");
	rv = json_string_value(json_object_get(json_object_get(list, "metadata"),
					       "resourceVersion"));
	if (!json_is_array(items) || !rv || !*rv) {
		rf_log(rf, LOG_LVL_WARN, "%s: list: no \"items\" or no metadata.resourceVersion",
		       rf->path);
		json_decref(list);
		return -EINVAL;
	}
	if (!rf->cont)   /* the first page */
		rf->list_into_empty = json_object_size(rf->store) == 0;
	if (!rf->list_into_empty && !rf->seen && !(rf->seen = json_object())) {
		json_decref(list);
		return -ENOMEM;
	}
	seen = rf->seen;
	cont = json_string_value(json_object_get(json_object_get(list, "metadata"), "continue"));
	more = rf->o.page_size && cont && *cont;
	if (more) {
		char *c = strdup(cont);

		if (!c) {
			json_decref(list);
			return -ENOMEM;
		}
		free(rf->cont);
		rf->cont = c;
		rf->st.pages++;
		/* the next page is asked for first: the server makes it while
		 * this one is applied */
		rf_start(rf, RF_LIST);
	}
	json_array_foreach(items, i, item) {
		if (!json_is_object(item))
			continue;
		rf_apply(rf, item);
		if (!seen)
			continue;
		key_of(item, k, sizeof(k));
		json_object_set_new(seen, k, json_true());
	}
	if (more) {
		json_decref(list);
		return 1;
	}
	rf->st.pages++;
	/* gone while we were not watching */
	json_object_foreach_safe(seen ? rf->store : NULL, tmp, key, v) {
		if (!json_object_get(seen, key)) {
			json_incref(v);
			snprintf(k, sizeof(k), "%s", key);
			json_object_del(rf->store, k);
			rf->ops->remove(rf->data, k, v);
			json_decref(v);
		}
	}
	rf_list_reset(rf);
	snprintf(rf->st.rv, sizeof(rf->st.rv), "%s", rv);
	json_decref(list);
	return 0;
}

/* "401 Unauthorized: message" from an answer's Status body. */
static void rf_http_error(struct kube_reflector *rf, long code, const char *what)
{
	json_t *st = rf->body ? json_loadb(rf->body, rf->body_len, 0, NULL) : NULL;
	const char *m = json_string_value(json_object_get(st, "message"));

	if (code == 401)
		rf_log(rf, LOG_LVL_ERROR, "%s: %s: 401 Unauthorized: the API server refused the "
		       "token (from %s); check the token or service account", rf->path, what,
		       rf->h->cfg->source ? rf->h->cfg->source : "the config");
	else if (code == 403)
		rf_log(rf, LOG_LVL_ERROR, "%s: %s: 403 Forbidden: %.200s (the ClusterRole must "
		       "allow get, list and watch)", rf->path, what, m ? m : "");
	else
		rf_log(rf, LOG_LVL_WARN, "%s: %s: HTTP %ld%s%.200s", rf->path, what, code,
		       m ? ": " : "", m ? m : "");
	json_decref(st);
}

static void rf_done(struct kube_reflector *rf, CURLcode res, long code)
{
	enum rf_phase phase = rf->phase;

	rf->phase = RF_IDLE;
	if (phase == RF_LIST && rf->cont && code == 410) {
		/* the continue token expired (the server compacted past the
		 * list's snapshot): the list starts again, as client-go does */
		rf_log(rf, LOG_LVL_INFO, "%s: list: the continue token expired (410 Gone); "
		       "listing again from the first page", rf->path);
		rf->st.list_restarts++;
		rf_list_reset(rf);
		rf_start(rf, RF_LIST);
		return;
	}
	if (phase == RF_LIST) {
		int r = res == CURLE_OK && code == 200 ? rf_list_apply(rf) : -EIO;

		if (r == 1)
			return;   /* the next page is on its way */
		if (r == 0) {
			rf->st.lists++;
			if (rf->listed_once)
				rf->st.relists++;
			rf->listed_once = true;
			rf->st.synced = true;
			rf_mark_fresh(rf);
			if (rf->ops->listed)
				rf->ops->listed(rf->data);
			rf_start(rf, RF_WATCH);
			return;
		}
		rf->st.errors++;
		rf_mark_stale(rf);
		rf_list_reset(rf);   /* a failed list starts again from the first page */
		if (res != CURLE_OK)
			rf_log(rf, LOG_LVL_WARN, "%s: list: %s", rf->path,
			       rf->errbuf[0] ? rf->errbuf : curl_easy_strerror(res));
		else if (code != 200)
			rf_http_error(rf, code, "list");
		rf_backoff(rf, RF_LIST);
		return;
	}
	/* a watch ended */
	if (rf->gone || code == 410) {
		rf_log(rf, LOG_LVL_INFO, "%s: resourceVersion %s is too old (410 Gone): listing "
		       "again", rf->path, rf->st.rv);
		rf_start(rf, RF_LIST);
		return;
	}
	if (res == CURLE_OK && code == 200 && !rf->stream_error) {
		/* the server ended it (timeoutSeconds): resume at once */
		if (kube_watch_pending(&rf->parser)) {
			rf->st.restarts++;
			rf_log(rf, LOG_LVL_WARN, "%s: the watch ended in the middle of an event; "
			       "resuming from %s", rf->path, rf->st.rv);
		}
		rf_start(rf, RF_WATCH);
		return;
	}
	rf->st.restarts++;
	rf->st.errors++;
	rf_mark_stale(rf);
	if (code && code != 200)
		rf_http_error(rf, code, "watch");
	else if (res == CURLE_OPERATION_TIMEDOUT)
		rf_log(rf, LOG_LVL_WARN, "%s: watch: no byte for %u s; reconnecting from %s",
		       rf->path, rf->o.idle_timeout_s, rf->st.rv);
	else if (res != CURLE_OK && !rf->stream_error)
		rf_log(rf, LOG_LVL_WARN, "%s: watch: %s; resuming from %s", rf->path,
		       rf->errbuf[0] ? rf->errbuf : curl_easy_strerror(res), rf->st.rv);
	/* a connection that worked for a while comes back at once */
	if (rf->got_event && !rf->stream_error) {
		rf_start(rf, RF_WATCH);
		return;
	}
	rf_backoff(rf, code == 401 || code == 403 ? RF_LIST : RF_WATCH);
}

struct kube_reflector *kube_reflector_new(struct kube_http *h, const char *path,
					  const struct kube_reflector_opts *o,
					  const struct kube_reflector_ops *ops, void *data)
{
	struct kube_reflector *rf = calloc(1, sizeof(*rf));
	const char *slash = strrchr(path, '/');

	if (!rf)
		return NULL;
	rf->h = h;
	rf->o = *o;
	rf->ops = ops;
	rf->data = data;
	rf->path = strdup(path);
	rf->query = strdup(o->query ? o->query : "");
	rf->o.query = NULL;
	rf->store = json_object();
	rf->st.resource = slash ? slash + 1 : path;
	kube_watch_parser_init(&rf->parser, 0);
	rf->retry = evloop_add_timer(h->loop, 0, 0, on_retry, rf, NULL);
	if (!rf->path || !rf->query || !rf->store || !rf->retry)
		return kube_reflector_free(rf);
	rf->st.resource = strrchr(rf->path, '/') + 1;
	rf_mark_stale(rf);   /* nothing listed yet */
	rf_start(rf, RF_LIST);
	return rf;
}

struct kube_reflector *kube_reflector_free(struct kube_reflector *rf)
{
	if (!rf)
		return NULL;
	if (rf->in_multi)
		curl_multi_remove_handle(rf->h->multi, rf->easy);
	if (rf->easy)
		curl_easy_cleanup(rf->easy);
	curl_slist_free_all(rf->headers);
	evloop_source_remove(rf->retry);
	kube_watch_parser_release(&rf->parser);
	rf_list_reset(rf);
	json_decref(rf->store);
	free(rf->body);
	free(rf->path);
	free(rf->query);
	free(rf);
	return NULL;
}

const char *kube_reflector_event_rv(const struct kube_reflector *rf)
{
	const char *rv = json_string_value(
		json_object_get(json_object_get(rf->event, "metadata"), "resourceVersion"));

	return rv && *rv ? rv : NULL;
}

json_t *kube_reflector_store(const struct kube_reflector *rf)
{
	return rf->store;
}

void kube_reflector_status(const struct kube_reflector *rf, struct kube_resource_status *ret)
{
	*ret = rf->st;
	ret->objects = json_object_size(rf->store);
}
