/* Refusing abbreviated long options (include/mseg/util/opt.h). */
#include <stdbool.h>
#include <string.h>

#include "mseg/util/opt.h"

static const struct option *option_find(const struct option *longopts, const char *name,
					size_t len, bool *ret_prefix)
{
	*ret_prefix = false;
	for (const struct option *o = longopts; o->name; o++) {
		if (strncmp(o->name, name, len) != 0)
			continue;
		if (o->name[len] == '\0')
			return o;
		*ret_prefix = true;
	}
	return NULL;
}

/* Does short option @c take an argument (which may be the next argv)? */
static bool short_takes_arg(const char *optstring, char c)
{
	const char *p;

	if (c == ':' || c == '+' || c == '-')
		return false;
	p = strchr(optstring, c);
	return p && p[1] == ':' && p[2] != ':';
}

const char *opt_abbrev_find(int argc, char *const argv[], const char *optstring,
			    const struct option *longopts, size_t *ret_len)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0)
			break;
		if (a[0] != '-' || a[1] == '\0')
			continue;             /* a non-option (GNU getopt permutes) */
		if (a[1] == '-') {
			const struct option *o;
			size_t len = strcspn(a + 2, "=");
			bool prefix;

			o = option_find(longopts, a + 2, len, &prefix);
			if (!o) {
				if (prefix) {
					*ret_len = len + 2;
					return a;
				}
				continue;     /* unknown: getopt_long() says so */
			}
			if (o->has_arg == required_argument && a[2 + len] != '=')
				i++;          /* its value */
			continue;
		}
		/* a cluster of short options: the first that takes an argument
		 * ends it, with the rest or the next argv as the value */
		for (const char *p = a + 1; *p; p++) {
			if (short_takes_arg(optstring, *p)) {
				if (!p[1])
					i++;
				break;
			}
		}
	}
	return NULL;
}
