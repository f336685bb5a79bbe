/* mseg get policies|endpoints|namespaces|rules|accepted [ID]: what msegd holds, the
 * rules the kernel holds read back per endpoint, and the accepted-connection
 * summaries of learning endpoints. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg.h"

enum { OPT_FRESH = 256, OPT_ALL };

const struct cli_option get_options[] = {
	{ "output", 'o', required_argument, "table|json|yaml", "output format (default table)" },
	{ "fresh", OPT_FRESH, no_argument, NULL,
	  "rules: read every namespace back now (not msegd's\nbackground read-back, which may be STALE)" },
	{ "all", OPT_ALL, no_argument, NULL, "rules ID: show empty sets too" },
	{ NULL, 0, 0, "ID", "policies: NS/NAME; endpoints, rules and accepted: endpoint id;\nnamespaces: name" },
	CLI_OPTION_END,
};

/* The API path of what the user named; NULL after printing why (*ret_status). */
static char *get_path_new(const char *what, const char *id, bool fresh, int *ret_status)
{
	char *path = NULL;

	*ret_status = 1;
	if (strcmp(what, "policies") == 0 || strcmp(what, "policy") == 0) {
		if (id) {
			const char *slash = strchr(id, '/');
			char *ns;

			if (!slash || slash == id || !slash[1]) {
				*ret_status = usage_error("get", "'%s': expected NS/NAME", id);
				return NULL;
			}
			ns = strndup(id, (size_t)(slash - id));
			path = ns ? api_path_new("/v1/policies", ns, slash + 1, NULL) : NULL;
			free(ns);
		} else {
			path = strdup("/v1/policies");
		}
	} else if (strcmp(what, "accepted") == 0) {
		path = id ? api_path_new("/v1/endpoints", id, "accepted", NULL) : strdup("/v1/accepted");
	} else if (strcmp(what, "namespaces") == 0 || strcmp(what, "namespace") == 0) {
		path = api_path_new("/v1/namespaces", id, NULL, NULL);
	} else if (strcmp(what, "endpoints") == 0 || strcmp(what, "endpoint") == 0 ||
		   strcmp(what, "rules") == 0) {
		path = api_path_new(what[0] == 'r' ? "/v1/rules" : "/v1/endpoints", id, NULL,
				    what[0] == 'r' && fresh && !id ? "?fresh=1" : NULL);
	} else {
		*ret_status = usage_error("get", "'%s': expected policies, endpoints, namespaces, "
					  "rules or accepted", what);
		return NULL;
	}
	if (!path)
		fprintf(stderr, "mseg: out of memory\n");
	return path;
}

/* One object shown as a table of one row. */
static void print_one(void (*print)(const json_t *arr), json_t *j)
{
	json_t *arr = json_array();

	json_array_append(arr, j);
	print(arr);
	json_decref(arr);
}

int cmd_get(int argc, char **argv)
{
	enum out_fmt fmt = OUT_TABLE;
	const char *what, *id = NULL;
	bool fresh = false, all = false;
	struct cli_parse p;
	char *path;
	json_t *j = NULL;
	int opt, r;

	r = cli_parse_begin(&p, "get", argc, argv);
	if (r)
		return r;
	while ((opt = cli_parse_next(&p, argc, argv)) != -1) {
		if (opt == 'o' && out_parse(optarg, &fmt, true) == 0)
			continue;
		if (opt == OPT_FRESH || opt == OPT_ALL) {
			*(opt == OPT_FRESH ? &fresh : &all) = true;
			continue;
		}
		return usage_error("get", "bad option '%s'", argv[optind - 1]);
	}
	if (argc - optind < 1 || argc - optind > 2)
		return usage_error("get", "expected policies, endpoints, namespaces, rules or accepted");
	what = argv[optind];
	if (argc - optind == 2)
		id = argv[optind + 1];
	if ((fresh || all) && strcmp(what, "rules") != 0)
		return usage_error("get", "--%s is for 'get rules'", fresh ? "fresh" : "all");
	if (all && !id)
		return usage_error("get", "--all is for 'get rules ID' (one endpoint's table)");
	path = get_path_new(what, id, fresh, &r);
	if (!path)
		return r;
	r = api_get_json(path, &j);
	free(path);
	if (r)
		return r;
	if (fmt == OUT_JSON) {
		print_json(j);
	} else if (fmt == OUT_YAML) {
		if (id && what[0] == 'p' && json_object_get(j, "document"))
			fputs(jstr(j, "document"), stdout);
		else
			print_yaml(j);
	} else if (what[0] == 'a') {
		if (id)
			print_one(print_accepted, j);
		else
			print_accepted(json_object_get(j, "endpoints"));
		if (!id && json_integer_value(json_object_get(j, "dropped")))
			printf("%lld summaries not kept (the bound of %lld was reached)\n",
			       (long long)json_integer_value(json_object_get(j, "dropped")),
			       (long long)json_integer_value(json_object_get(j, "max_entries")));
	} else if (what[0] == 'p') {
		if (id)
			print_policy_detail(j);
		else
			print_policies(json_object_get(j, "policies"));
	} else if (what[0] == 'n') {
		if (id)
			print_one(print_namespaces, j);
		else
			print_namespaces(json_object_get(j, "namespaces"));
	} else if (what[0] == 'e') {
		if (id)
			print_one(print_endpoints, j);
		else
			print_endpoints(json_object_get(j, "endpoints"));
	} else {
		if (id)
			print_rules_detail(j, all);
		else
			print_rules(json_object_get(j, "endpoints"));
	}
	json_decref(j);
	return 0;
}
