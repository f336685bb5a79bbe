/* Talking to msegd: which server and token, one request, and what the
 * user sees when it fails. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "mseg/client/query.h"
#include "mseg.h"

enum { OPT_SERVER = 0x1000, OPT_TOKEN_FILE, OPT_CACERT };

const struct cli_option server_options[] = {
	{ "server", OPT_SERVER, required_argument, "unix:PATH|https://HOST:PORT",
	  "msegd's API (default $MSEG_SERVER or\nunix:/run/mseg/api.sock)" },
	{ "token-file", OPT_TOKEN_FILE, required_argument, "FILE",
	  "bearer token for a TCP server (default $MSEG_TOKEN)" },
	{ "cacert", OPT_CACERT, required_argument, "FILE", "CA certificate to verify an https server" },
	CLI_OPTION_END,
};

const char *g_server;
const char *g_token_file;
const char *g_cacert;

/* Remove the server options ("--server VAL" or "--server=VAL", ...) from
 * anywhere in argv before a "--". Returns the new argc, or -1. */
int global_options_take(int argc, char **argv)
{
	int w = 1;

	for (int i = 1; i < argc; i++) {
		bool taken = false;

		if (strcmp(argv[i], "--") == 0) {
			while (i < argc)
				argv[w++] = argv[i++];
			break;
		}
		for (const struct cli_option *o = server_options; o->name && !taken; o++) {
			const char **dst = o->key == OPT_SERVER ? &g_server :
					   o->key == OPT_TOKEN_FILE ? &g_token_file : &g_cacert;
			size_t n = strlen(o->name);

			if (strncmp(argv[i], "--", 2) != 0 || strncmp(argv[i] + 2, o->name, n) != 0)
				continue;
			if (argv[i][2 + n] == '\0') {
				if (i + 1 >= argc) {
					fprintf(stderr, "mseg: --%s needs a value\n", o->name);
					return -1;
				}
				*dst = argv[++i];
				taken = true;
			} else if (argv[i][2 + n] == '=') {
				*dst = argv[i] + 2 + n + 1;
				taken = true;
			}
		}
		if (!taken)
			argv[w++] = argv[i];
	}
	argv[w] = NULL;
	return w;
}

const char *server_name(void)
{
	const char *s = g_server ? g_server : getenv("MSEG_SERVER");

	return s && *s ? s : "unix:/run/mseg/api.sock";
}

/* The token: --token-file, else $MSEG_TOKEN; NULL when neither (or when
 * the file cannot be read, after saying so). */
static char *token_get(void)
{
	char *line = NULL, *s, *e, *tok;
	size_t size = 0;
	FILE *f;
	const char *env = getenv("MSEG_TOKEN");

	if (!g_token_file)
		return env && *env ? strdup(env) : NULL;
	f = fopen(g_token_file, "re");
	if (!f) {
		fprintf(stderr, "mseg: cannot read the token file '%s': %s\n", g_token_file,
			strerror(errno));
		return NULL;
	}
	/* the first line, however long */
	if (getline(&line, &size, f) < 0) {
		free(line);
		line = strdup("");
	}
	fclose(f);
	if (!line)
		return NULL;
	for (s = line; isspace((unsigned char)*s); s++)
		;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	tok = strdup(s);
	explicit_bzero(line, size);
	free(line);
	return tok;
}

char *api_path_new(const char *base, const char *seg1, const char *seg2, const char *suffix)
{
	char *e1 = seg1 ? curl_easy_escape(NULL, seg1, 0) : NULL;
	char *e2 = seg2 ? curl_easy_escape(NULL, seg2, 0) : NULL;
	char *path = NULL;

	if ((seg1 && !e1) || (seg2 && !e2))
		goto out_free;
	if (asprintf(&path, "%s%s%s%s%s%s", base, e1 ? "/" : "", e1 ? e1 : "", e2 ? "/" : "",
		     e2 ? e2 : "", suffix ? suffix : "") < 0)
		path = NULL;
out_free:
	curl_free(e1);
	curl_free(e2);
	return path;
}

bool server_is_valid(const char *server)
{
	return strncmp(server, "unix:", 5) == 0 || strncmp(server, "https://", 8) == 0 ||
	       strncmp(server, "http://", 7) == 0;
}

int server_check(void)
{
	const char *server = server_name();

	if (server_is_valid(server))
		return 0;
	fprintf(stderr, "mseg: %s '%s': expected unix:/PATH, https://HOST:PORT or http://HOST:PORT\n",
		g_server ? "--server" : "$MSEG_SERVER", server);
	return EXIT_USAGE;
}

/* One request; *@ret_cut (may be NULL) tells that an answer began but did
 * not end (msegd closed the connection in the middle of it). */
static long api_perform(const char *method, const char *path, const char *ctype, const char *body,
			size_t body_len, struct client_buf *resp, write_fn wfn, void *wdata,
			bool *ret_cut)
{
	const char *server = server_name();
	CURL *c = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	char *token = NULL;
	long code = -1;
	CURLcode rc;

	if (!c) {
		fprintf(stderr, "mseg: cannot initialize libcurl\n");
		return -1;
	}
	if (ret_cut)
		*ret_cut = false;
	if (!server_is_valid(server)) {
		fprintf(stderr, "mseg: --server '%s': expected unix:/PATH, https://HOST:PORT or http://HOST:PORT\n",
			server);
		curl_easy_cleanup(c);
		return -1;
	}
	if (client_set_url(c, server, path) < 0) {
		fprintf(stderr, "mseg: out of memory\n");
		curl_easy_cleanup(c);
		return -1;
	}
	if (strncmp(server, "unix:", 5) != 0) {
		token = token_get();
		if (token) {
			char *h;

			if (asprintf(&h, "Authorization: Bearer %s", token) >= 0) {
				hdrs = curl_slist_append(hdrs, h);
				explicit_bzero(h, strlen(h));
				free(h);
			}
			explicit_bzero(token, strlen(token));
			free(token);
		}
		if (g_cacert)
			curl_easy_setopt(c, CURLOPT_CAINFO, g_cacert);
	}
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		if (ctype) {
			char *h;

			if (asprintf(&h, "Content-Type: %s", ctype) >= 0) {
				hdrs = curl_slist_append(hdrs, h);
				free(h);
			}
		}
		hdrs = curl_slist_append(hdrs, "Expect:");
	}
	if (hdrs)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, wfn ? wfn : client_buf_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, wfn ? wdata : (void *)resp);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK || rc == CURLE_WRITE_ERROR || ret_cut) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		if (code < 100)
			code = -1;
		if (code > 0 && rc != CURLE_OK && rc != CURLE_WRITE_ERROR && ret_cut)
			*ret_cut = true;
	}
	if (code < 0 && rc != CURLE_OK) {
		long os_errno = 0;

		curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
		if (rc == CURLE_COULDNT_CONNECT && os_errno)
			fprintf(stderr, "mseg: cannot reach msegd at %s: %s\n", server,
				strerror((int)os_errno));
		else
			fprintf(stderr, "mseg: cannot reach msegd at %s: %s\n", server,
				errbuf[0] ? errbuf : curl_easy_strerror(rc));
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return code;
}

long api_call(const char *method, const char *path, const char *ctype, const char *body,
	      size_t body_len, struct client_buf *resp, write_fn wfn, void *wdata)
{
	return api_perform(method, path, ctype, body, body_len, resp, wfn, wdata, NULL);
}

long api_stream(const char *path, write_fn wfn, void *wdata, bool *ret_cut)
{
	return api_perform("GET", path, NULL, NULL, 0, NULL, wfn, wdata, ret_cut);
}

int api_error_print(const char *prefix, long code, const struct client_buf *resp)
{
	json_t *j = resp->data ? json_loads(resp->data, 0, NULL) : NULL;
	const char *msg = j ? json_string_value(json_object_get(j, "error")) : NULL;
	json_int_t line = j ? json_integer_value(json_object_get(j, "line")) : 0;
	json_int_t col = j ? json_integer_value(json_object_get(j, "column")) : 0;

	if (code == 401)
		fprintf(stderr, "mseg: msegd at %s wants a token (401): set MSEG_TOKEN or --token-file\n",
			server_name());
	else if (code == 403)
		fprintf(stderr, "mseg: msegd at %s refused the token (403 wrong token)\n", server_name());
	else if (line)
		fprintf(stderr, "%s:%lld:%lld: %s\n", prefix, (long long)line, (long long)col,
			msg ? msg : "error");
	else
		fprintf(stderr, "mseg: %s: %s (HTTP %ld)\n", prefix, msg ? msg : (resp->data ? resp->data : ""),
			code);
	json_decref(j);
	return 1;
}

int api_get_json(const char *path, json_t **ret)
{
	struct client_buf resp = { 0 };
	long code = api_call("GET", path, NULL, NULL, 0, &resp, NULL, NULL);
	json_error_t je;
	int status = 1;

	if (code < 0)
		goto out_free;
	if (code >= 300) {
		status = api_error_print(path, code, &resp);
		goto out_free;
	}
	*ret = json_loads(resp.data ? resp.data : "", 0, &je);
	if (!*ret) {
		fprintf(stderr, "mseg: %s: bad answer from msegd: %s\n", path, je.text);
		goto out_free;
	}
	status = 0;
out_free:
	free(resp.data);
	return status;
}

void warnings_print(const json_t *j, const char *skip)
{
	size_t i;
	json_t *w;

	json_array_foreach(json_object_get(j, "warnings"), i, w) {
		const char *msg = json_string_value(w);

		if (msg && (!skip || strcmp(msg, skip) != 0))
			fprintf(stderr, "warning: %s\n", msg);
	}
}

/* Why endpoint @id is not programmed after a mutation: its error, else a
 * warning about its netns; NULL when nothing says it failed. */
static const char *endpoint_failure(const json_t *j, const char *id)
{
	size_t i;
	json_t *e;

	json_array_foreach(json_object_get(j, "errors"), i, e)
		if (strcmp(jstr(e, "endpoint"), id) == 0)
			return jstr(e, "error");
	if (json_is_true(json_object_get(j, "programmed")))
		return NULL;
	json_array_foreach(json_object_get(j, "warnings"), i, e)
		if (json_string_value(e) && strstr(json_string_value(e), "netns '"))
			return json_string_value(e);
	return NULL;
}

int mutation_print(const char *what, const char *ep_id, long code, struct client_buf *resp,
		   bool dry_run, enum out_fmt fmt)
{
	const char *failed = NULL;
	json_error_t je;
	int status = 0;
	json_t *j;

	if (code < 0)
		return 1;
	if (code >= 300)
		return api_error_print(what, code, resp);
	j = json_loads(resp->data ? resp->data : "", 0, &je);
	if (!j) {
		fprintf(stderr, "mseg: %s: bad answer from msegd: %s\n", what, je.text);
		return 1;
	}
	if (!dry_run && ep_id)
		failed = endpoint_failure(j, ep_id);
	if (fmt == OUT_JSON) {
		print_json(j);
	} else if (failed && strcmp(jstr(j, "result"), "unchanged") == 0) {
		fprintf(stderr, "%s unchanged, but NOT programmed: %s\n", what, failed);
	} else if (failed) {
		fprintf(stderr, "%s stored (generation %lld), but NOT programmed: %s\n", what,
			jint(j, "generation"), failed);
	} else if (strcmp(jstr(j, "result"), "unchanged") == 0) {
		printf("%s unchanged\n", what);
	} else if (dry_run) {
		printf("%s %s\n", what, jstr(j, "result"));
		print_dry_run(j);
	} else {
		size_t i;
		json_t *e;

		printf("%s %s (generation %lld)\n", what, jstr(j, "result"), jint(j, "generation"));
		/* other endpoints that msegd could not program */
		json_array_foreach(json_object_get(j, "errors"), i, e)
			fprintf(stderr, "warning: endpoint %s is not programmed: %s\n",
				jstr(e, "endpoint"), jstr(e, "error"));
	}
	warnings_print(j, failed);
	if (failed)
		status = 1;
	json_decref(j);
	return status;
}

const char *cli_since_parse(const char *s, char *buf, size_t size)
{
	static const struct { char unit; unsigned long long mul; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
	};
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (!errno && end != s && end[0] && !end[1]) {
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			if (units[i].unit == end[0]) {
				snprintf(buf, size, "%llu",
					 (unsigned long long)time(NULL) - v * units[i].mul);
				return buf;
			}
		}
		return NULL;
	}
	if (strlen(s) >= 10 && s[4] == '-' && s[7] == '-')
		return s;
	return NULL;
}

int cli_query_add(const char *cmd, size_t max, struct client_query *q, const char *key,
		  const char *value)
{
	int r = client_query_add(q, key, value);

	if (r == -E2BIG)
		return usage_error(cmd, "--%s: the query would be longer than %zu bytes", key, max);
	if (r < 0) {
		fprintf(stderr, "mseg %s: %s\n", cmd, strerror(-r));
		return 1;
	}
	return 0;
}
