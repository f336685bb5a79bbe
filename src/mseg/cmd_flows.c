/* mseg flows: flow records (dropped or audited traffic), newest last;
 * --follow streams them. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mseg/client/query.h"
#include "mseg.h"

/* The longest query sent, encoded; longer is refused before sending. */
#define FLOWS_QUERY_MAX 8192

enum { OPT_FOLLOW = 256, OPT_UPDATES, OPT_EP, OPT_NS, OPT_DIR, OPT_VERDICT, OPT_SINCE, OPT_LIMIT,
       OPT_PROTO, OPT_PORT };

const struct cli_option flows_options[] = {
	{ "follow", OPT_FOLLOW, no_argument, NULL,
	  "keep printing new records as they arrive (until\ninterrupted, or msegd stops: exit 1)" },
	{ "updates", OPT_UPDATES, no_argument, NULL,
	  "--follow: also records seen before whose count grew,\nmarked '~' (json: \"update\": true)" },
	{ "endpoint", OPT_EP, required_argument, "ID", "only this endpoint" },
	{ "namespace", OPT_NS, required_argument, "NS", "only endpoints of this namespace" },
	{ "direction", OPT_DIR, required_argument, "D", "ingress or egress" },
	{ "verdict", OPT_VERDICT, required_argument, "V", "dropped or audited" },
	{ "proto", OPT_PROTO, required_argument, "P", "tcp, udp, icmp, icmpv6, sctp or a number" },
	{ "port", OPT_PORT, required_argument, "N", "destination port" },
	{ "since", OPT_SINCE, required_argument, "T", "30s, 5m, 2h, 1d ago, or an RFC 3339 time" },
	{ "limit", OPT_LIMIT, required_argument, "N", "only the newest N records" },
	{ "output", 'o', required_argument, "table|json", "output format (json: one object per line)" },
	CLI_OPTION_END,
};


/* The record ids a follow has shown, sorted: ids mostly come in rising
 * order, so adding is an append. */
struct id_set {
	uint64_t *ids;
	size_t n, cap;
};

/* true when @id was there; otherwise adds it (false; also when out of
 * memory: the record is then shown as new again later) */
static bool id_set_test_add(struct id_set *s, uint64_t id)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->ids[mid] == id)
			return true;
		if (s->ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 256;
		uint64_t *g = realloc(s->ids, cap * sizeof(*g));

		if (!g)
			return false;
		s->ids = g;
		s->cap = cap;
	}
	memmove(s->ids + lo + 1, s->ids + lo, (s->n - lo) * sizeof(*s->ids));
	s->ids[lo] = id;
	s->n++;
	return false;
}

struct follow_state {
	struct client_buf line;
	enum out_fmt fmt;
	bool updates;
	struct id_set seen;
};

static void follow_record(struct follow_state *fs, const char *text)
{
	json_t *j = json_loads(text, 0, NULL);
	json_int_t id = json_integer_value(json_object_get(j, "id"));
	bool update;

	if (!j)
		return;
	update = id > 0 && id_set_test_add(&fs->seen, (uint64_t)id);
	if (update && !fs->updates)
		goto out_decref;
	if (fs->fmt == OUT_JSON) {
		if (update)
			json_object_set_new(j, "update", json_true());
		print_json_line(j);
	} else {
		print_flow_row(j, !fs->updates ? NULL : update ? "~ " : "  ");
	}
	fflush(stdout);
out_decref:
	json_decref(j);
}

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
		if (l)
			follow_record(fs, fs->line.data);
		memmove(fs->line.data, nl + 1, fs->line.len - l - 1);
		fs->line.len -= l + 1;
	}
	return n;
}

static int flows_follow(const char *path, enum out_fmt fmt, bool updates)
{
	struct follow_state fs = { .fmt = fmt, .updates = updates };
	bool cut = false;   /* either way the stream ended: same message */
	long code;
	int status = 1;

	if (fmt == OUT_TABLE) {
		print_flow_header(updates);
		fflush(stdout);
	}
	code = api_stream(path, follow_write, &fs, &cut);
	if (code >= 300)
		status = api_error_print("flows", code, &fs.line);
	else if (code > 0)
		/* msegd ends a follow only when it stops (cleanly, or @cut
		 * in the middle of a chunk) */
		fprintf(stderr, "mseg flows: msegd closed the stream\n");
	free(fs.line.data);
	free(fs.seen.ids);
	return status;
}

static int flows_list(const char *path, enum out_fmt fmt)
{
	json_t *j = NULL, *f;
	size_t i;
	int r;

	r = api_get_json(path, &j);
	if (r)
		return r;
	if (fmt == OUT_JSON) {
		json_array_foreach(json_object_get(j, "flows"), i, f)
			print_json_line(f);
	} else {
		print_flow_header(false);
		json_array_foreach(json_object_get(j, "flows"), i, f)
			print_flow_row(f, NULL);
	}
	json_decref(j);
	return 0;
}

int cmd_flows(int argc, char **argv)
{
	struct client_query q;
	struct cli_parse p;
	bool follow = false, updates = false;
	enum out_fmt fmt = OUT_TABLE;
	const char *since;
	char since_buf[32], *path = NULL;
	unsigned long num;
	int opt, status;

	status = cli_parse_begin(&p, "flows", argc, argv);
	if (status)
		return status;
	if (client_query_init(&q, FLOWS_QUERY_MAX) < 0) {
		fprintf(stderr, "mseg flows: out of memory\n");
		return 1;
	}
	while (status == 0 && (opt = cli_parse_next(&p, argc, argv)) != -1) {
		switch (opt) {
		case OPT_FOLLOW:
			follow = true;
			break;
		case OPT_UPDATES:
			updates = true;
			break;
		case OPT_EP:
			status = cli_query_add("flows", FLOWS_QUERY_MAX, &q, "endpoint", optarg);
			break;
		case OPT_NS:
			status = cli_query_add("flows", FLOWS_QUERY_MAX, &q, "namespace", optarg);
			break;
		case OPT_DIR:
			if (strcmp(optarg, "ingress") && strcmp(optarg, "egress"))
				status = usage_error("flows", "--direction '%s': ingress or egress", optarg);
			else
				status = cli_query_add("flows", FLOWS_QUERY_MAX, &q, "direction", optarg);
			break;
		case OPT_VERDICT:
			if (strcmp(optarg, "dropped") && strcmp(optarg, "audited"))
				status = usage_error("flows", "--verdict '%s': dropped or audited", optarg);
			else
				status = cli_query_add("flows", FLOWS_QUERY_MAX, &q, "verdict", optarg);
			break;
		case OPT_PROTO:
			status = cli_query_add("flows", FLOWS_QUERY_MAX, &q, "proto", optarg);
			break;
		case OPT_PORT:
			if (number_parse(optarg, 0, 65535, &num) < 0)
				status = usage_error("flows", "--port '%s': 0 to 65535", optarg);
			else
				status = cli_query_add("flows", FLOWS_QUERY_MAX, &q, "port", optarg);
			break;
		case OPT_SINCE:
			since = cli_since_parse(optarg, since_buf, sizeof(since_buf));
			if (!since)
				status = usage_error("flows", "--since '%s': e.g. 30s, 5m, 2h, 1d or an RFC 3339 time",
						     optarg);
			else
				status = cli_query_add("flows", FLOWS_QUERY_MAX, &q, "since", since);
			break;
		case OPT_LIMIT:
			if (number_parse(optarg, 1, 1000000, &num) < 0)
				status = usage_error("flows", "--limit '%s': 1 to 1000000", optarg);
			else
				status = cli_query_add("flows", FLOWS_QUERY_MAX, &q, "limit", optarg);
			break;
		default:
			status = opt_output("flows", opt, argv, &fmt);
		}
	}
	if (status == 0)
		status = args_none("flows", argc, argv);
	if (status == 0 && updates && !follow)
		status = usage_error("flows", "--updates is for --follow");
	if (status == 0 && follow)
		status = cli_query_add("flows", FLOWS_QUERY_MAX, &q, "follow", "1");
	if (status)
		goto out_release;
	if (client_query_path(&q, "/v1/flows", &path) < 0) {
		fprintf(stderr, "mseg flows: out of memory\n");
		status = 1;
		goto out_release;
	}
	status = follow ? flows_follow(path, fmt, updates) : flows_list(path, fmt);
	free(path);
out_release:
	client_query_release(&q);
	return status;
}
