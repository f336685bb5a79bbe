/* mseg mode NS/NAME enforce|audit|learn|spec [--for DURATION]: set a
 * policy's mode through msegd, over its document's, from now on. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/model/policy.h"
#include "mseg.h"

enum { OPT_FOR = 256 };

const struct cli_option mode_options[] = {
	{ "for", OPT_FOR, required_argument, "DURATION",
	  "with learn: how long the learning stage lasts (90m, 12h, 7d; default the "
	  "policy's spec.learnFor)" },
	{ "output", 'o', required_argument, "table|json", "output format (default table)" },
	CLI_OPTION_END,
};

int cmd_mode(int argc, char **argv)
{
	static const char *const modes[] = { "enforce", "audit", "learn", "spec", NULL };
	const char *dur = NULL, *id, *mode, *slash;
	enum out_fmt fmt = OUT_TABLE;
	struct client_buf resp = { 0 };
	struct cli_parse p;
	char *path = NULL, *ns = NULL, *what = NULL, *body = NULL;
	uint32_t secs;
	json_t *j;
	long code;
	int opt, status, k;

	status = cli_parse_begin(&p, "mode", argc, argv);
	if (status)
		return status;
	while ((opt = cli_parse_next(&p, argc, argv)) != -1) {
		if (opt == OPT_FOR) {
			dur = optarg;
			continue;
		}
		status = opt_output("mode", opt, argv, &fmt);
		if (status)
			return status;
	}
	if (argc - optind != 2)
		return usage_error("mode", "expected 'NS/NAME enforce|audit|learn|spec'");
	id = argv[optind];
	mode = argv[optind + 1];
	slash = strchr(id, '/');
	if (!slash || slash == id || !slash[1] || strchr(slash + 1, '/'))
		return usage_error("mode", "'%s': expected NS/NAME", id);
	for (k = 0; modes[k] && strcmp(modes[k], mode) != 0; k++)
		;
	if (!modes[k])
		return usage_error("mode", "'%s': expected enforce, audit, learn or spec", mode);
	if (dur && strcmp(mode, "learn") != 0)
		return usage_error("mode", "--for goes with learn only");
	if (dur && policy_duration_parse(dur, &secs) < 0)
		return usage_error("mode", "--for '%s': a number and s, m, h or d, from 1m to 90d",
				   dur);
	j = dur ? json_pack("{ssss}", "mode", mode, "learnFor", dur) : json_pack("{ss}", "mode", mode);
	body = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	ns = strndup(id, (size_t)(slash - id));
	path = ns ? api_path_new("/v1/policies", ns, slash + 1, "/mode") : NULL;
	if (!body || !path || asprintf(&what, "policy %s", id) < 0) {
		fprintf(stderr, "mseg: out of memory\n");
		status = 1;
		what = NULL;
		goto out_free;
	}
	code = api_call("PUT", path, "application/json", body, strlen(body), &resp, NULL, NULL);
	if (code < 0) {
		status = 1;
	} else if (code >= 300) {
		status = api_error_print(what, code, &resp);
	} else if (fmt == OUT_JSON) {
		j = json_loads(resp.data ? resp.data : "", 0, NULL);
		print_json(j);
		json_decref(j);
		status = 0;
	} else {
		j = json_loads(resp.data ? resp.data : "", 0, NULL);
		printf("%s: mode %s%s%s (generation %lld)\n", what, mode,
		       json_object_get(j, "learn_until") ? " until " : "",
		       json_object_get(j, "learn_until") ? jstr(j, "learn_until") : "",
		       jint(j, "generation"));
		json_decref(j);
		status = 0;
	}
out_free:
	free(resp.data);
	free(body);
	free(path);
	free(ns);
	free(what);
	return status;
}
