/* A command's options come from one table (struct cli_option): getopt_long()'s
 * tables and the option text of `mseg help COMMAND` are both made from it,
 * so they cannot disagree. Long options match exactly: getopt_long()'s
 * abbreviations are refused before it sees them. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/util/opt.h"
#include "mseg.h"

/* The help column: "  -f, --file FILE|DIR     policy file ..." */
#define HELP_COLUMN 24

static bool key_is_short(int key)
{
	return key > 0 && key < 256 && isalnum(key);
}

/* The table ends with CLI_OPTION_END; an argument line has only a metavar. */
static bool option_is_end(const struct cli_option *o)
{
	return !o->name && !o->key && !o->metavar;
}

static int parse_add(struct cli_parse *p, size_t *n, size_t *s, const struct cli_option *opts)
{
	for (const struct cli_option *o = opts; o && !option_is_end(o); o++) {
		if (*n >= CLI_MAX_OPTIONS)
			return -E2BIG;
		if (o->name)
			p->longopts[(*n)++] = (struct option){ o->name, o->has_arg, NULL, o->key };
		if (key_is_short(o->key)) {
			p->optstring[(*s)++] = (char)o->key;
			if (o->has_arg == required_argument)
				p->optstring[(*s)++] = ':';
		}
	}
	return 0;
}

int cli_parse_begin(struct cli_parse *p, const char *name, int argc, char **argv)
{
	size_t n = 0, s = 0, len;
	const char *abbrev;

	memset(p, 0, sizeof(*p));
	p->cmd = command_find(name);
	p->optstring[s++] = ':';
	if (parse_add(p, &n, &s, p->cmd->options) < 0 ||
	    (p->cmd->server && parse_add(p, &n, &s, server_options) < 0)) {
		fprintf(stderr, "mseg %s: more than %d options\n", name, CLI_MAX_OPTIONS);
		return 1;
	}
	abbrev = opt_abbrev_find(argc, argv, p->optstring, p->longopts, &len);
	if (abbrev)
		return usage_error(name, "unknown option '%.*s' (abbreviations are not accepted)",
				   (int)len, abbrev);
	opterr = 0;
	optind = 0;
	return 0;
}

int cli_parse_next(struct cli_parse *p, int argc, char **argv)
{
	return getopt_long(argc, argv, p->optstring, p->longopts, NULL);
}

void cli_options_print(FILE *f, const struct cli_option *opts)
{
	for (const struct cli_option *o = opts; o && !option_is_end(o); o++) {
		char left[128];
		const char *h = o->help, *nl;
		int n;

		if (key_is_short(o->key) && o->name)
			n = snprintf(left, sizeof(left), "-%c, --%s", o->key, o->name);
		else if (o->name)
			n = snprintf(left, sizeof(left), "--%s", o->name);
		else if (key_is_short(o->key))
			n = snprintf(left, sizeof(left), "-%c", o->key);
		else
			n = 0, left[0] = '\0';       /* a line about an argument */
		if (o->metavar && n >= 0 && (size_t)n < sizeof(left))
			snprintf(left + n, sizeof(left) - (size_t)n, "%s%s", n ? " " : "", o->metavar);
		/* a long left side keeps two spaces before the help */
		if (strlen(left) < HELP_COLUMN)
			fprintf(f, "  %-*s", HELP_COLUMN, left);
		else
			fprintf(f, "  %s  ", left);
		while ((nl = strchr(h, '\n'))) {
			fprintf(f, "%.*s\n%*s", (int)(nl - h), h, HELP_COLUMN + 2, "");
			h = nl + 1;
		}
		fprintf(f, "%s\n", h);
	}
}

int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mseg %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: mseg %s %s\n", cmd, command_find(cmd)->synopsis);
	return EXIT_USAGE;
}

int args_none(const char *cmd, int argc, char **argv)
{
	if (optind < argc)
		return usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	return 0;
}

int number_parse(const char *s, unsigned long min, unsigned long max, unsigned long *ret)
{
	char *end;
	unsigned long v;

	if (!s[0] || s[0] == '-' || s[0] == '+')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}
