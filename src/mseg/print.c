/* Everything mseg prints about msegd's answers, in one place: the tables
 * for people, JSON for scripts, and YAML (libyaml's emitter, in the
 * library: mseg/client/yaml_out.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/client/nft_text.h"
#include "mseg/client/yaml_out.h"
#include "mseg.h"

int out_parse(const char *s, enum out_fmt *ret, bool yaml_ok)
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

int opt_output(const char *cmd, int opt, char **argv, enum out_fmt *fmt)
{
	if (opt != 'o')
		return usage_error(cmd, "bad option '%s'", argv[optind - 1]);
	if (out_parse(optarg, fmt, false) < 0)
		return usage_error(cmd, "-o '%s': table or json", optarg);
	return 0;
}

const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

long long jint(const json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

const char *jbool(const json_t *o, const char *key)
{
	return json_is_true(json_object_get(o, key)) ? "yes" : "no";
}

/* "a,b,c" from an array of strings ("-" when empty), however long. */
static void strlist_print(const json_t *arr)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
		printf("%s%s", i ? "," : "", json_string_value(v) ? json_string_value(v) : "?");
	if (!json_array_size(arr))
		putchar('-');
}

/* The same as a string for a padded column; NULL when out of memory. */
static char *strlist_new(const json_t *arr)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	if (!m)
		return NULL;
	{
		size_t i;
		json_t *v;

		json_array_foreach(arr, i, v)
			fprintf(m, "%s%s", i ? "," : "", json_string_value(v) ? json_string_value(v) : "?");
		if (!json_array_size(arr))
			fputc('-', m);
	}
	if (fclose(m) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

void print_json(const json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	putchar('\n');
}

void print_json_line(const json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	puts(s ? s : "{}");
	free(s);
}

void print_yaml(const json_t *j)
{
	fflush(stdout);
	if (yaml_out_print(stdout, j) < 0)
		fprintf(stderr, "mseg: cannot write YAML\n");
}

void print_status(const json_t *j)
{
	json_t *p = json_object_get(j, "policies"), *e = json_object_get(j, "endpoints"),
	       *k = json_object_get(j, "kernel");

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
	printf("listening:   ");
	strlist_print(json_object_get(j, "listen"));
	putchar('\n');
}

void print_dry_run(const json_t *j)
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
	print_replay(json_object_get(j, "replay"));
}

/* The replay of a dry run: one line per endpoint, direction, peer,
 * protocol and port whose verdict would change. */
void print_replay(const json_t *rp)
{
	json_t *g;
	size_t i;

	if (!rp)
		return;
	printf("  replay: %lld flow record(s), %lld accepted-connection summaries; "
	       "%lld group(s) would change\n",
	       jint(rp, "records"), jint(rp, "summaries"), jint(rp, "groups_total"));
	if (!json_array_size(json_object_get(rp, "groups")))
		return;
	printf("    %-20s %-8s %-40s %-10s %5s  %-8s    %-8s %s\n", "ENDPOINT", "DIR", "PEER",
	       "PROTO", "PORT", "FROM", "TO", "COUNT");
	json_array_foreach(json_object_get(rp, "groups"), i, g) {
		char port[8] = "-";
		bool acc = json_object_get(g, "connections") != NULL;

		if (json_object_get(g, "port"))
			snprintf(port, sizeof(port), "%lld", jint(g, "port"));
		printf("    %-20s %-8s %-40s %-10s %5s  %-8s -> %-8s %lld %s\n", jstr(g, "endpoint"),
		       jstr(g, "direction"), jstr(g, "peer"), jstr(g, "proto"), port,
		       jstr(g, "from"), jstr(g, "to"),
		       acc ? jint(g, "connections") : jint(g, "records"),
		       acc ? "connections" : "flow records");
	}
}

void print_policies(const json_t *arr)
{
	size_t i;
	json_t *p;

	printf("%-16s %-24s %-13s %-8s %-16s %5s %6s  %s\n", "NAMESPACE", "NAME", "KIND", "MODE",
	       "ISOLATION", "RULES", "COVERS", "SOURCE");
	json_array_foreach(arr, i, p) {
		char *iso = strlist_new(json_object_get(p, "isolation"));

		printf("%-16s %-24s %-13s %-8s %-16s %5zu %6lld  %s%s\n", jstr(p, "namespace"),
		       jstr(p, "name"), jstr(p, "kind"), jstr(p, "mode"), iso ? iso : "?",
		       json_array_size(json_object_get(p, "rules")), jint(p, "covers"), jstr(p, "source"),
		       json_object_get(p, "shadowed_by") ? " (shadowed)" : "");
		free(iso);
	}
}

void print_policy_detail(const json_t *p)
{
	json_t *arr = json_array(), *ids, *w;
	const char *group;
	size_t i;

	json_array_append(arr, (json_t *)p);
	print_policies(arr);
	json_decref(arr);
	printf("\ngroups:\n");
	json_object_foreach(json_object_get(p, "groups"), group, ids) {
		char *list = strlist_new(ids);

		printf("  %-22s %s\n", group, json_array_size(ids) ? (list ? list : "?") :
		       "(no endpoint)");
		free(list);
	}
	if (!json_object_size(json_object_get(p, "groups")))
		printf("  (none)\n");
	json_array_foreach(json_object_get(p, "warnings"), i, w)
		printf("warning: %s\n", json_string_value(w));
}

/* "enforce" when both directions say it, "in:learn,out:-" otherwise, "-"
 * when neither is isolated. */
static const char *endpoint_mode_text(const json_t *e, char *buf, size_t size)
{
	const json_t *m = json_object_get(e, "mode");
	const char *in = json_string_value(json_object_get(m, "ingress"));
	const char *out = json_string_value(json_object_get(m, "egress"));

	if (!in && !out)
		snprintf(buf, size, "-");
	else if (in && out && strcmp(in, out) == 0)
		snprintf(buf, size, "%s", in);
	else
		snprintf(buf, size, "in:%s,out:%s", in ? in : "-", out ? out : "-");
	return buf;
}

void print_endpoints(const json_t *arr)
{
	size_t i;
	json_t *e;

	printf("%-20s %-14s %-16s %-32s %-10s %-14s %s\n", "ID", "NAMESPACE", "NAME", "IPS",
	       "PROGRAMMED", "MODE", "SOURCE");
	json_array_foreach(arr, i, e) {
		char *ips = strlist_new(json_object_get(e, "ips"));
		const json_t *pr = json_object_get(e, "programmed");
		char mode[64];

		printf("%-20s %-14s %-16s %-32s %-10s %-14s %s\n", jstr(e, "id"), jstr(e, "namespace"),
		       jstr(e, "name"), ips ? ips : "?", !pr ? "-" : json_is_true(pr) ? "yes" : "NO",
		       endpoint_mode_text(e, mode, sizeof(mode)), jstr(e, "source"));
		if (json_object_get(e, "learn_until"))
			printf("  learning until %s\n", jstr(e, "learn_until"));
		free(ips);
		if (json_object_get(e, "error"))
			printf("  error: %s\n", jstr(e, "error"));
	}
}

/* The accepted-connection summaries, one row per endpoint, direction, peer
 * and port. */
void print_accepted(const json_t *arr)
{
	size_t i, k;
	json_t *e, *a;

	printf("%-20s %-8s %-40s %-12s %11s %-24s %s\n", "ENDPOINT", "DIR", "PEER", "PORT",
	       "CONNECTIONS", "FIRST SEEN", "LAST SEEN");
	json_array_foreach(arr, i, e) {
		json_array_foreach(json_object_get(e, "accepted"), k, a) {
			char port[32];

			if (json_object_get(a, "port"))
				snprintf(port, sizeof(port), "%s/%lld", jstr(a, "proto"),
					 (long long)json_integer_value(json_object_get(a, "port")));
			else
				snprintf(port, sizeof(port), "%s", jstr(a, "proto"));
			printf("%-20s %-8s %-40s %-12s %11lld %-24s %s\n", jstr(e, "endpoint"),
			       jstr(a, "direction"), jstr(a, "peer"), port,
			       (long long)json_integer_value(json_object_get(a, "connections")),
			       jstr(a, "first_seen"), jstr(a, "last_seen"));
		}
		if (json_array_size(json_object_get(e, "learning")) &&
		    json_is_string(json_object_get(e, "learn_until")))
			printf("  %s: learning until %s\n", jstr(e, "endpoint"), jstr(e, "learn_until"));
	}
}

void print_namespaces(const json_t *arr)
{
	size_t i;
	json_t *n;

	printf("%-24s %-9s %-40s %s\n", "NAME", "ENDPOINTS", "LABELS", "SOURCE");
	json_array_foreach(arr, i, n) {
		const char *key;
		json_t *v;
		char labels[512] = "";
		size_t len = 0;

		/* the name label is always there: shown in the NAME column */
		json_object_foreach(json_object_get(n, "labels"), key, v) {
			if (strcmp(key, "kubernetes.io/metadata.name") == 0 || len >= sizeof(labels))
				continue;
			len += (size_t)snprintf(labels + len, sizeof(labels) - len, "%s%s=%s",
						len ? "," : "", key, json_string_value(v));
		}
		printf("%-24s %-9lld %-40s %s\n", jstr(n, "name"), jint(n, "endpoints"),
		       labels[0] ? labels : "-", jstr(n, "source"));
	}
}

void print_rules(const json_t *arr)
{
	size_t i, stale = 0;
	json_t *e;

	printf("%-20s %-10s %-9s %-16s %-16s %s\n", "ENDPOINT", "PROGRAMMED", "STATE", "INGRESS",
	       "EGRESS", "DIFFERENCES");
	json_array_foreach(arr, i, e) {
		json_t *iso = json_object_get(e, "isolated"), *ent = json_object_get(e, "entries");
		char in[32] = "open", eg[32] = "open";
		bool is_stale = json_is_true(json_object_get(e, "stale"));

		if (json_is_true(json_object_get(iso, "ingress")))
			snprintf(in, sizeof(in), "%lld entries", jint(ent, "ingress"));
		if (json_is_true(json_object_get(iso, "egress")))
			snprintf(eg, sizeof(eg), "%lld entries", jint(ent, "egress"));
		printf("%-20s %-10s %-9s %-16s %-16s %lld%s\n", jstr(e, "endpoint"), jbool(e, "programmed"),
		       jstr(e, "state"), in, eg, jint(e, "n_differences"), is_stale ? "  STALE" : "");
		stale += is_stale;
	}
	if (stale)
		printf("STALE: read back before msegd last programmed it (or not lately); "
		       "`mseg get rules --fresh` reads now\n");
}

void print_rules_detail(const json_t *e, bool all)
{
	const char *table = jstr(e, "table");
	char *compact = NULL;
	size_t i, dropped = 0;
	json_t *d;

	printf("# endpoint %s netns %s: %s, %s\n", jstr(e, "endpoint"), jstr(e, "netns"),
	       json_is_true(json_object_get(e, "programmed")) ? "programmed" : "NOT programmed",
	       jstr(e, "state"));
	if (json_object_get(e, "readback_error"))
		printf("# read-back failed: %s\n", jstr(e, "readback_error"));
	json_array_foreach(json_object_get(e, "differences"), i, d)
		printf("# differs: %s\n", json_string_value(d));
	if (!all)
		compact = client_nft_text_compact(table, &dropped);
	if (dropped)
		printf("# %zu empty set%s left out (--all shows them)\n", dropped, dropped == 1 ? "" : "s");
	fputs(compact ? compact : table, stdout);
	free(compact);
}

void print_flow_header(bool updates)
{
	printf("%s%-24s %-16s %-8s %-6s %-28s %-28s %-8s %6s %6s\n", updates ? "  " : "", "TIME",
	       "ENDPOINT", "DIR", "PROTO", "SRC", "DST", "VERDICT", "UID", "COUNT");
}

/* "ADDR:PORT", "ADDR:*N" for a record of N source ports, or "ADDR"
 * without a port; NULL when out of memory */
static char *flow_addr_new(const json_t *f, const char *addr, const char *port, const char *many)
{
	char *s;
	int n = many && jint(f, many) > 1 ?
		asprintf(&s, "%s:*%lld", jstr(f, addr), jint(f, many)) :
		json_object_get(f, port) ?
		asprintf(&s, "%s:%lld", jstr(f, addr), jint(f, port)) :
		asprintf(&s, "%s", jstr(f, addr));

	return n < 0 ? NULL : s;
}

void print_flow_row(const json_t *f, const char *mark)
{
	const json_t *ep = json_object_get(f, "endpoint");
	char *src = flow_addr_new(f, "src", "sport", "sports"), *dst = flow_addr_new(f, "dst", "dport", NULL);
	char uid[16] = "-";

	if (json_is_integer(json_object_get(f, "uid")))
		snprintf(uid, sizeof(uid), "%lld", jint(f, "uid"));
	printf("%s%-24s %-16s %-8s %-6s %-28s %-28s %-8s %6s %6lld\n", mark ? mark : "",
	       jstr(f, "time"), jstr(ep, "id"), jstr(f, "direction"),
	       json_is_string(json_object_get(f, "proto")) ? jstr(f, "proto") : "?",
	       src ? src : "?", dst ? dst : "?", jstr(f, "verdict"), uid, jint(f, "count"));
	free(src);
	free(dst);
}

/* "policy shop/a" or "policies shop/a, shop/b": what isolates a refusing
 * side in audit mode. */
static void audit_policies_print(const json_t *j)
{
	static const char *const sides[] = { "egress", "ingress" };
	size_t n = 0, i;
	json_t *v;

	for (int s = 0; s < 2; s++) {
		const json_t *side = json_object_get(j, sides[s]);

		if (json_is_true(json_object_get(side, "allowed")) ||
		    strcmp(jstr(side, "mode"), "audit") != 0)
			continue;
		json_array_foreach(json_object_get(side, "isolated_by"), i, v)
			printf("%s%s", n++ ? ", " : "", json_string_value(v));
	}
	if (!n)
		printf("?");
}

void print_check(const json_t *j, const char *from, const char *to, const char *port)
{
	json_t *r;
	size_t i;

	if (strcmp(jstr(j, "verdict"), "audited") == 0) {
		printf("audited: %s -> %s %s (policy ", from, to, port);
		audit_policies_print(j);
		printf(" is in audit mode: the packet passes and is recorded)\n");
	} else {
		printf("%s: %s -> %s %s\n", jstr(j, "verdict"), from, to, port);
	}
	printf("  addresses %s -> %s\n", jstr(j, "src"), jstr(j, "dst"));
	json_array_foreach(json_object_get(j, "reasons"), i, r)
		printf("  %s\n", json_string_value(r));
}
