/* mseg: the command line tool. Every command is a line in `commands[]`
 * (exact-match name, synopsis, one-line help, options, handler); `mseg help`
 * prints from that table and each command's option table (cmd_*.c). A
 * handler gets argv with argv[0] = the command name and returns the exit
 * status: 0 ok, 1 failure, 2 usage. */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "mseg.h"

static const struct command commands[] = {
	{ "help", "[COMMAND]", "show the commands, or the options of one", NULL, false, cmd_help },
	{ "compile", "-f FILE|DIR --endpoints FILE [OPTIONS]",
	  "print the nft ruleset of each endpoint (offline: no daemon, no root)",
	  compile_options, false, cmd_compile },
	{ "status", "", "show msegd's version, uptime, generation, counts, kernel features and mode",
	  status_options, true, cmd_status },
	{ "apply", "-f FILE|DIR [--dry-run [--replay]]",
	  "create or replace the policies of a file or directory through msegd",
	  apply_options, true, cmd_apply },
	{ "delete", "policy NS/NAME [--dry-run]", "remove a policy stored through the API",
	  delete_options, true, cmd_delete },
	{ "mode", "NS/NAME enforce|audit|learn|spec [--for DURATION]",
	  "set a policy's mode from now on (learn: a learning stage, then enforce)", mode_options,
	  true, cmd_mode },
	{ "get", "policies|endpoints|namespaces|rules|accepted [ID] [--fresh] [--all] [-o table|json|yaml]",
	  "list policies, endpoints, namespaces, the kernel's rules per endpoint, or accepted connections",
	  get_options, true, cmd_get },
	{ "endpoint", "add ID --netns PATH --ip ADDR... [--name N] [--namespace NS] [--label K=V]... | "
	  "del ID | label ID K=V|K-... [--dry-run]",
	  "add (or replace), remove, or relabel an endpoint of the API's inventory",
	  endpoint_options, true, cmd_endpoint },
	{ "flows", "[--follow [--updates]] [--endpoint ID] [--namespace NS] [--direction D] [--verdict V] [--since 5m] [--limit N] [-o table|json]",
	  "show flow records (dropped or audited traffic), newest last; --follow streams",
	  flows_options, true, cmd_flows },
	{ "check", "--from ID|ADDR --to ID|ADDR --port PROTO/PORT",
	  "would FROM reach TO on this port, which rule decides (exit 0 allowed, 1 denied, 2 usage, 3 no msegd)",
	  check_options, true, cmd_check },
	{ "ui", "[--port N]", "open the flow map in a local browser (a 127.0.0.1 listener with a one-time secret)",
	  ui_options, true, cmd_ui },
	{ "learn", "[--namespace NS] [--since T] [--aggregate /N] [--format allowlist|networkpolicy] [-o yaml|json]", "an AllowList (or NetworkPolicies) learned from a namespace's audited flows and learning endpoints, ready to apply", learn_options, true, cmd_learn },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

void usage_print(FILE *f)
{
	fprintf(f, "usage: mseg COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-8s %s\n  %-8s   %s\n", commands[i].name, commands[i].synopsis, "",
			commands[i].help);
	fprintf(f, "\nglobal options (before or after the command):\n");
	cli_options_print(f, server_options);
	fprintf(f, "\n`mseg help COMMAND` shows the options of a command.\n");
}

void command_usage_print(FILE *f, const struct command *c)
{
	fprintf(f, "usage: mseg %s %s\n%s\n", c->name, c->synopsis, c->help);
	if (c->options || c->server)
		fprintf(f, "\noptions:\n");
	cli_options_print(f, c->options);
	if (c->server)
		cli_options_print(f, server_options);
}

int cmd_help(int argc, char **argv)
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
	if (c->server && (status = server_check()) != 0)
		return status;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	status = c->run(argc - 1, argv + 1);
	curl_global_cleanup();
	return status;
}
