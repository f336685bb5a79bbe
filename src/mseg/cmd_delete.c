/* mseg delete policy NS/NAME: remove a policy stored through the API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg.h"

enum { OPT_DRY = 256 };

const struct cli_option delete_options[] = {
	{ "dry-run", OPT_DRY, no_argument, NULL, "show what would change; delete nothing" },
	CLI_OPTION_END,
};

int cmd_delete(int argc, char **argv)
{
	bool dry_run = false;
	const char *slash, *id;
	char *path, *ns, *what;
	struct client_buf resp = { 0 };
	struct cli_parse p;
	long code;
	int opt, status;

	status = cli_parse_begin(&p, "delete", argc, argv);
	if (status)
		return status;
	while ((opt = cli_parse_next(&p, argc, argv)) != -1) {
		if (opt == OPT_DRY)
			dry_run = true;
		else
			return usage_error("delete", "bad option '%s'", argv[optind - 1]);
	}
	if (argc - optind != 2 || strcmp(argv[optind], "policy") != 0)
		return usage_error("delete", "expected 'policy NS/NAME'");
	id = argv[optind + 1];
	slash = strchr(id, '/');
	if (!slash || slash == id || !slash[1] || strchr(slash + 1, '/'))
		return usage_error("delete", "'%s': expected NS/NAME", id);
	ns = strndup(id, (size_t)(slash - id));
	path = ns ? api_path_new("/v1/policies", ns, slash + 1, dry_run ? "?dry_run=1" : NULL) : NULL;
	if (!path || asprintf(&what, "policy %s", id) < 0) {
		fprintf(stderr, "mseg: out of memory\n");
		free(ns);
		free(path);
		return 1;
	}
	code = api_call("DELETE", path, NULL, NULL, 0, &resp, NULL, NULL);
	status = mutation_print(what, NULL, code, &resp, dry_run, OUT_TABLE);
	free(resp.data);
	free(what);
	free(path);
	free(ns);
	return status;
}
