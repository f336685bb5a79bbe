/* The mseg CLI's private interfaces: the command table (main.c), option
 * tables (opts.c), talking to msegd (client.c), printing (print.c) and one
 * handler per command (cmd_*.c). */
#ifndef MSEG_CLI_H
#define MSEG_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <getopt.h>
#include <jansson.h>

#include "mseg/client/client.h"

#define EXIT_USAGE 2

/* One option of a command; a command's table ends with CLI_OPTION_END. The getopt_long() tables and the text of
 * `mseg help COMMAND` are both made from it. */
struct cli_option {
	const char *name;       /* long name without "--"; NULL: short only, or
				 * (key 0) a line about an argument */
	int key;                /* the short letter, or >= 256 for long only;
				 * what the parser returns */
	int has_arg;            /* no_argument or required_argument */
	const char *metavar;    /* the value's name in help ("FILE|DIR") */
	const char *help;       /* one line; '\n' starts a continuation line */
};

#define CLI_OPTION_END { NULL, 0, 0, NULL, NULL }

struct command {
	const char *name;       /* exact match, no prefixes */
	const char *synopsis;   /* arguments, one line */
	const char *help;       /* what it does, one line */
	const struct cli_option *options;  /* may be NULL */
	bool server;            /* takes the server options (talks to msegd) */
	int (*run)(int argc, char **argv);
};

/* main.c */
const struct command *command_find(const char *name);
void usage_print(FILE *f);
void command_usage_print(FILE *f, const struct command *c);

/* opts.c: a command's options through getopt_long() */
#define CLI_MAX_OPTIONS 32

struct cli_parse {
	const struct command *cmd;
	struct option longopts[CLI_MAX_OPTIONS + 1];
	char optstring[2 * CLI_MAX_OPTIONS + 2];
};

/* Prepare to parse the options of command @name in @argv (argv[0] = the
 * command) and refuse abbreviated long options. 0, or the usage exit
 * status after printing why. */
int cli_parse_begin(struct cli_parse *p, const char *name, int argc, char **argv);
/* The next option's key (optarg holds its value), ':' (a missing value),
 * '?' (unknown) or -1 at the end (optind: the first argument). */
int cli_parse_next(struct cli_parse *p, int argc, char **argv);
void cli_options_print(FILE *f, const struct cli_option *opts);

int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int args_none(const char *cmd, int argc, char **argv);
int number_parse(const char *s, unsigned long min, unsigned long max, unsigned long *ret);

enum out_fmt { OUT_TABLE, OUT_JSON, OUT_YAML };

/* client.c: talking to msegd */
extern const struct cli_option server_options[];
extern const char *g_server;      /* --server */
extern const char *g_token_file;  /* --token-file */
extern const char *g_cacert;      /* --cacert */

const char *server_name(void);
/* Take the server options from anywhere in argv; the new argc or -1. */
int global_options_take(int argc, char **argv);

typedef size_t (*write_fn)(char *ptr, size_t size, size_t nmemb, void *data);

/* "BASE/SEG1/SEG2SUFFIX" with the segments %-escaped (@seg1, @seg2 and
 * @suffix may be NULL); NULL when out of memory. */
char *api_path_new(const char *base, const char *seg1, const char *seg2, const char *suffix);
/* One request. The HTTP status (>= 100), or -1 after printing why msegd
 * could not be reached. @resp gets the body (unless @wfn). */
long api_call(const char *method, const char *path, const char *ctype, const char *body,
	      size_t body_len, struct client_buf *resp, write_fn wfn, void *wdata);
/* GET @path as a stream into @wfn; *@ret_cut: the answer began but msegd
 * closed the connection before its end. */
long api_stream(const char *path, write_fn wfn, void *wdata, bool *ret_cut);
bool server_is_valid(const char *server);
/* 0, or the usage exit status after naming --server (or $MSEG_SERVER). */
int server_check(void);
/* Print an error answer; returns 1. */
int api_error_print(const char *prefix, long code, const struct client_buf *resp);
/* GET @path and parse JSON. 0 or an exit status. */
int api_get_json(const char *path, json_t **ret);
/* Print the outcome of a PUT, PATCH or DELETE: "WHAT RESULT (generation
 * N)", "WHAT unchanged", the dry-run changes, and each of the answer's
 * warnings as "warning: ..." on stderr. For endpoint @ep_id (or NULL), an
 * endpoint msegd stored but could not program is a failure: "WHAT stored
 * (generation N), but NOT programmed: WHY", status 1. The exit status. */
int mutation_print(const char *what, const char *ep_id, long code, struct client_buf *resp,
		   bool dry_run, enum out_fmt fmt);
/* Each of @j's "warnings" but @skip (may be NULL) as "warning: ..." on stderr. */
void warnings_print(const json_t *j, const char *skip);

/* print.c: every output format from one place */

int out_parse(const char *s, enum out_fmt *ret, bool yaml_ok);
/* -o for a command without yaml: 0 or the usage exit status. */
int opt_output(const char *cmd, int opt, char **argv, enum out_fmt *fmt);

const char *jstr(const json_t *o, const char *key);
long long jint(const json_t *o, const char *key);
const char *jbool(const json_t *o, const char *key);

void print_json(const json_t *j);
void print_json_line(const json_t *j);
void print_yaml(const json_t *j);
void print_status(const json_t *j);
void print_dry_run(const json_t *j);
void print_replay(const json_t *rp);
void print_policies(const json_t *arr);
void print_endpoints(const json_t *arr);
void print_namespaces(const json_t *arr);
void print_rules(const json_t *arr);
void print_accepted(const json_t *arr);
void print_rules_detail(const json_t *e, bool all);
void print_policy_detail(const json_t *p);
/* With @updates, rows begin with a mark: "  " new, "~ " an update. */
void print_flow_header(bool updates);
void print_flow_row(const json_t *f, const char *mark);
void print_check(const json_t *j, const char *from, const char *to, const char *port);

/* cmd_*.c */
extern const struct cli_option compile_options[], status_options[], apply_options[],
	delete_options[], mode_options[], get_options[], endpoint_options[], flows_options[], check_options[];

int cmd_help(int argc, char **argv);
int cmd_compile(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_apply(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_mode(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_endpoint(int argc, char **argv);
int cmd_flows(int argc, char **argv);
int cmd_check(int argc, char **argv);
/* cmd_ui.c */
extern const struct cli_option ui_options[];
int cmd_ui(int argc, char **argv);

/* cmd_learn.c */
extern const struct cli_option learn_options[];
int cmd_learn(int argc, char **argv);

/* --since: "30s", "5m", "2h", "1d" ago -> seconds since the epoch in @buf;
 * an RFC 3339 time as it is; NULL when @s is neither. */
const char *cli_since_parse(const char *s, char *buf, size_t size);

/* Add --KEY's value to @q (at most @max bytes): 0, or the exit status after
 * saying why not (a usage error when too long). */
struct client_query;
int cli_query_add(const char *cmd, size_t max, struct client_query *q, const char *key,
		  const char *value);

#endif
