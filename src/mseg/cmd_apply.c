/* mseg apply: create or replace the policies of a file or directory
 * through msegd, one document per request (each item of a List too). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mseg/model/policy.h"
#include "mseg/util/err.h"
#include "mseg.h"

enum { OPT_DRY = 256, OPT_REPLAY };

const struct cli_option apply_options[] = {
	{ "file", 'f', required_argument, "FILE|DIR",
	  "policy file, or directory of *.yaml, *.yml, *.json" },
	{ "dry-run", OPT_DRY, no_argument, NULL, "show what would change per endpoint; apply nothing" },
	{ "replay", OPT_REPLAY, no_argument, NULL,
	  "with --dry-run: which recorded flows and accepted connections would change verdict" },
	{ "output", 'o', required_argument, "table|json", "output format (default table)" },
	CLI_OPTION_END,
};

/* One document of a file, as the parser delimited it (a `---` inside a
 * block scalar does not split); an item of a List as a document of its
 * own. */
struct doc_piece {
	const char *text;
	size_t len;
	unsigned first_line;     /* in the file, of the piece's line 1 + extra_lines */
	unsigned extra_lines;    /* lines before the file's text (apiVersion, kind) */
	unsigned col_shift;      /* columns the file's text was moved left by */
	char *owned;             /* text, when it is not the file's bytes */
};

struct apply_opts {
	bool dry_run, replay;
	enum out_fmt fmt;
};

/* The piece for policy @p of @buf. An item of a List becomes a document of
 * its own: its lines moved left by the item's column (YAML blocks need
 * that; JSON does not mind), and a NetworkPolicyList item that leaves out
 * apiVersion and kind (as the API server prints them) gets both. 0 or
 * -ENOMEM. */
static int piece_make(const char *buf, const struct mseg_policy *p, struct doc_piece *pc)
{
	static const char head_yaml[] = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n";
	static const char head_flow[] = "\"apiVersion\": \"networking.k8s.io/v1\", "
					"\"kind\": \"NetworkPolicy\", ";
	const char *src = buf + p->doc_start;
	size_t n = p->doc_len, shift = p->doc_col > 1 ? p->doc_col - 1 : 0, w = 0;
	bool flow = n > 0 && (src[0] == '{' || src[0] == '[');
	char *out;

	*pc = (struct doc_piece){ src, n, p->pos.line, 0, 0, NULL };
	if (shift == 0 && !p->doc_bare)
		return 0;
	out = malloc(n + sizeof(head_yaml) + sizeof(head_flow) + 1);
	if (!out)
		return -ENOMEM;
	if (p->doc_bare && !flow) {
		memcpy(out, head_yaml, sizeof(head_yaml) - 1);
		w = sizeof(head_yaml) - 1;
		pc->extra_lines = 2;
	}
	for (size_t i = 0; i < n;) {
		size_t skip = 0;

		/* a line after the first: up to @shift spaces of indentation go */
		if (i > 0)
			while (skip < shift && i < n && src[i] == ' ') {
				skip++;
				i++;
			}
		while (i < n) {
			char ch = src[i++];

			out[w++] = ch;
			if (i == 1 && flow && p->doc_bare && ch == '{') {
				memcpy(out + w, head_flow, sizeof(head_flow) - 1);
				w += sizeof(head_flow) - 1;
			}
			if (ch == '\n')
				break;
		}
	}
	out[w] = '\0';
	pc->text = pc->owned = out;
	pc->len = w;
	pc->col_shift = (unsigned)shift;
	return 0;
}

/* Send one document of @file. Returns 0 or 1. */
static int apply_one(const char *file, const struct doc_piece *pc, const struct mseg_policy *p,
		     const struct apply_opts *o)
{
	char *path = api_path_new("/v1/policies", p->ns, p->name,
				  o->replay ? "?dry_run=1&replay=1" : o->dry_run ? "?dry_run=1" : NULL);
	struct client_buf resp = { 0 };
	long code;
	int status = 1;

	if (!path) {
		fprintf(stderr, "mseg: out of memory\n");
		return 1;
	}
	code = api_call("PUT", path, "application/yaml", pc->text, pc->len, &resp, NULL, NULL);
	if (code < 0)
		goto out_free;
	if (code >= 300) {
		json_t *j = resp.data ? json_loads(resp.data, 0, NULL) : NULL;
		json_int_t line = j ? json_integer_value(json_object_get(j, "line")) : 0;

		if (line && code < 500 && code != 401 && code != 403) {
			/* positions of the piece -> positions in the file */
			if ((unsigned long long)line > pc->extra_lines)
				line -= pc->extra_lines;
			fprintf(stderr, "%s:%lld:%lld: %s\n", file, (long long)(line + pc->first_line - 1),
				(long long)json_integer_value(json_object_get(j, "column")) +
					pc->col_shift,
				jstr(j, "error"));
		} else {
			char *pfx = NULL;

			if (asprintf(&pfx, "policy %s/%s", p->ns, p->name) < 0)
				pfx = NULL;
			api_error_print(pfx ? pfx : "policy", code, &resp);
			free(pfx);
		}
		json_decref(j);
		goto out_free;
	}
	{
		char *what = NULL;

		if (asprintf(&what, "policy %s/%s", p->ns, p->name) < 0) {
			fprintf(stderr, "mseg: out of memory\n");
			goto out_free;
		}
		status = mutation_print(what, NULL, code, &resp, o->dry_run, o->fmt);
		free(what);
	}
out_free:
	free(resp.data);
	free(path);
	return status;
}

static int apply_file(const char *file, const struct apply_opts *o)
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
		struct doc_piece pc;

		if (piece_make(buf, p, &pc) < 0) {
			fprintf(stderr, "mseg: out of memory\n");
			status = 1;
			break;
		}
		if (apply_one(file, &pc, p, o) != 0)
			status = 1;
		free(pc.owned);
	}
out_release:
	policy_set_release(&whole);
	free(buf);
	return status;
}

static bool policy_file_name(const char *nm)
{
	size_t l = strlen(nm);

	return nm[0] != '.' && ((l > 5 && !strcmp(nm + l - 5, ".yaml")) ||
				(l > 4 && !strcmp(nm + l - 4, ".yml")) ||
				(l > 5 && !strcmp(nm + l - 5, ".json")));
}

static int apply_dir(const char *path, const struct apply_opts *o)
{
	struct mseg_policy_set all;
	struct mseg_err err;
	char msg[1024];
	struct dirent **names = NULL;
	struct stat st;
	int n, status = 0;

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
		char *full;

		if (policy_file_name(nm)) {
			if (asprintf(&full, "%s/%s", path, nm) < 0) {
				fprintf(stderr, "mseg: out of memory\n");
				status = 1;
			} else {
				if (stat(full, &st) == 0 && S_ISREG(st.st_mode) &&
				    apply_file(full, o) != 0)
					status = 1;
				free(full);
			}
		}
		free(names[i]);
	}
	free(names);
	return status;
}

int cmd_apply(int argc, char **argv)
{
	const char *path = NULL;
	struct apply_opts o = { .fmt = OUT_TABLE };
	struct cli_parse p;
	struct stat st;
	int opt, usage;

	usage = cli_parse_begin(&p, "apply", argc, argv);
	if (usage)
		return usage;
	while ((opt = cli_parse_next(&p, argc, argv)) != -1) {
		switch (opt) {
		case 'f':
			path = optarg;
			break;
		case OPT_DRY:
			o.dry_run = true;
			break;
		case OPT_REPLAY:
			o.replay = true;
			break;
		default:
			usage = opt_output("apply", opt, argv, &o.fmt);
			if (usage)
				return usage;
		}
	}
	usage = args_none("apply", argc, argv);
	if (usage)
		return usage;
	if (!path)
		return usage_error("apply", "-f FILE|DIR is required");
	if (o.replay && !o.dry_run)
		return usage_error("apply", "--replay needs --dry-run (a replay applies nothing)");
	if (stat(path, &st) < 0) {
		fprintf(stderr, "mseg apply: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (S_ISDIR(st.st_mode))
		return apply_dir(path, &o);
	return apply_file(path, &o);
}
