/* mseg status: msegd's version, uptime, generation, counts, kernel features
 * and mode. */
#include "mseg.h"

const struct cli_option status_options[] = {
	{ "output", 'o', required_argument, "table|json", "output format (default table)" },
	CLI_OPTION_END,
};

int cmd_status(int argc, char **argv)
{
	enum out_fmt fmt = OUT_TABLE;
	struct cli_parse p;
	json_t *j = NULL;
	int opt, r;

	r = cli_parse_begin(&p, "status", argc, argv);
	if (r)
		return r;
	while ((opt = cli_parse_next(&p, argc, argv)) != -1) {
		/* yaml too, though help does not promise it */
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
	if (fmt == OUT_JSON)
		print_json(j);
	else if (fmt == OUT_YAML)
		print_yaml(j);
	else
		print_status(j);
	json_decref(j);
	return 0;
}
