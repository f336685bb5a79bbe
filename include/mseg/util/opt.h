/* Command line options: getopt_long() accepts any unambiguous prefix of a
 * long option ("--def" for "--default-deny"). A firewall's flags are not
 * guessed, so the programs refuse such abbreviations before getopt_long()
 * sees them. */
#ifndef MSEG_OPT_H
#define MSEG_OPT_H

#include <getopt.h>
#include <stddef.h>

/* The first argument of @argv (from index 1, up to a "--") that is a
 * "--NAME" or "--NAME=VALUE" whose NAME is not the full name of an option of
 * @longopts but the beginning of one: what getopt_long() would take as an
 * abbreviation. Values of options (the argument after an option that takes
 * one, as @optstring and @longopts say) are skipped as getopt_long() skips
 * them. Returns that argument with the length of its NAME part ("--def" of
 * "--def=1") in @ret_len, or NULL when every long option is spelt out in
 * full. Names no option begins with are left to getopt_long(). */
const char *opt_abbrev_find(int argc, char *const argv[], const char *optstring,
			    const struct option *longopts, size_t *ret_len);

#endif
