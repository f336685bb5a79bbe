/* mseg: the command line tool. Every command is a line in `commands[]`
 * (exact-match name, synopsis, one-line help, option text, handler);
 * `mseg help` prints from that table. A handler gets argv with argv[0] = the
 * command name and returns the exit status: 0 ok, 1 failure, 2 usage. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <sys/stat.h>

#include <curl/curl.h>
#include <jansson.h>

#include "mseg/client/client.h"
#include "mseg/util/err.h"
#include "mseg/model/inventory.h"
#include "mseg/model/plan.h"
#include "mseg/model/policy.h"
#include "mseg/compile/render_text.h"

#define EXIT_USAGE 2

struct command {
	const char *name;       /* exact match, no prefixes */
	const char *synopsis;   /* arguments, one line */
	const char *help;       /* what it does, one line */
	const char *options;    /* option lines for `mseg help NAME`; may be NULL */
	int (*run)(int argc, char **argv);
};

static int cmd_help(int argc, char **argv);
static int cmd_compile(int argc, char **argv);
static int cmd_status(int argc, char **argv);
static int cmd_apply(int argc, char **argv);
static int cmd_delete(int argc, char **argv);
static int cmd_get(int argc, char **argv);
static int cmd_endpoint(int argc, char **argv);
static int cmd_flows(int argc, char **argv);
static int cmd_check(int argc, char **argv);

#define SERVER_OPTIONS \
	"  --server unix:PATH|https://HOST:PORT  msegd's API (default $MSEG_SERVER or\n" \
	"                          unix:/run/mseg/api.sock)\n" \
	"  --token-file FILE       bearer token for a TCP server (default $MSEG_TOKEN)\n" \
	"  --cacert FILE           CA certificate to verify an https server\n"

static const struct command commands[] = {
	{ "help", "[COMMAND]", "show the commands, or the options of one", NULL, cmd_help },
	{ "compile", "-f FILE|DIR --endpoints FILE [OPTIONS]",
	  "print the nft ruleset of each endpoint (offline: no daemon, no root)",
	  "  -f, --file FILE|DIR     policy file, or directory of *.yaml, *.yml, *.json\n"
	  "  --endpoints FILE        endpoint inventory\n"
	  "  --endpoint ID           only this endpoint\n"
	  "  --queue native|xt|nflog how unmatched packets reach msegd (default native;\n"
	  "                          xt prints as native; nflog loads on kernels without\n"
	  "                          the queue expression)\n"
	  "  --queue-num N           queue or NFLOG group number (default 0)\n"
	  "  --rate N                unmatched packets per second sent to msegd (default 100)\n"
	  "  --burst N               burst of that limit (default 200)\n"
	  "  --default-deny          isolate every direction no policy isolates\n"
	  "  --mode enforce|audit    audit: every isolated direction audits (default enforce)\n",
	  cmd_compile },
	{ "status", "", "show msegd's version, uptime, generation, counts, kernel features and mode",
	  "  -o table|json           output format (default table)\n" SERVER_OPTIONS, cmd_status },
	{ "apply", "-f FILE|DIR [--dry-run]",
	  "create or replace the policies of a file or directory through msegd",
	  "  -f, --file FILE|DIR     policy file, or directory of *.yaml, *.yml, *.json\n"
	  "  --dry-run               show what would change per endpoint; apply nothing\n"
	  "  -o table|json           output format (default table)\n" SERVER_OPTIONS, cmd_apply },
	{ "delete", "policy NS/NAME [--dry-run]", "remove a policy stored through the API",
	  "  --dry-run               show what would change; delete nothing\n" SERVER_OPTIONS,
	  cmd_delete },
	{ "get", "policies|endpoints|rules [ID] [-o table|json|yaml]",
	  "list policies, endpoints, or the kernel's rules read back per endpoint",
	  "  -o table|json|yaml      output format (default table)\n"
	  "  ID                      policies: NS/NAME; endpoints and rules: endpoint id\n"
	  SERVER_OPTIONS, cmd_get },
	{ "endpoint", "add ID --netns PATH --ip ADDR... [--name N] [--namespace NS] [--label K=V]... | del ID",
	  "add (or replace) or remove an endpoint of the API's inventory",
	  "  --netns PATH            the endpoint's network namespace (/run/netns/X, /proc/PID/ns/net)\n"
	  "  --ip ADDR               an address (repeat for more; IPv4 or IPv6)\n"
	  "  --name N                name (default: the id)\n"
	  "  --namespace NS          namespace (default \"default\")\n"
	  "  --label K=V             a label (repeat for more)\n"
	  "  --dry-run               show what would change; apply nothing\n" SERVER_OPTIONS,
	  cmd_endpoint },
	{ "flows", "[--follow] [--endpoint ID] [--namespace NS] [--direction D] [--verdict V] [--since 5m] [--limit N] [-o table|json]",
	  "show flow records (dropped or audited traffic), newest last; --follow streams",
	  "  --follow                keep printing records as they arrive (until interrupted)\n"
	  "  --endpoint ID           only this endpoint\n"
	  "  --namespace NS          only endpoints of this namespace\n"
	  "  --direction D           ingress or egress\n"
	  "  --verdict V             dropped or audited\n"
	  "  --proto P               tcp, udp, icmp, icmpv6, sctp or a number\n"
	  "  --port N                destination port\n"
	  "  --since T               30s, 5m, 2h, 1d ago, or an RFC 3339 time\n"
	  "  --limit N               only the newest N records\n"
	  "  -o table|json           output format (json: one object per line)\n" SERVER_OPTIONS,
	  cmd_flows },
	{ "check", "--from ID|ADDR --to ID|ADDR --port PROTO/PORT",
	  "would FROM reach TO on this port, and which rule decides (exit 0 allowed, 1 denied)",
	  "  --from ID|ADDR          source endpoint id or address\n"
	  "  --to ID|ADDR            destination endpoint id or address\n"
	  "  --port PROTO/PORT       tcp/5432, udp/53, icmp, icmpv6\n"
	  "  -o table|json           output format (default table)\n" SERVER_OPTIONS, cmd_check },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void usage_print(FILE *f)
{
	fprintf(f, "usage: mseg COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-8s %s\n  %-8s   %s\n", commands[i].name, commands[i].synopsis, "",
			commands[i].help);
	fprintf(f, "\nglobal options (before or after the command):\n%s", SERVER_OPTIONS);
	fprintf(f, "\n`mseg help COMMAND` shows the options of a command.\n");
}

static void command_usage_print(FILE *f, const struct command *c)
{
	fprintf(f, "usage: mseg %s %s\n%s\n", c->name, c->synopsis, c->help);
	if (c->options)
		fprintf(f, "\noptions:\n%s", c->options);
}

static int cmd_help(int argc, char **argv)
{
	const struct command *c;

	if (argc > 2) {
		fprintf(stderr, "usage: mseg help [COMMAND]\n");
		return EXIT_USAGE;
	}
	if (argc < 2) {
		usage_print(stdout);
		return 0;
	}
	c = command_find(argv[1]);
	if (!c) {
		fprintf(stderr, "mseg: unknown command '%s'; see `mseg help`\n", argv[1]);
		return EXIT_USAGE;
	}
	command_usage_print(stdout, c);
	return 0;
}

/* A whole decimal number in [min, max]. */
static int number_parse(const char *s, unsigned long min, unsigned long max, unsigned long *ret)
{
	char *end;
	unsigned long v;

	if (!s[0] || s[0] == '-' || s[0] == '+')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

__attribute__((format(printf, 1, 2))) static int compile_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mseg compile: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: mseg compile %s\n", command_find("compile")->synopsis);
	return EXIT_USAGE;
}

static int cmd_compile(int argc, char **argv)
{
	enum { OPT_ENDPOINTS = 256, OPT_ENDPOINT, OPT_QUEUE, OPT_QUEUE_NUM, OPT_RATE, OPT_BURST,
	       OPT_DEFAULT_DENY, OPT_MODE };
	static const struct option longopts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "endpoints", required_argument, NULL, OPT_ENDPOINTS },
		{ "endpoint", required_argument, NULL, OPT_ENDPOINT },
		{ "queue", required_argument, NULL, OPT_QUEUE },
		{ "queue-num", required_argument, NULL, OPT_QUEUE_NUM },
		{ "rate", required_argument, NULL, OPT_RATE },
		{ "burst", required_argument, NULL, OPT_BURST },
		{ "default-deny", no_argument, NULL, OPT_DEFAULT_DENY },
		{ "mode", required_argument, NULL, OPT_MODE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *policy_path = NULL, *inventory_path = NULL, *only = NULL;
	struct table_opts topts = { .queue = QUEUE_NATIVE, .rate = TABLE_DEFAULT_RATE,
				    .burst = TABLE_DEFAULT_BURST };
	struct compile_opts copts = { .default_mode = MSEG_MODE_ENFORCE };
	struct mseg_policy_set set;
	struct mseg_inventory inv;
	struct mseg_plan *plan = NULL;
	struct mseg_err err;
	char msg[1024];
	unsigned long v;
	int opt, r, status = 1;

	opterr = 0;
	optind = 0;
	while ((opt = getopt_long(argc, argv, ":f:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			policy_path = optarg;
			break;
		case OPT_ENDPOINTS:
			inventory_path = optarg;
			break;
		case OPT_ENDPOINT:
			only = optarg;
			break;
		case OPT_QUEUE:
			if (strcmp(optarg, "native") == 0)
				topts.queue = QUEUE_NATIVE;
			else if (strcmp(optarg, "xt") == 0)
				topts.queue = QUEUE_XT;
			else if (strcmp(optarg, "nflog") == 0)
				topts.queue = QUEUE_NFLOG;
			else
				return compile_usage_error("--queue '%s': native, xt or nflog", optarg);
			break;
		case OPT_QUEUE_NUM:
			if (number_parse(optarg, 0, 65535, &v) < 0)
				return compile_usage_error("--queue-num '%s': 0 to 65535", optarg);
			topts.queue_num = (uint16_t)v;
			break;
		case OPT_RATE:
			if (number_parse(optarg, 1, UINT32_MAX, &v) < 0)
				return compile_usage_error("--rate '%s': a positive number", optarg);
			topts.rate = (uint32_t)v;
			break;
		case OPT_BURST:
			if (number_parse(optarg, 1, UINT32_MAX, &v) < 0)
				return compile_usage_error("--burst '%s': a positive number", optarg);
			topts.burst = (uint32_t)v;
			break;
		case OPT_DEFAULT_DENY:
			copts.default_deny = true;
			break;
		case OPT_MODE:
			if (strcmp(optarg, "enforce") == 0) {
				copts.force_audit = false;
				copts.default_mode = MSEG_MODE_ENFORCE;
			} else if (strcmp(optarg, "audit") == 0) {
				copts.force_audit = true;
				copts.default_mode = MSEG_MODE_AUDIT;
			} else {
				return compile_usage_error("--mode '%s': enforce or audit", optarg);
			}
			break;
		case 'h':
			command_usage_print(stdout, command_find("compile"));
			return 0;
		case ':':
			return compile_usage_error("%s needs an argument", argv[optind - 1]);
		default:
			return compile_usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return compile_usage_error("unexpected argument '%s'", argv[optind]);
	if (!policy_path)
		return compile_usage_error("%s", "-f FILE|DIR is required");
	if (!inventory_path)
		return compile_usage_error("%s", "--endpoints FILE is required");

	policy_set_init(&set);
	inventory_init(&inv);
	err_clear(&err);
	r = policy_load_path(&set, policy_path, &err);
	if (r < 0) {
		fprintf(stderr, "%s\n", err_format(&err, msg, sizeof(msg)));
		goto out_release;
	}
	r = inventory_load_file(&inv, inventory_path, &err);
	if (r < 0) {
		fprintf(stderr, "%s\n", err_format(&err, msg, sizeof(msg)));
		goto out_release;
	}
	r = compile_plan((const struct mseg_policy *const *)set.items, set.n,
			 (const struct mseg_endpoint *const *)inv.eps, inv.n, &copts, &plan);
	if (r < 0) {
		fprintf(stderr, "mseg compile: %s\n", strerror(-r));
		goto out_release;
	}

	if (only) {
		const struct mseg_ep_plan *ep = NULL;

		for (size_t i = 0; i < plan->n_eps && !ep; i++)
			if (strcmp(plan->eps[i].ep->id, only) == 0)
				ep = &plan->eps[i];
		if (!ep) {
			fprintf(stderr, "mseg compile: endpoint '%s' is not in %s\n", only,
				inventory_path);
			goto out_free_plan;
		}
		r = render_text_header(stdout, ep->ep);
		if (r == 0)
			r = render_text_table(stdout, ep, &topts);
	} else {
		r = render_text_plan(stdout, plan, &topts);
	}
	if (r == 0 && fflush(stdout) != 0)
		r = -errno;
	if (r < 0) {
		fprintf(stderr, "mseg compile: writing the output: %s\n", strerror(-r));
		goto out_free_plan;
	}
	status = 0;
out_free_plan:
	plan_free(plan);
out_release:
	inventory_release(&inv);
	policy_set_release(&set);
	return status;
}

/* ---- talking to msegd ---- */

static const char *g_server;      /* --server or $MSEG_SERVER */
static const char *g_token_file;  /* --token-file */
static const char *g_cacert;      /* --cacert */

static const char *server_name(void)
{
	const char *s = g_server ? g_server : getenv("MSEG_SERVER");

	return s && *s ? s : "unix:/run/mseg/api.sock";
}

/* The token: --token-file, else $MSEG_TOKEN; NULL when neither. */
static char *token_get(void)
{
	char line[4096];
	FILE *f;
	char *s, *e;
	const char *env = getenv("MSEG_TOKEN");

	if (!g_token_file)
		return env && *env ? strdup(env) : NULL;
	f = fopen(g_token_file, "re");
	if (!f) {
		fprintf(stderr, "mseg: cannot read the token file '%s': %s\n", g_token_file,
			strerror(errno));
		return NULL;
	}
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	for (s = line; isspace((unsigned char)*s); s++)
		;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return strdup(s);
}

/* A path segment or query value, %-escaped. */
static char *esc(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	char *r = e ? strdup(e) : NULL;

	curl_free(e);
	if (!r) {
		fprintf(stderr, "mseg: out of memory\n");
		exit(1);
	}
	return r;
}

typedef size_t (*write_fn)(char *ptr, size_t size, size_t nmemb, void *data);

/* One request. Returns the HTTP status (>= 100), or -1 after printing why
 * the server could not be reached. @resp gets the body (unless @wfn). */
static long api_call(const char *method, const char *path, const char *ctype, const char *body,
		     size_t body_len, struct client_buf *resp, write_fn wfn, void *wdata)
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
	if (strncmp(server, "unix:", 5) != 0 && strncmp(server, "https://", 8) != 0 &&
	    strncmp(server, "http://", 7) != 0) {
		fprintf(stderr, "mseg: --server '%s': expected unix:/PATH, https://HOST:PORT or http://HOST:PORT\n",
			server);
		curl_easy_cleanup(c);
		return -1;
	}
	client_set_url(c, server, path);
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
			char h[128];

			snprintf(h, sizeof(h), "Content-Type: %s", ctype);
			hdrs = curl_slist_append(hdrs, h);
		}
		hdrs = curl_slist_append(hdrs, "Expect:");
	}
	if (hdrs)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, wfn ? wfn : client_buf_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, wfn ? wdata : (void *)resp);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK || rc == CURLE_WRITE_ERROR) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		if (code < 100)
			code = -1;
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

/* Print an error answer; returns 1. */
static int api_error_print(const char *prefix, long code, const struct client_buf *resp)
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

/* GET @path and parse JSON. Returns 0 or an exit status. */
static int api_get_json(const char *path, json_t **ret)
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

static void json_print(const json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	putchar('\n');
}

static bool yaml_plain_ok(const char *s)
{
	if (!*s || strchr("-?:,[]{}#&*!|>'\"%@` ", s[0]) || isspace((unsigned char)s[strlen(s) - 1]))
		return false;
	if (!strcmp(s, "true") || !strcmp(s, "false") || !strcmp(s, "null") || !strcmp(s, "~") ||
	    !strcmp(s, "yes") || !strcmp(s, "no") || strspn(s, "0123456789.-+eE") == strlen(s))
		return false;
	for (const char *p = s; *p; p++)
		if (*p == '\n' || (*p == ':' && (p[1] == ' ' || !p[1])) || (*p == ' ' && p[1] == '#') ||
		    (unsigned char)*p < ' ')
			return false;
	return true;
}

static void yaml_scalar(const json_t *j)
{
	if (json_is_string(j)) {
		const char *s = json_string_value(j);

		if (yaml_plain_ok(s)) {
			fputs(s, stdout);
		} else {
			char *q = json_dumps(j, JSON_ENCODE_ANY);

			fputs(q ? q : "\"\"", stdout);
			free(q);
		}
	} else {
		char *q = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);

		fputs(q ? q : "null", stdout);
		free(q);
	}
}

/* A minimal JSON -> YAML printer (block style). */
static void yaml_print(const json_t *j, int indent, bool in_seq)
{
	if (json_is_object(j) && json_object_size(j)) {
		const char *k;
		json_t *v;
		bool first = true;

		json_object_foreach((json_t *)j, k, v) {
			if (!(first && in_seq))
				printf("%*s", indent, "");
			first = false;
			printf("%s:", k);
			if ((json_is_object(v) && json_object_size(v)) || (json_is_array(v) && json_array_size(v))) {
				if (json_is_array(v)) {
					putchar('\n');
					yaml_print(v, indent, false);
				} else {
					putchar('\n');
					yaml_print(v, indent + 2, false);
				}
			} else if (json_is_string(v) && strchr(json_string_value(v), '\n')) {
				const char *s = json_string_value(v);

				printf(" |\n");
				while (*s) {
					const char *nl = strchr(s, '\n');
					size_t n = nl ? (size_t)(nl - s) : strlen(s);

					printf("%*s%.*s\n", indent + 2, "", (int)n, s);
					s += n + (nl ? 1 : 0);
				}
			} else {
				putchar(' ');
				if (json_is_object(v))
					fputs("{}", stdout);
				else if (json_is_array(v))
					fputs("[]", stdout);
				else
					yaml_scalar(v);
				putchar('\n');
			}
		}
	} else if (json_is_array(j) && json_array_size(j)) {
		size_t i;
		json_t *v;

		json_array_foreach(j, i, v) {
			printf("%*s- ", indent, "");
			if (json_is_object(v) && json_object_size(v)) {
				yaml_print(v, indent + 2, true);
			} else if (json_is_array(v) && json_array_size(v)) {
				putchar('\n');
				yaml_print(v, indent + 2, false);
			} else {
				yaml_scalar(v);
				putchar('\n');
			}
		}
	} else {
		printf("%*s", indent, "");
		yaml_scalar(j);
		putchar('\n');
	}
}

enum out_fmt { OUT_TABLE, OUT_JSON, OUT_YAML };

static int out_parse(const char *s, enum out_fmt *ret, bool yaml_ok)
{
	if (strcmp(s, "table") == 0)
		*ret = OUT_TABLE;
	else if (strcmp(s, "json") == 0)
		*ret = OUT_JSON;
	else if (yaml_ok && strcmp(s, "yaml") == 0)
		*ret = OUT_YAML;
	else
		return -EINVAL;
	return 0;
}

__attribute__((format(printf, 2, 3))) static int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mseg %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: mseg %s %s\n", cmd, command_find(cmd)->synopsis);
	return EXIT_USAGE;
}

/* The end of a subcommand's option switch: -o table|json, anything else is a
 * bad option. Returns 0 or the usage exit status. */
static int opt_output(const char *cmd, int opt, char **argv, enum out_fmt *fmt)
{
	if (opt != 'o')
		return usage_error(cmd, "bad option '%s'", argv[optind - 1]);
	if (out_parse(optarg, fmt, false) < 0)
		return usage_error(cmd, "-o '%s': table or json", optarg);
	return 0;
}

/* After the options: no arguments may be left. Returns 0 or the usage exit
 * status. */
static int args_none(const char *cmd, int argc, char **argv)
{
	if (optind < argc)
		return usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	return 0;
}

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static long long jint(const json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

static const char *jbool(const json_t *o, const char *key)
{
	return json_is_true(json_object_get(o, key)) ? "yes" : "no";
}

/* "a,b,c" from an array of strings */
static void strlist(const json_t *arr, char *buf, size_t size)
{
	size_t i, n = 0;
	json_t *v;

	buf[0] = '\0';
	json_array_foreach(arr, i, v) {
		if (n >= size)
			break;
		n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? "," : "",
				      json_string_value(v) ? json_string_value(v) : "?");
	}
	if (!buf[0])
		snprintf(buf, size, "-");
}

/* ---- status ---- */

static int cmd_status(int argc, char **argv)
{
	enum out_fmt fmt = OUT_TABLE;
	json_t *j = NULL;
	int opt, r;
	static const struct option lo[] = { { "output", required_argument, NULL, 'o' },
					    { NULL, 0, NULL, 0 } };

	opterr = 0;
	optind = 0;
	while ((opt = getopt_long(argc, argv, ":o:", lo, NULL)) != -1) {
		if (opt == 'o' && out_parse(optarg, &fmt, true) == 0)
			continue;
		return usage_error("status", "bad option '%s'", argv[optind - 1]);
	}
	r = args_none("status", argc, argv);
	if (r)
		return r;
	r = api_get_json("/v1/status", &j);
	if (r)
		return r;
	if (fmt == OUT_JSON) {
		json_print(j);
	} else if (fmt == OUT_YAML) {
		yaml_print(j, 0, false);
	} else {
		json_t *p = json_object_get(j, "policies"), *e = json_object_get(j, "endpoints"),
		       *k = json_object_get(j, "kernel");
		char lis[512];

		strlist(json_object_get(j, "listen"), lis, sizeof(lis));
		printf("version:     %s\n", jstr(j, "version"));
		printf("uptime:      %lld s\n", jint(j, "uptime_seconds"));
		printf("generation:  %lld\n", jint(j, "generation"));
		printf("mode:        %s%s\n", jstr(j, "mode"),
		       json_is_true(json_object_get(j, "default_deny")) ? ", default-deny" : "");
		printf("ready:       %s\n", jbool(j, "ready"));
		printf("policies:    %lld (%lld from files, %lld from the API)\n", jint(p, "total"),
		       jint(p, "file"), jint(p, "api"));
		printf("endpoints:   %lld (%lld from files, %lld from the API); %lld programmed, %lld failed\n",
		       jint(e, "total"), jint(e, "file"), jint(e, "api"), jint(e, "programmed"),
		       jint(e, "failed"));
		printf("kernel:      queue %s, native queue %s, xt NFQUEUE %s, nflog %s\n",
		       jstr(k, "queue"), jbool(k, "queue_native"), jbool(k, "queue_xt"), jbool(k, "nflog"));
		printf("state dir:   %s\n", jstr(j, "state_dir"));
		printf("listening:   %s\n", lis);
	}
	json_decref(j);
	return 0;
}

/* ---- apply ---- */

/* One document of a file, as the parser delimited it (a `---` inside a
 * block scalar does not split). */
struct doc_piece {
	const char *text;
	size_t len;
	unsigned first_line;
};

static void dry_run_print(const json_t *j)
{
	json_t *changes = json_object_get(j, "changes"), *c;
	size_t i;

	printf("  %lld endpoint(s) would change\n", jint(j, "endpoints_changed"));
	json_array_foreach(changes, i, c) {
		static const char *const dirs[] = { "ingress", "egress" };

		printf("  endpoint %s%s%s\n", jstr(c, "endpoint"),
		       json_is_true(json_object_get(c, "new_endpoint")) ? " (new)" : "",
		       json_is_true(json_object_get(c, "removed_endpoint")) ? " (removed)" : "");
		for (int d = 0; d < 2; d++) {
			json_t *dd = json_object_get(c, dirs[d]), *v;
			size_t k;

			if (!dd)
				continue;
			printf("    %s: isolated %s -> %s, +%lld -%lld\n", dirs[d],
			       json_is_true(json_array_get(json_object_get(dd, "isolated"), 0)) ? "yes" : "no",
			       json_is_true(json_array_get(json_object_get(dd, "isolated"), 1)) ? "yes" : "no",
			       jint(dd, "added_total"), jint(dd, "removed_total"));
			json_array_foreach(json_object_get(dd, "added"), k, v)
				printf("      + %s\n", json_string_value(v));
			json_array_foreach(json_object_get(dd, "removed"), k, v)
				printf("      - %s\n", json_string_value(v));
		}
	}
}

/* Send one document; @name is "file" for messages. Returns 0 or 1. */
static int apply_one(const char *file, const struct doc_piece *pc, const struct mseg_policy *p,
		     bool dry_run, enum out_fmt fmt)
{
	char path[1024];
	char *ens = esc(p->ns), *ename = esc(p->name);
	struct client_buf resp = { 0 };
	long code;
	int status = 1;

	snprintf(path, sizeof(path), "/v1/policies/%s/%s%s", ens, ename, dry_run ? "?dry_run=1" : "");
	free(ens);
	free(ename);
	code = api_call("PUT", path, "application/yaml", pc->text, pc->len, &resp, NULL, NULL);
	if (code < 0)
		goto out_free;
	if (code >= 300) {
		json_t *j = resp.data ? json_loads(resp.data, 0, NULL) : NULL;
		json_int_t line = j ? json_integer_value(json_object_get(j, "line")) : 0;

		if (line && code < 500 && code != 401 && code != 403) {
			/* positions of the piece -> positions in the file */
			fprintf(stderr, "%s:%lld:%lld: %s\n", file, (long long)(line + pc->first_line - 1),
				(long long)json_integer_value(json_object_get(j, "column")),
				jstr(j, "error"));
		} else {
			char pfx[600];

			snprintf(pfx, sizeof(pfx), "policy %s/%s", p->ns, p->name);
			api_error_print(pfx, code, &resp);
		}
		json_decref(j);
		goto out_free;
	}
	if (fmt == OUT_JSON) {
		fputs(resp.data ? resp.data : "", stdout);
	} else {
		json_t *j = json_loads(resp.data ? resp.data : "", 0, NULL);

		printf("policy %s/%s %s", p->ns, p->name, jstr(j, "result"));
		if (!dry_run) {
			printf(" (generation %lld)%s\n", jint(j, "generation"),
			       json_is_true(json_object_get(j, "programmed")) ? "" :
			       "; some endpoints are not programmed, see `mseg get endpoints`");
		} else {
			putchar('\n');
			dry_run_print(j);
		}
		json_decref(j);
	}
	status = 0;
out_free:
	free(resp.data);
	return status;
}

static int apply_file(const char *file, bool dry_run, enum out_fmt fmt)
{
	struct mseg_policy_set whole;
	struct mseg_err err;
	char msg[1024];
	char *buf = NULL;
	size_t len = 0;
	FILE *f, *m;
	int status = 1;

	f = fopen(file, "re");
	if (!f) {
		fprintf(stderr, "%s: %s\n", file, strerror(errno));
		return 1;
	}
	m = open_memstream(&buf, &len);
	if (m) {
		char chunk[8192];
		size_t n;

		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			fwrite(chunk, 1, n, m);
		fclose(m);
	}
	fclose(f);
	if (!m || !buf) {
		fprintf(stderr, "%s: out of memory\n", file);
		free(buf);
		return 1;
	}
	/* validate the whole file locally first: positions name the file, and
	 * each policy knows the bytes of its document */
	policy_set_init(&whole);
	err_clear(&err);
	if (policy_parse_buffer(&whole, file, buf, len, &err) < 0) {
		fprintf(stderr, "%s\n", err_format(&err, msg, sizeof(msg)));
		goto out_release;
	}
	status = 0;
	for (size_t i = 0; i < whole.n; i++) {
		const struct mseg_policy *p = whole.items[i];
		struct doc_piece pc = { buf + p->doc_start, p->doc_len, p->pos.line };

		if (apply_one(file, &pc, p, dry_run, fmt) != 0)
			status = 1;
	}
out_release:
	policy_set_release(&whole);
	free(buf);
	return status;
}

static int cmd_apply(int argc, char **argv)
{
	enum { OPT_DRY = 256 };
	static const struct option lo[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "dry-run", no_argument, NULL, OPT_DRY },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	bool dry_run = false;
	enum out_fmt fmt = OUT_TABLE;
	struct stat st;
	int opt, usage, status = 0;

	opterr = 0;
	optind = 0;
	while ((opt = getopt_long(argc, argv, ":f:o:", lo, NULL)) != -1) {
		switch (opt) {
		case 'f':
			path = optarg;
			break;
		case OPT_DRY:
			dry_run = true;
			break;
		default:
			usage = opt_output("apply", opt, argv, &fmt);
			if (usage)
				return usage;
		}
	}
	usage = args_none("apply", argc, argv);
	if (usage)
		return usage;
	if (!path)
		return usage_error("apply", "-f FILE|DIR is required");
	if (stat(path, &st) < 0) {
		fprintf(stderr, "mseg apply: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (S_ISDIR(st.st_mode)) {
		struct mseg_policy_set all;
		struct mseg_err err;
		char msg[1024];
		struct dirent **names = NULL;
		int n;

		/* the directory must load as a whole (names unique across files) */
		policy_set_init(&all);
		err_clear(&err);
		if (policy_load_dir(&all, path, &err) < 0) {
			fprintf(stderr, "%s\n", err_format(&err, msg, sizeof(msg)));
			policy_set_release(&all);
			return 1;
		}
		policy_set_release(&all);
		n = scandir(path, &names, NULL, alphasort);
		for (int i = 0; i < n; i++) {
			const char *nm = names[i]->d_name;
			size_t l = strlen(nm);
			char full[4096];

			if (nm[0] != '.' && ((l > 5 && !strcmp(nm + l - 5, ".yaml")) ||
					     (l > 4 && !strcmp(nm + l - 4, ".yml")) ||
					     (l > 5 && !strcmp(nm + l - 5, ".json")))) {
				snprintf(full, sizeof(full), "%s/%s", path, nm);
				if (stat(full, &st) == 0 && S_ISREG(st.st_mode) &&
				    apply_file(full, dry_run, fmt) != 0)
					status = 1;
			}
			free(names[i]);
		}
		free(names);
		return status;
	}
	return apply_file(path, dry_run, fmt);
}

/* ---- delete ---- */

static int mutation_print(const char *what, long code, struct client_buf *resp, bool dry_run)
{
	json_t *j;

	if (code < 0)
		return 1;
	if (code >= 300)
		return api_error_print(what, code, resp);
	j = json_loads(resp->data ? resp->data : "", 0, NULL);
	printf("%s %s", what, jstr(j, "result"));
	if (dry_run) {
		putchar('\n');
		dry_run_print(j);
	} else {
		printf(" (generation %lld)\n", jint(j, "generation"));
	}
	json_decref(j);
	return 0;
}

static int cmd_delete(int argc, char **argv)
{
	static const struct option lo[] = { { "dry-run", no_argument, NULL, 'n' },
					    { NULL, 0, NULL, 0 } };
	bool dry_run = false;
	const char *slash;
	char path[1024], what[600];
	char *ens, *ename, *ns;
	struct client_buf resp = { 0 };
	long code;
	int opt, status;

	opterr = 0;
	optind = 0;
	while ((opt = getopt_long(argc, argv, ":", lo, NULL)) != -1) {
		if (opt == 'n')
			dry_run = true;
		else
			return usage_error("delete", "bad option '%s'", argv[optind - 1]);
	}
	if (argc - optind != 2 || strcmp(argv[optind], "policy") != 0)
		return usage_error("delete", "expected 'policy NS/NAME'");
	slash = strchr(argv[optind + 1], '/');
	if (!slash || slash == argv[optind + 1] || !slash[1] || strchr(slash + 1, '/'))
		return usage_error("delete", "'%s': expected NS/NAME", argv[optind + 1]);
	ns = strndup(argv[optind + 1], (size_t)(slash - argv[optind + 1]));
	ens = esc(ns);
	ename = esc(slash + 1);
	snprintf(path, sizeof(path), "/v1/policies/%s/%s%s", ens, ename, dry_run ? "?dry_run=1" : "");
	snprintf(what, sizeof(what), "policy %s", argv[optind + 1]);
	free(ns);
	free(ens);
	free(ename);
	code = api_call("DELETE", path, NULL, NULL, 0, &resp, NULL, NULL);
	status = mutation_print(what, code, &resp, dry_run);
	free(resp.data);
	return status;
}

/* ---- get ---- */

static void table_policies(const json_t *arr)
{
	size_t i;
	json_t *p;

	printf("%-16s %-24s %-13s %-8s %-16s %5s  %s\n", "NAMESPACE", "NAME", "KIND", "MODE",
	       "ISOLATION", "RULES", "SOURCE");
	json_array_foreach(arr, i, p) {
		char iso[64];

		strlist(json_object_get(p, "isolation"), iso, sizeof(iso));
		printf("%-16s %-24s %-13s %-8s %-16s %5zu  %s%s\n", jstr(p, "namespace"), jstr(p, "name"),
		       jstr(p, "kind"), jstr(p, "mode"), iso, json_array_size(json_object_get(p, "rules")),
		       jstr(p, "source"), json_object_get(p, "shadowed_by") ? " (shadowed)" : "");
	}
}

static void table_endpoints(const json_t *arr)
{
	size_t i;
	json_t *e;

	printf("%-20s %-14s %-16s %-32s %-10s %s\n", "ID", "NAMESPACE", "NAME", "IPS", "PROGRAMMED",
	       "SOURCE");
	json_array_foreach(arr, i, e) {
		char ips[256];
		const json_t *pr = json_object_get(e, "programmed");

		strlist(json_object_get(e, "ips"), ips, sizeof(ips));
		printf("%-20s %-14s %-16s %-32s %-10s %s\n", jstr(e, "id"), jstr(e, "namespace"),
		       jstr(e, "name"), ips, !pr ? "-" : json_is_true(pr) ? "yes" : "NO", jstr(e, "source"));
		if (json_object_get(e, "error"))
			printf("  error: %s\n", jstr(e, "error"));
	}
}

static void table_rules(const json_t *arr)
{
	size_t i;
	json_t *e;

	printf("%-20s %-10s %-9s %-16s %-16s %s\n", "ENDPOINT", "PROGRAMMED", "STATE", "INGRESS",
	       "EGRESS", "DIFFERENCES");
	json_array_foreach(arr, i, e) {
		json_t *iso = json_object_get(e, "isolated"), *ent = json_object_get(e, "entries");
		char in[32], eg[32];

		snprintf(in, sizeof(in), "%s",
			 json_is_true(json_object_get(iso, "ingress")) ? "" : "open");
		if (!in[0])
			snprintf(in, sizeof(in), "%lld entries", jint(ent, "ingress"));
		snprintf(eg, sizeof(eg), "%s", json_is_true(json_object_get(iso, "egress")) ? "" : "open");
		if (!eg[0])
			snprintf(eg, sizeof(eg), "%lld entries", jint(ent, "egress"));
		printf("%-20s %-10s %-9s %-16s %-16s %lld\n", jstr(e, "endpoint"), jbool(e, "programmed"),
		       jstr(e, "state"), in, eg, jint(e, "n_differences"));
	}
}

static void rules_detail(const json_t *e)
{
	size_t i;
	json_t *d;

	printf("# endpoint %s netns %s: %s, %s\n", jstr(e, "endpoint"), jstr(e, "netns"),
	       json_is_true(json_object_get(e, "programmed")) ? "programmed" : "NOT programmed",
	       jstr(e, "state"));
	if (json_object_get(e, "readback_error"))
		printf("# read-back failed: %s\n", jstr(e, "readback_error"));
	json_array_foreach(json_object_get(e, "differences"), i, d)
		printf("# differs: %s\n", json_string_value(d));
	fputs(jstr(e, "table"), stdout);
}

static int cmd_get(int argc, char **argv)
{
	static const struct option lo[] = { { "output", required_argument, NULL, 'o' },
					    { NULL, 0, NULL, 0 } };
	enum out_fmt fmt = OUT_TABLE;
	const char *what, *id = NULL;
	char path[1024];
	json_t *j = NULL;
	int opt, r;

	opterr = 0;
	optind = 0;
	while ((opt = getopt_long(argc, argv, ":o:", lo, NULL)) != -1) {
		if (opt == 'o' && out_parse(optarg, &fmt, true) == 0)
			continue;
		return usage_error("get", "bad option '%s'", argv[optind - 1]);
	}
	if (argc - optind < 1 || argc - optind > 2)
		return usage_error("get", "expected policies, endpoints or rules");
	what = argv[optind];
	if (argc - optind == 2)
		id = argv[optind + 1];
	if (strcmp(what, "policies") == 0 || strcmp(what, "policy") == 0) {
		if (id) {
			const char *slash = strchr(id, '/');
			char *ns, *ens, *ename;

			if (!slash || slash == id || !slash[1])
				return usage_error("get", "'%s': expected NS/NAME", id);
			ns = strndup(id, (size_t)(slash - id));
			ens = esc(ns);
			ename = esc(slash + 1);
			snprintf(path, sizeof(path), "/v1/policies/%s/%s", ens, ename);
			free(ns);
			free(ens);
			free(ename);
		} else {
			snprintf(path, sizeof(path), "/v1/policies");
		}
	} else if (strcmp(what, "endpoints") == 0 || strcmp(what, "endpoint") == 0 ||
		   strcmp(what, "rules") == 0) {
		const char *base = what[0] == 'r' ? "rules" : "endpoints";

		if (id) {
			char *e = esc(id);

			snprintf(path, sizeof(path), "/v1/%s/%s", base, e);
			free(e);
		} else {
			snprintf(path, sizeof(path), "/v1/%s", base);
		}
	} else {
		return usage_error("get", "'%s': expected policies, endpoints or rules", what);
	}
	r = api_get_json(path, &j);
	if (r)
		return r;
	if (fmt == OUT_JSON) {
		json_print(j);
	} else if (fmt == OUT_YAML) {
		if (id && what[0] == 'p' && json_object_get(j, "document"))
			fputs(jstr(j, "document"), stdout);
		else
			yaml_print(j, 0, false);
	} else if (what[0] == 'p') {
		if (id) {
			json_t *arr = json_array();

			json_array_append(arr, j);
			table_policies(arr);
			json_decref(arr);
		} else {
			table_policies(json_object_get(j, "policies"));
		}
	} else if (what[0] == 'e') {
		if (id) {
			json_t *arr = json_array();

			json_array_append(arr, j);
			table_endpoints(arr);
			json_decref(arr);
		} else {
			table_endpoints(json_object_get(j, "endpoints"));
		}
	} else {
		if (id)
			rules_detail(j);
		else
			table_rules(json_object_get(j, "endpoints"));
	}
	json_decref(j);
	return 0;
}

/* ---- endpoint ---- */

static int cmd_endpoint(int argc, char **argv)
{
	enum { OPT_NETNS = 256, OPT_IP, OPT_NAME, OPT_NS, OPT_LABEL, OPT_DRY };
	static const struct option lo[] = {
		{ "netns", required_argument, NULL, OPT_NETNS },
		{ "ip", required_argument, NULL, OPT_IP },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "namespace", required_argument, NULL, OPT_NS },
		{ "label", required_argument, NULL, OPT_LABEL },
		{ "dry-run", no_argument, NULL, OPT_DRY },
		{ NULL, 0, NULL, 0 },
	};
	json_t *body = json_object(), *ips = json_array(), *labels = json_object();
	bool dry_run = false, add;
	const char *id;
	char path[1024], what[300];
	struct client_buf resp = { 0 };
	char *text, *eid;
	long code;
	int opt, status;

	if (argc < 2 || (strcmp(argv[1], "add") != 0 && strcmp(argv[1], "del") != 0)) {
		json_decref(body);
		json_decref(ips);
		json_decref(labels);
		return usage_error("endpoint", "expected 'add ID ...' or 'del ID'");
	}
	add = strcmp(argv[1], "add") == 0;
	opterr = 0;
	optind = 0;
	argc--;
	argv++;
	while ((opt = getopt_long(argc, argv, ":", lo, NULL)) != -1) {
		switch (opt) {
		case OPT_NETNS:
			json_object_set_new(body, "netns", json_string(optarg));
			break;
		case OPT_IP:
			json_array_append_new(ips, json_string(optarg));
			break;
		case OPT_NAME:
			json_object_set_new(body, "name", json_string(optarg));
			break;
		case OPT_NS:
			json_object_set_new(body, "namespace", json_string(optarg));
			break;
		case OPT_LABEL: {
			const char *eq = strchr(optarg, '=');
			char *k;

			if (!eq || eq == optarg) {
				status = usage_error("endpoint", "--label '%s': expected KEY=VALUE", optarg);
				goto out_free;
			}
			k = strndup(optarg, (size_t)(eq - optarg));
			json_object_set_new(labels, k, json_string(eq + 1));
			free(k);
			break;
		}
		case OPT_DRY:
			dry_run = true;
			break;
		default:
			status = usage_error("endpoint", "bad option '%s'", argv[optind - 1]);
			goto out_free;
		}
	}
	if (argc - optind != 1) {
		status = usage_error("endpoint", "expected one ID");
		goto out_free;
	}
	id = argv[optind];
	eid = esc(id);
	snprintf(path, sizeof(path), "/v1/endpoints/%s%s", eid, dry_run ? "?dry_run=1" : "");
	free(eid);
	snprintf(what, sizeof(what), "endpoint %s", id);
	if (!add) {
		code = api_call("DELETE", path, NULL, NULL, 0, &resp, NULL, NULL);
		status = mutation_print(what, code, &resp, dry_run);
		goto out_free;
	}
	if (!json_object_get(body, "netns") || !json_array_size(ips)) {
		status = usage_error("endpoint", "add needs --netns PATH and at least one --ip ADDR");
		goto out_free;
	}
	json_object_set(body, "ips", ips);
	if (json_object_size(labels))
		json_object_set(body, "labels", labels);
	text = json_dumps(body, JSON_COMPACT);
	code = api_call("PUT", path, "application/json", text, strlen(text), &resp, NULL, NULL);
	free(text);
	status = mutation_print(what, code, &resp, dry_run);
out_free:
	free(resp.data);
	json_decref(body);
	json_decref(ips);
	json_decref(labels);
	return status;
}

/* ---- flows ---- */

/* "30s", "5m", "2h", "1d" ago -> seconds since the epoch; an RFC 3339 time
 * is passed on as it is. */
static int since_parse(const char *s, char *out, size_t size)
{
	char *end;
	unsigned long long v;
	unsigned long long mul;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (!errno && end != s && end[0] && !end[1]) {
		switch (end[0]) {
		case 's':
			mul = 1;
			break;
		case 'm':
			mul = 60;
			break;
		case 'h':
			mul = 3600;
			break;
		case 'd':
			mul = 86400;
			break;
		default:
			return -EINVAL;
		}
		snprintf(out, size, "%llu", (unsigned long long)time(NULL) - v * mul);
		return 0;
	}
	if (strlen(s) >= 10 && s[4] == '-' && s[7] == '-') {
		char *e = esc(s);

		snprintf(out, size, "%s", e);
		free(e);
		return 0;
	}
	return -EINVAL;
}

static void flow_row(const json_t *f)
{
	char src[80], dst[80];
	const json_t *ep = json_object_get(f, "endpoint");
	const char *t = jstr(f, "time");

	if (json_object_get(f, "sport"))
		snprintf(src, sizeof(src), "%s:%lld", jstr(f, "src"), jint(f, "sport"));
	else
		snprintf(src, sizeof(src), "%s", jstr(f, "src"));
	if (json_object_get(f, "dport"))
		snprintf(dst, sizeof(dst), "%s:%lld", jstr(f, "dst"), jint(f, "dport"));
	else
		snprintf(dst, sizeof(dst), "%s", jstr(f, "dst"));
	printf("%-24s %-16s %-8s %-6s %-28s %-28s %-8s %6lld\n", t, jstr(ep, "id"),
	       jstr(f, "direction"), json_is_string(json_object_get(f, "proto")) ? jstr(f, "proto") : "?",
	       src, dst, jstr(f, "verdict"), jint(f, "count"));
}

static void flow_header(void)
{
	printf("%-24s %-16s %-8s %-6s %-28s %-28s %-8s %6s\n", "TIME", "ENDPOINT", "DIR", "PROTO",
	       "SRC", "DST", "VERDICT", "COUNT");
}

struct follow_state {
	struct client_buf line;
	enum out_fmt fmt;
};

static size_t follow_write(char *ptr, size_t size, size_t nmemb, void *data)
{
	struct follow_state *fs = data;
	size_t n = size * nmemb;

	if (!client_buf_write(ptr, size, nmemb, &fs->line))
		return 0;
	for (;;) {
		char *nl = fs->line.data ? memchr(fs->line.data, '\n', fs->line.len) : NULL;
		size_t l;

		if (!nl)
			break;
		*nl = '\0';
		l = (size_t)(nl - fs->line.data);
		if (l) {
			if (fs->fmt == OUT_JSON) {
				puts(fs->line.data);
			} else {
				json_t *j = json_loads(fs->line.data, 0, NULL);

				if (j)
					flow_row(j);
				json_decref(j);
			}
			fflush(stdout);
		}
		memmove(fs->line.data, nl + 1, fs->line.len - l - 1);
		fs->line.len -= l + 1;
	}
	return n;
}

static int cmd_flows(int argc, char **argv)
{
	enum { OPT_FOLLOW = 256, OPT_EP, OPT_NS, OPT_DIR, OPT_VERDICT, OPT_SINCE, OPT_LIMIT,
	       OPT_PROTO, OPT_PORT };
	static const struct option lo[] = {
		{ "follow", no_argument, NULL, OPT_FOLLOW },
		{ "endpoint", required_argument, NULL, OPT_EP },
		{ "namespace", required_argument, NULL, OPT_NS },
		{ "direction", required_argument, NULL, OPT_DIR },
		{ "verdict", required_argument, NULL, OPT_VERDICT },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "proto", required_argument, NULL, OPT_PROTO },
		{ "port", required_argument, NULL, OPT_PORT },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	char query[2048] = "", val[256];
	size_t qn = 0;
	bool follow = false;
	enum out_fmt fmt = OUT_TABLE;
	unsigned long num;
	int opt, usage, status = 1;

#define QADD(key, v)                                                                     \
	do {                                                                             \
		char *e_ = esc(v);                                                       \
		qn += (size_t)snprintf(query + qn, sizeof(query) - qn, "%s%s=%s",        \
				       qn ? "&" : "?", key, e_);                         \
		free(e_);                                                                \
	} while (0)

	opterr = 0;
	optind = 0;
	while ((opt = getopt_long(argc, argv, ":o:", lo, NULL)) != -1) {
		switch (opt) {
		case OPT_FOLLOW:
			follow = true;
			break;
		case OPT_EP:
			QADD("endpoint", optarg);
			break;
		case OPT_NS:
			QADD("namespace", optarg);
			break;
		case OPT_DIR:
			if (strcmp(optarg, "ingress") && strcmp(optarg, "egress"))
				return usage_error("flows", "--direction '%s': ingress or egress", optarg);
			QADD("direction", optarg);
			break;
		case OPT_VERDICT:
			if (strcmp(optarg, "dropped") && strcmp(optarg, "audited"))
				return usage_error("flows", "--verdict '%s': dropped or audited", optarg);
			QADD("verdict", optarg);
			break;
		case OPT_PROTO:
			QADD("proto", optarg);
			break;
		case OPT_PORT:
			if (number_parse(optarg, 0, 65535, &num) < 0)
				return usage_error("flows", "--port '%s': 0 to 65535", optarg);
			QADD("port", optarg);
			break;
		case OPT_SINCE:
			if (since_parse(optarg, val, sizeof(val)) < 0)
				return usage_error("flows", "--since '%s': e.g. 30s, 5m, 2h, 1d or an RFC 3339 time",
						   optarg);
			qn += (size_t)snprintf(query + qn, sizeof(query) - qn, "%ssince=%s", qn ? "&" : "?", val);
			break;
		case OPT_LIMIT:
			if (number_parse(optarg, 1, 1000000, &num) < 0)
				return usage_error("flows", "--limit '%s': 1 to 1000000", optarg);
			QADD("limit", optarg);
			break;
		default:
			usage = opt_output("flows", opt, argv, &fmt);
			if (usage)
				return usage;
		}
	}
#undef QADD
	usage = args_none("flows", argc, argv);
	if (usage)
		return usage;
	if (follow) {
		struct follow_state fs = { .fmt = fmt };
		char path[2200];
		long code;

		snprintf(path, sizeof(path), "/v1/flows%s%sfollow=1", query, query[0] ? "&" : "?");
		if (fmt == OUT_TABLE) {
			flow_header();
			fflush(stdout);
		}
		code = api_call("GET", path, NULL, NULL, 0, NULL, follow_write, &fs);
		if (code >= 300)
			status = api_error_print("flows", code, &fs.line);
		else if (code > 0)
			status = 0;
		free(fs.line.data);
		return status;
	} else {
		char path[2200];
		json_t *j = NULL, *f;
		size_t i;
		int r;

		snprintf(path, sizeof(path), "/v1/flows%s", query);
		r = api_get_json(path, &j);
		if (r)
			return r;
		if (fmt == OUT_JSON) {
			json_array_foreach(json_object_get(j, "flows"), i, f) {
				char *s = json_dumps(f, JSON_COMPACT);

				puts(s ? s : "{}");
				free(s);
			}
		} else {
			flow_header();
			json_array_foreach(json_object_get(j, "flows"), i, f)
				flow_row(f);
		}
		json_decref(j);
		return 0;
	}
}

/* ---- check ---- */

static int cmd_check(int argc, char **argv)
{
	enum { OPT_FROM = 256, OPT_TO, OPT_PORT };
	static const struct option lo[] = {
		{ "from", required_argument, NULL, OPT_FROM },
		{ "to", required_argument, NULL, OPT_TO },
		{ "port", required_argument, NULL, OPT_PORT },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const char *from = NULL, *to = NULL, *port = NULL;
	enum out_fmt fmt = OUT_TABLE;
	struct client_buf resp = { 0 };
	json_t *body, *j;
	char *text;
	long code;
	int opt, usage, status = 1;

	opterr = 0;
	optind = 0;
	while ((opt = getopt_long(argc, argv, ":o:", lo, NULL)) != -1) {
		switch (opt) {
		case OPT_FROM:
			from = optarg;
			break;
		case OPT_TO:
			to = optarg;
			break;
		case OPT_PORT:
			port = optarg;
			break;
		default:
			usage = opt_output("check", opt, argv, &fmt);
			if (usage)
				return usage;
		}
	}
	usage = args_none("check", argc, argv);
	if (usage)
		return usage;
	if (!from || !to || !port)
		return usage_error("check", "--from, --to and --port are required");
	body = json_pack("{ssss}", "from", from, "to", to);
	if (strchr(port, '/'))
		json_object_set_new(body, "port", json_string(port));
	else
		json_object_set_new(body, "proto", json_string(port));
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	code = api_call("POST", "/v1/check", "application/json", text, strlen(text), &resp, NULL, NULL);
	free(text);
	if (code < 0)
		goto out_free;
	if (code >= 300) {
		api_error_print("check", code, &resp);
		goto out_free;
	}
	j = json_loads(resp.data ? resp.data : "", 0, NULL);
	if (fmt == OUT_JSON) {
		json_print(j);
	} else {
		json_t *r;
		size_t i;

		printf("%s: %s -> %s %s\n", jstr(j, "verdict"), from, to, port);
		printf("  addresses %s -> %s\n", jstr(j, "src"), jstr(j, "dst"));
		json_array_foreach(json_object_get(j, "reasons"), i, r)
			printf("  %s\n", json_string_value(r));
	}
	status = json_is_true(json_object_get(j, "allowed")) ? 0 : 1;
	json_decref(j);
out_free:
	free(resp.data);
	return status;
}

/* Remove the global options (--server, --token-file, --cacert, with "=VAL"
 * or a separate VAL) from anywhere in argv. Returns the new argc, or -1. */
static int global_options_take(int argc, char **argv)
{
	static const struct { const char *name; const char **dst; } g[] = {
		{ "--server", &g_server },
		{ "--token-file", &g_token_file },
		{ "--cacert", &g_cacert },
	};
	int w = 1;

	for (int i = 1; i < argc; i++) {
		bool taken = false;

		if (strcmp(argv[i], "--") == 0) {
			while (i < argc)
				argv[w++] = argv[i++];
			break;
		}
		for (size_t k = 0; k < sizeof(g) / sizeof(g[0]) && !taken; k++) {
			size_t n = strlen(g[k].name);

			if (strcmp(argv[i], g[k].name) == 0) {
				if (i + 1 >= argc) {
					fprintf(stderr, "mseg: %s needs a value\n", g[k].name);
					return -1;
				}
				*g[k].dst = argv[++i];
				taken = true;
			} else if (strncmp(argv[i], g[k].name, n) == 0 && argv[i][n] == '=') {
				*g[k].dst = argv[i] + n + 1;
				taken = true;
			}
		}
		if (!taken)
			argv[w++] = argv[i];
	}
	argv[w] = NULL;
	return w;
}

int main(int argc, char **argv)
{
	const struct command *c;
	int status;

	argc = global_options_take(argc, argv);
	if (argc < 0)
		return EXIT_USAGE;
	if (argc < 2) {
		usage_print(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage_print(stdout);
		return 0;
	}
	c = command_find(argv[1]);
	if (!c) {
		fprintf(stderr, "mseg: unknown command '%s'; see `mseg help`\n", argv[1]);
		return EXIT_USAGE;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	status = c->run(argc - 1, argv + 1);
	curl_global_cleanup();
	return status;
}
