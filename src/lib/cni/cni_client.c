/* mseg-cni's calls to msegd's REST API (libcurl) and the ADD, DEL and
 * CHECK commands built on them. The pure parts are in cni.c, so that unit
 * tests link without libcurl. */
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "mseg/util/clock.h"
#include "mseg/client/client.h"
#include "mseg/cni/cni.h"

#define CNI_POLL_MS 100
#define CNI_MAX_RESPONSE (4u << 20)


struct cni_client {
	const struct cni_config *conf;
	char token[512];
	uint64_t deadline_ns;    /* CLOCK_MONOTONIC */
};

static long cni_ms_left(const struct cni_client *cl)
{
	return (long)((int64_t)(cl->deadline_ns - clock_mono_ns()) / 1000000);
}

static int cni_client_init(struct cni_client *cl, const struct cni_config *c,
			   const struct cni_opts *opts, struct cni_error *err)
{
	const char *dirs[4];
	size_t n = 0;

	memset(cl, 0, sizeof(*cl));
	cl->conf = c;
	cl->deadline_ns = clock_mono_ns() + (uint64_t)c->timeout_sec * 1000000000ull;
	if (!c->token_file)
		return 0;
	dirs[n++] = CNI_TOKEN_DIR;
#ifdef MSEG_CNI_TOKEN_DIR
	dirs[n++] = MSEG_CNI_TOKEN_DIR;
#endif
	if (opts && opts->token_dir)
		dirs[n++] = opts->token_dir;
	dirs[n] = NULL;
	return cni_token_read(c->token_file, dirs, 0, cl->token, sizeof(cl->token), err);
}

/* One request. Returns 0 with the status and body (malloc'd, may be NULL),
 * -ECONNREFUSED when msegd cannot be reached (no socket, nobody listening),
 * -ETIMEDOUT, or -EIO. */
static int cni_http(const struct cni_client *cl, const char *method, const char *path,
		    const char *body, long *ret_status, struct client_buf *ret_body)
{
	const char *server = cl->conf->server;
	struct curl_slist *hdrs = NULL;
	char auth[600];
	long left = cni_ms_left(cl);
	CURL *h;
	CURLcode cr;
	int r = 0;

	memset(ret_body, 0, sizeof(*ret_body));
	ret_body->max = CNI_MAX_RESPONSE;
	*ret_status = 0;
	if (left <= 0)
		return -ETIMEDOUT;
	h = curl_easy_init();
	if (!h)
		return -ENOMEM;
	client_set_url(h, server, path);
	if (cl->token[0]) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", cl->token);
		hdrs = curl_slist_append(hdrs, auth);
	}
	if (body) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		hdrs = curl_slist_append(hdrs, "Expect:");   /* no 100-continue round trip */
	}
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	/* straight to msegd: never through a proxy from the runtime's
	 * environment (http_proxy), which would see the token */
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, left);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, left < 2000 ? left : 2000L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, client_buf_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, ret_body);
	if (body)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	cr = curl_easy_perform(h);
	switch (cr) {
	case CURLE_OK:
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, ret_status);
		break;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
		r = -ECONNREFUSED;
		break;
	case CURLE_OPERATION_TIMEDOUT:
		r = -ETIMEDOUT;
		break;
	default:
		r = -EIO;
		break;
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	if (r < 0) {
		free(ret_body->data);
		memset(ret_body, 0, sizeof(*ret_body));
	}
	return r;
}

/* msegd's {"error": "..."} (or the raw body) for a message. */
static void cni_server_error(const struct client_buf *b, char *buf, size_t size)
{
	json_t *root = b->data ? json_loadb(b->data, b->len, 0, NULL) : NULL;
	const char *e = json_string_value(json_object_get(root, "error"));

	if (e)
		snprintf(buf, size, "%s", e);
	else
		snprintf(buf, size, "%.300s", b->data ? b->data : "");
	json_decref(root);
}

static int cni_unreachable(const struct cni_client *cl, int r, const char *what,
			   struct cni_outcome *out)
{
	if (r == -ETIMEDOUT)
		return cni_error_set(&out->err, ETIMEDOUT, CNI_ERR_TRY_AGAIN_LATER, NULL,
				     "msegd at %s did not answer %s within %u s",
				     cl->conf->server, what, cl->conf->timeout_sec);
	return cni_error_set(&out->err, -r, CNI_ERR_TRY_AGAIN_LATER,
			     "set \"onUnreachable\": \"allow\" to let containers start "
			     "without msegd (fail-open)",
			     "cannot reach msegd at %s (%s)", cl->conf->server, strerror(-r));
}

int cni_tombstone_write(const char *dir, const char *id)
{
	char path[PATH_MAX];
	int fd;

	/* ids are [A-Za-z0-9_.-] and never "." or ".." (cni_env_parse) */
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (snprintf(path, sizeof(path), "%s/%s", dir, id) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	close(fd);
	return 0;
}

static void cni_path_for(char *buf, size_t size, const char *prefix, const char *id)
{
	/* ids are [A-Za-z0-9_.-] (cni_env_parse checked): nothing to escape */
	snprintf(buf, size, "%s%s", prefix, id);
}

/* Poll GET /v1/rules/{id} until the endpoint is programmed or time runs out. */
static int cni_wait_programmed(const struct cni_client *cl, const char *id,
			       struct cni_outcome *out)
{
	char path[256], why[400] = "";
	long status;
	int r;

	cni_path_for(path, sizeof(path), "/v1/rules/", id);
	for (;;) {
		struct client_buf b;

		r = cni_http(cl, "GET", path, NULL, &status, &b);
		if (r == -ETIMEDOUT)
			break;
		if (r < 0)
			return cni_unreachable(cl, r, "GET /v1/rules", out);
		if (status == 200 && b.data && cni_rules_is_programmed(b.data, b.len)) {
			free(b.data);
			return 0;
		}
		if (status != 200 && status != 404 && status != 503) {
			cni_server_error(&b, why, sizeof(why));
			free(b.data);
			return cni_error_set(&out->err, EIO, CNI_ERR_MSEG, why,
					     "msegd: GET %s answered %ld", path, status);
		}
		if (b.data) {
			json_t *root = json_loadb(b.data, b.len, 0, NULL);
			const char *e = json_string_value(json_object_get(root, "error"));

			if (e)
				snprintf(why, sizeof(why), "%s", e);
			json_decref(root);
		}
		free(b.data);
		if (cni_ms_left(cl) <= CNI_POLL_MS)
			break;
		usleep(CNI_POLL_MS * 1000);
	}
	return cni_error_set(&out->err, ETIMEDOUT, CNI_ERR_TRY_AGAIN_LATER, why,
			     "endpoint '%s' is registered but msegd has not programmed its "
			     "table within %u s", id, cl->conf->timeout_sec);
}

static int cni_run_add(const struct cni_config *c, const struct cni_opts *opts,
		       const struct cni_env *env, struct cni_outcome *out)
{
	struct cni_client cl;
	struct client_buf b;
	json_t *ips = NULL, *body = NULL, *res = NULL;
	char *body_str = NULL, path[256], why[400];
	long status;
	int r;

	r = cni_client_init(&cl, c, opts, &out->err);
	if (r < 0)
		return r;
	r = cni_result_ips(c->prev_result, &ips, &out->err);
	if (r < 0)
		return r;
	if (c->labels_ignored)
		snprintf(out->warning, sizeof(out->warning),
			 "labels in the network config are ignored: set \"labelsFromConfig\": "
			 "true to send them to msegd");
	body = cni_endpoint_body(c, env, ips);
	body_str = body ? json_dumps(body, JSON_COMPACT) : NULL;
	res = cni_result_convert(c->prev_result, c->cni_version);
	if (!body_str || !res) {
		r = cni_error_set(&out->err, ENOMEM, CNI_ERR_MSEG, NULL, "out of memory");
		goto out_free;
	}
	cni_path_for(path, sizeof(path), "/v1/endpoints/", env->containerid);
	r = cni_http(&cl, "PUT", path, body_str, &status, &b);
	if (r < 0) {
		if (c->allow_unreachable && r != -ENOMEM) {
			snprintf(out->warning, sizeof(out->warning),
				 "cannot reach msegd at %s (%s); onUnreachable=allow: container "
				 "'%s' starts unregistered", c->server, strerror(-r),
				 env->containerid);
			r = 0;
			goto out_print;
		}
		r = cni_unreachable(&cl, r, "PUT /v1/endpoints", out);
		goto out_free;
	}
	if (status < 200 || status > 299) {
		cni_server_error(&b, why, sizeof(why));
		free(b.data);
		r = cni_error_set(&out->err, EIO,
				  status == 503 ? CNI_ERR_TRY_AGAIN_LATER : CNI_ERR_MSEG, why,
				  "msegd refused endpoint '%s': HTTP %ld: %s", env->containerid,
				  status, why);
		goto out_free;
	}
	free(b.data);
	r = cni_wait_programmed(&cl, env->containerid, out);
	if (r < 0)
		goto out_free;
out_print:
	out->stdout_json = json_dumps(res, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!out->stdout_json)
		r = cni_error_set(&out->err, ENOMEM, CNI_ERR_MSEG, NULL, "out of memory");
out_free:
	free(body_str);
	json_decref(body);
	json_decref(ips);
	json_decref(res);
	return r;
}

static int cni_run_del(const struct cni_config *c, const struct cni_opts *opts,
		       const struct cni_env *env, struct cni_outcome *out)
{
	struct cni_client cl;
	struct client_buf b;
	char path[256], why[400];
	long status;
	int r;

	r = cni_client_init(&cl, c, opts, &out->err);
	if (r < 0)
		return r;
	cni_path_for(path, sizeof(path), "/v1/endpoints/", env->containerid);
	r = cni_http(&cl, "DELETE", path, NULL, &status, &b);
	if (r == -ECONNREFUSED) {
		/* msegd is down: leave a tombstone it applies when it starts,
		 * so the endpoint's addresses do not outlive the container */
		int t = cni_tombstone_write(opts && opts->tombstone_dir ? opts->tombstone_dir :
					    CNI_TOMBSTONE_DIR, env->containerid);

		snprintf(out->warning, sizeof(out->warning),
			 "cannot reach msegd at %s; endpoint '%s' %s", c->server, env->containerid,
			 t == 0 ? "left as a tombstone msegd removes at start" :
				  "not removed from it (no tombstone either)");
		return 0;
	}
	if (r < 0)
		return cni_unreachable(&cl, r, "DELETE /v1/endpoints", out);
	if ((status >= 200 && status <= 299) || status == 404) {
		free(b.data);
		return 0;
	}
	cni_server_error(&b, why, sizeof(why));
	free(b.data);
	return cni_error_set(&out->err, EIO, CNI_ERR_MSEG, why,
			     "msegd: DELETE %s answered %ld: %s", path, status, why);
}

static int cni_run_check(const struct cni_config *c, const struct cni_opts *opts,
			 const struct cni_env *env, struct cni_outcome *out)
{
	struct cni_client cl;
	struct client_buf b;
	char path[256], why[400];
	long status;
	bool ok;
	int r;

	r = cni_client_init(&cl, c, opts, &out->err);
	if (r < 0)
		return r;
	cni_path_for(path, sizeof(path), "/v1/rules/", env->containerid);
	r = cni_http(&cl, "GET", path, NULL, &status, &b);
	if (r < 0) {
		if (c->allow_unreachable && r != -ENOMEM) {
			snprintf(out->warning, sizeof(out->warning),
				 "cannot reach msegd at %s (%s); onUnreachable=allow",
				 c->server, strerror(-r));
			return 0;
		}
		return cni_unreachable(&cl, r, "GET /v1/rules", out);
	}
	if (status == 404) {
		free(b.data);
		return cni_error_set(&out->err, ENOENT, CNI_ERR_MSEG, NULL,
				     "endpoint '%s' is not registered with msegd",
				     env->containerid);
	}
	if (status != 200) {
		cni_server_error(&b, why, sizeof(why));
		free(b.data);
		return cni_error_set(&out->err, EIO, CNI_ERR_MSEG, why,
				     "msegd: GET %s answered %ld", path, status);
	}
	ok = b.data && cni_rules_is_programmed(b.data, b.len);
	if (!ok)
		cni_server_error(&b, why, sizeof(why));
	free(b.data);
	if (!ok)
		return cni_error_set(&out->err, EIO, CNI_ERR_MSEG, why,
				     "endpoint '%s': the kernel does not hold its desired table",
				     env->containerid);
	return 0;
}

int cni_run(char *const *envp, const char *in, size_t len, const struct cni_opts *opts,
	    struct cni_outcome *out)
{
	struct cni_config conf;
	struct cni_env *env;
	int r;

	memset(out, 0, sizeof(*out));
	env = calloc(1, sizeof(*env));
	if (!env)
		return cni_error_set(&out->err, ENOMEM, CNI_ERR_MSEG, NULL, "out of memory");
	r = cni_env_parse(env, envp, &out->err);
	if (r < 0)
		goto out_free_env;
	if (env->cmd == CNI_CMD_VERSION) {
		out->stdout_json = cni_version_json();
		if (!out->stdout_json)
			r = cni_error_set(&out->err, ENOMEM, CNI_ERR_MSEG, NULL, "out of memory");
		goto out_free_env;
	}
	r = cni_config_parse(&conf, in, len, env->cmd, &out->err);
	if (r < 0) {
		out->cni_version = cni_config_sniff_version(in, len);
		goto out_free_env;
	}
	out->cni_version = strdup(conf.cni_version);
	switch (env->cmd) {
	case CNI_CMD_ADD:
		r = cni_run_add(&conf, opts, env, out);
		break;
	case CNI_CMD_DEL:
		r = cni_run_del(&conf, opts, env, out);
		break;
	case CNI_CMD_CHECK:
		r = cni_run_check(&conf, opts, env, out);
		break;
	case CNI_CMD_VERSION:
		break;
	}
	cni_config_release(&conf);
out_free_env:
	free(env);
	return r;
}

void cni_outcome_release(struct cni_outcome *out)
{
	free(out->stdout_json);
	free(out->cni_version);
	memset(out, 0, sizeof(*out));
}
