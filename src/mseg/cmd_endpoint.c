/* mseg endpoint add|del|label ID: change the API's inventory. Option values
 * are checked here with the library's own rules first, so an error names
 * the option (`--label 'bad key=v': ...`) rather than a place in the JSON
 * the CLI built; what msegd still refuses is mapped back the same way (the
 * body puts each option's value on a line of its own). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/client/changes.h"
#include "mseg/model/addr.h"
#include "mseg/model/names.h"
#include "mseg.h"

enum { OPT_NETNS = 256, OPT_IP, OPT_NAME, OPT_NS, OPT_LABEL, OPT_DRY };

const struct cli_option endpoint_options[] = {
	{ "netns", OPT_NETNS, required_argument, "PATH",
	  "add: the endpoint's network namespace (/run/netns/X, /proc/PID/ns/net)" },
	{ "ip", OPT_IP, required_argument, "ADDR", "add: an address (repeat for more; IPv4 or IPv6)" },
	{ "name", OPT_NAME, required_argument, "N", "add: name (default: the id)" },
	{ "namespace", OPT_NS, required_argument, "NS", "add: namespace (default \"default\")" },
	{ "label", OPT_LABEL, required_argument, "K=V", "add: a label (repeat for more)" },
	{ "dry-run", OPT_DRY, no_argument, NULL,
	  "show what would change (rules per endpoint, and the\nendpoint's own fields); apply nothing" },
	{ NULL, 0, 0, "K=V|K-", "label: set label K, or remove it (a trailing '-')" },
	CLI_OPTION_END,
};

/* The body, one value per line, and which option each line came from. */
struct ep_body {
	FILE *m;
	char *text;
	size_t len;
	unsigned line;          /* the line being written, 1-based */
	char **line_opt;        /* [line] = "--ip '10.0.0.1'" or NULL */
	size_t n_line_opt;
};

/* One line: @raw as it is, or `"KEY": A` / `A` / `A: V` (@a, @v JSON-quoted
 * here) and a comma when @comma; @opt: the option it came from. */
static int body_line(struct ep_body *b, const char *opt, const char *raw, const char *key,
		     const char *a, const char *v, bool comma)
{
	char *ja = NULL, *jv = NULL;
	char **grown;

	if (a) {
		json_t *s = json_string(a);

		ja = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
		json_decref(s);
	}
	if (v) {
		json_t *s = json_string(v);

		jv = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
		json_decref(s);
	}
	grown = realloc(b->line_opt, (b->line + 1) * sizeof(*grown));
	if (!grown || (a && !ja) || (v && !jv)) {
		if (grown)
			b->line_opt = grown;
		free(ja);
		free(jv);
		return -1;
	}
	b->line_opt = grown;
	for (; b->n_line_opt <= b->line; b->n_line_opt++)
		b->line_opt[b->n_line_opt] = NULL;
	b->line_opt[b->line] = opt ? strdup(opt) : NULL;
	if (raw)
		fputs(raw, b->m);
	else
		fprintf(b->m, "%s%s%s%s%s%s%s", key ? "\"" : "", key ? key : "", key ? "\": " : "",
			ja ? ja : "", jv ? ": " : "", jv ? jv : "", comma ? "," : "");
	fputc('\n', b->m);
	b->line++;
	free(ja);
	free(jv);
	return 0;
}

static void body_release(struct ep_body *b)
{
	if (b->m)
		fclose(b->m);
	for (size_t i = 0; i < b->n_line_opt; i++)
		free(b->line_opt[i]);
	free(b->line_opt);
	free(b->text);
}

/* "--label 'k=v'" */
static char *opt_text_new(const char *opt, const char *value)
{
	char *s;

	return asprintf(&s, "--%s '%s'", opt, value) < 0 ? NULL : s;
}

/* Split "k=v" (@ret_value the value) or, with @removal_ok, "k-" (@ret_value
 * NULL). 0, or the usage exit status after naming @what. */
static int label_arg_parse(const char *what, const char *arg, bool removal_ok, char **ret_key,
			   const char **ret_value)
{
	const char *eq = strchr(arg, '=');
	size_t klen = eq ? (size_t)(eq - arg) : strlen(arg);

	*ret_key = NULL;
	*ret_value = eq ? eq + 1 : NULL;
	if (!eq && removal_ok && klen > 1 && arg[klen - 1] == '-')
		klen--;
	else if (!eq || eq == arg)
		return usage_error("endpoint", "%s '%s': expected KEY=VALUE%s", what, arg,
				   removal_ok ? " or KEY- (remove it)" : "");
	*ret_key = strndup(arg, klen);
	if (!*ret_key) {
		fprintf(stderr, "mseg: out of memory\n");
		return 1;
	}
	if (!name_is_label_key(*ret_key))
		return usage_error("endpoint", "%s '%s': '%s' is not a valid label key (%s)", what,
				   arg, *ret_key, NAME_LABEL_KEY_HINT);
	if (*ret_value && !name_is_label_value(*ret_value))
		return usage_error("endpoint", "%s '%s': '%s' is not a valid label value (%s)", what,
				   arg, *ret_value, NAME_LABEL_VALUE_HINT);
	return 0;
}

/* An error answer of msegd: positions in the body become the option. */
static int endpoint_error_print(const char *what, long code, const struct client_buf *resp,
				const struct ep_body *b)
{
	json_t *j = resp->data ? json_loads(resp->data, 0, NULL) : NULL;
	json_int_t line = j ? json_integer_value(json_object_get(j, "line")) : 0;
	int status;

	if (b && line > 0 && (size_t)line < b->n_line_opt && b->line_opt[line] && code < 500) {
		/* a value of an option msegd refused: the same as one refused here */
		fprintf(stderr, "mseg endpoint: %s: %s\n", b->line_opt[line], jstr(j, "error"));
		status = EXIT_USAGE;
	} else if (line > 0 && code < 500) {
		/* a place in what the CLI built means nothing to the user */
		fprintf(stderr, "mseg: %s: %s\n", what, jstr(j, "error"));
		status = 1;
	} else {
		status = api_error_print(what, code, resp);
	}
	json_decref(j);
	return status;
}

/* The endpoint as msegd has it now (*@ret NULL when there is none). 0 or
 * an exit status. */
static int endpoint_current(const char *id, json_t **ret)
{
	char *path = api_path_new("/v1/endpoints", id, NULL, NULL);
	struct client_buf resp = { 0 };
	long code;
	int status = 1;

	*ret = NULL;
	if (!path) {
		fprintf(stderr, "mseg: out of memory\n");
		return 1;
	}
	code = api_call("GET", path, NULL, NULL, 0, &resp, NULL, NULL);
	if (code == 404) {
		status = 0;
	} else if (code >= 300) {
		status = api_error_print(id, code, &resp);
	} else if (code > 0) {
		*ret = json_loads(resp.data ? resp.data : "", 0, NULL);
		status = *ret ? 0 : 1;
		if (!*ret)
			fprintf(stderr, "mseg: %s: bad answer from msegd\n", path);
	}
	free(resp.data);
	free(path);
	return status;
}

/* "  labels: app=web -> app=api" for each field that would change. */
static void field_changes_print(const json_t *before, const json_t *after)
{
	json_t *c = client_endpoint_changes(before, after), *v;
	size_t i;

	json_array_foreach(c, i, v)
		printf("  %s\n", json_string_value(v));
	json_decref(c);
}

/* Send @method @body (of @b, or NULL) and print the outcome; for a dry run
 * with @after, also the endpoint's own field changes. */
static int endpoint_send(const char *method, const char *id, bool dry_run, const char *body,
			 const struct ep_body *b, const json_t *after)
{
	char *path = api_path_new("/v1/endpoints", id, NULL, dry_run ? "?dry_run=1" : NULL);
	json_t *before = NULL;
	struct client_buf resp = { 0 };
	char *what = NULL;
	long code;
	int status = 1;

	if (!path || asprintf(&what, "endpoint %s", id) < 0) {
		fprintf(stderr, "mseg: out of memory\n");
		what = NULL;
		goto out_free;
	}
	if (dry_run && after && (status = endpoint_current(id, &before)) != 0)
		goto out_free;
	code = api_call(method, path, body ? "application/json" : NULL, body, body ? strlen(body) : 0,
			&resp, NULL, NULL);
	if (code >= 300) {
		status = endpoint_error_print(what, code, &resp, b);
		goto out_free;
	}
	status = mutation_print(what, strcmp(method, "DELETE") ? id : NULL, code, &resp, dry_run,
				OUT_TABLE);
	if (status == 0 && dry_run && after)
		field_changes_print(before, after);
out_free:
	json_decref(before);
	free(resp.data);
	free(what);
	free(path);
	return status;
}

struct ep_add {
	const char *netns, *name, *ns;
	const char **ips;
	size_t n_ips;
	const char **labels;   /* "k=v" as given */
	size_t n_labels;
};

/* The body of PUT /v1/endpoints/ID (each value on its own line) and, in
 * @after, the same as the fields GET would show. */
static int endpoint_body_build(const char *id, const struct ep_add *a, struct ep_body *b,
			       json_t *after)
{
	json_t *ips = json_array(), *labels = json_object();
	char *opt = NULL;
	int r = -1;

	b->m = open_memstream(&b->text, &b->len);
	b->line = 1;
	if (!b->m || !ips || !labels)
		goto out_free;
	if (body_line(b, NULL, "{", NULL, NULL, NULL, false) < 0)
		goto out_free;
	if (!(opt = opt_text_new("netns", a->netns)) ||
	    body_line(b, opt, NULL, "netns", a->netns, NULL, true) < 0)
		goto out_free;
	free(opt);
	opt = NULL;
	if (a->name && (!(opt = opt_text_new("name", a->name)) ||
			body_line(b, opt, NULL, "name", a->name, NULL, true) < 0))
		goto out_free;
	free(opt);
	opt = NULL;
	if (a->ns && (!(opt = opt_text_new("namespace", a->ns)) ||
		      body_line(b, opt, NULL, "namespace", a->ns, NULL, true) < 0))
		goto out_free;
	free(opt);
	opt = NULL;
	if (body_line(b, NULL, "\"ips\": [", NULL, NULL, NULL, false) < 0)
		goto out_free;
	for (size_t i = 0; i < a->n_ips; i++) {
		if (!(opt = opt_text_new("ip", a->ips[i])) ||
		    body_line(b, opt, NULL, NULL, a->ips[i], NULL, i + 1 < a->n_ips) < 0)
			goto out_free;
		free(opt);
		opt = NULL;
		json_array_append_new(ips, json_string(a->ips[i]));
	}
	if (body_line(b, NULL, "],", NULL, NULL, NULL, false) < 0 ||
	    body_line(b, NULL, "\"labels\": {", NULL, NULL, NULL, false) < 0)
		goto out_free;
	for (size_t i = 0; i < a->n_labels; i++) {
		const char *eq = strchr(a->labels[i], '=');
		char *k = strndup(a->labels[i], (size_t)(eq - a->labels[i]));

		if (!k || !(opt = opt_text_new("label", a->labels[i])) ||
		    body_line(b, opt, NULL, NULL, k, eq + 1, i + 1 < a->n_labels) < 0) {
			free(k);
			goto out_free;
		}
		json_object_set_new(labels, k, json_string(eq + 1));
		free(k);
		free(opt);
		opt = NULL;
	}
	if (body_line(b, NULL, "}", NULL, NULL, NULL, false) < 0 || body_line(b, NULL, "}", NULL, NULL, NULL, false) < 0)
		goto out_free;
	if (fflush(b->m) != 0)
		goto out_free;
	json_object_set_new(after, "name", json_string(a->name ? a->name : id));
	json_object_set_new(after, "namespace", json_string(a->ns ? a->ns : "default"));
	json_object_set_new(after, "netns", json_string(a->netns));
	json_object_set(after, "ips", ips);
	json_object_set(after, "labels", labels);
	r = 0;
out_free:
	free(opt);
	json_decref(ips);
	json_decref(labels);
	return r;
}

static int endpoint_add(const char *id, const struct ep_add *a, bool dry_run)
{
	struct ep_body b = { 0 };
	json_t *after = json_object();
	int status = 1;

	if (!after || endpoint_body_build(id, a, &b, after) < 0) {
		fprintf(stderr, "mseg: out of memory\n");
		goto out_free;
	}
	status = endpoint_send("PUT", id, dry_run, b.text, &b, after);
out_free:
	body_release(&b);
	json_decref(after);
	return status;
}

/* mseg endpoint label ID K=V... K-...: PATCH the labels. */
static int endpoint_label(const char *id, int n, char **args, bool dry_run)
{
	json_t *patch = json_object(), *labels = json_object(), *before = NULL, *after = NULL;
	char *text = NULL;
	int status = 1;

	if (!patch || !labels)
		goto out_oom;
	for (int i = 0; i < n; i++) {
		const char *value;
		char *key;

		status = label_arg_parse("label", args[i], true, &key, &value);
		if (status) {
			free(key);
			goto out_free;
		}
		json_object_set_new(labels, key, value ? json_string(value) : json_null());
		free(key);
	}
	status = 1;
	json_object_set(patch, "labels", labels);
	text = json_dumps(patch, JSON_COMPACT);
	if (!text)
		goto out_oom;
	if (dry_run) {
		/* the labels as they would be, for the field changes */
		const char *k;
		json_t *v, *cur;

		status = endpoint_current(id, &before);
		if (status)
			goto out_free;
		status = 1;
		cur = json_object_get(before, "labels");
		after = json_pack("{so}", "labels", cur ? json_deep_copy(cur) : json_object());
		if (!after)
			goto out_oom;
		json_object_foreach(labels, k, v) {
			if (json_is_null(v))
				json_object_del(json_object_get(after, "labels"), k);
			else
				json_object_set(json_object_get(after, "labels"), k, v);
		}
	}
	status = endpoint_send("PATCH", id, dry_run, text, NULL, after);
	goto out_free;
out_oom:
	fprintf(stderr, "mseg: out of memory\n");
	status = 1;
out_free:
	free(text);
	json_decref(before);
	json_decref(after);
	json_decref(labels);
	json_decref(patch);
	return status;
}

int cmd_endpoint(int argc, char **argv)
{
	struct ep_add a = { 0 };
	bool dry_run = false;
	const char *sub;
	struct cli_parse p;
	int opt, status;

	if (argc < 2 || (strcmp(argv[1], "add") && strcmp(argv[1], "del") && strcmp(argv[1], "label")))
		return usage_error("endpoint", "expected 'add ID ...', 'del ID' or 'label ID K=V...'");
	sub = argv[1];
	argc--;
	argv++;
	a.ips = calloc((size_t)argc, sizeof(*a.ips));
	a.labels = calloc((size_t)argc, sizeof(*a.labels));
	if (!a.ips || !a.labels) {
		fprintf(stderr, "mseg: out of memory\n");
		status = 1;
		goto out_free;
	}
	status = cli_parse_begin(&p, "endpoint", argc, argv);
	if (status)
		goto out_free;
	while (status == 0 && (opt = cli_parse_next(&p, argc, argv)) != -1) {
		struct mseg_addr addr;
		const char *value;
		char *key;

		switch (opt) {
		case OPT_NETNS:
			a.netns = optarg;
			if (optarg[0] != '/')
				status = usage_error("endpoint", "--netns '%s': expected an absolute path",
						     optarg);
			break;
		case OPT_IP:
			a.ips[a.n_ips++] = optarg;
			if (addr_parse(optarg, &addr) < 0)
				status = usage_error("endpoint", "--ip '%s': not an IPv4 or IPv6 address",
						     optarg);
			break;
		case OPT_NAME:
			a.name = optarg;
			if (!name_is_endpoint_name(optarg))
				status = usage_error("endpoint", "--name '%s': %s", optarg,
						     NAME_ENDPOINT_NAME_HINT);
			break;
		case OPT_NS:
			a.ns = optarg;
			if (!name_is_dns_label(optarg))
				status = usage_error("endpoint", "--namespace '%s': %s", optarg,
						     NAME_DNS_LABEL_HINT);
			break;
		case OPT_LABEL:
			a.labels[a.n_labels++] = optarg;
			status = label_arg_parse("--label", optarg, false, &key, &value);
			free(key);
			break;
		case OPT_DRY:
			dry_run = true;
			break;
		default:
			status = usage_error("endpoint", "bad option '%s'", argv[optind - 1]);
		}
	}
	if (status)
		goto out_free;
	if (optind >= argc) {
		status = usage_error("endpoint", "expected an endpoint ID");
		goto out_free;
	}
	if (!name_is_endpoint_id(argv[optind])) {
		status = usage_error("endpoint", "endpoint id '%s': %s", argv[optind],
				     NAME_ENDPOINT_ID_HINT);
		goto out_free;
	}
	if (strcmp(sub, "label") == 0) {
		if (a.netns || a.n_ips || a.name || a.ns || a.n_labels)
			status = usage_error("endpoint", "label takes K=V and K- arguments, not add's options");
		else if (argc - optind < 2)
			status = usage_error("endpoint", "label needs at least one K=V or K-");
		else
			status = endpoint_label(argv[optind], argc - optind - 1, argv + optind + 1,
						dry_run);
		goto out_free;
	}
	if (argc - optind != 1) {
		status = usage_error("endpoint", "unexpected argument '%s'", argv[optind + 1]);
		goto out_free;
	}
	if (strcmp(sub, "del") == 0) {
		status = endpoint_send("DELETE", argv[optind], dry_run, NULL, NULL, NULL);
		goto out_free;
	}
	if (!a.netns || !a.n_ips) {
		status = usage_error("endpoint", "add needs --netns PATH and at least one --ip ADDR");
		goto out_free;
	}
	status = endpoint_add(argv[optind], &a, dry_run);
out_free:
	free(a.ips);
	free(a.labels);
	return status;
}
