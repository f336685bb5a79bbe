/* Abbreviated long options are found wherever getopt_long() would take
 * them, and only there (util/opt.c). */
#include "mseg/util/opt.h"
#include "t.h"

static const struct option longopts[] = {
	{ "file", required_argument, NULL, 'f' },
	{ "follow", no_argument, NULL, 256 },
	{ "default-deny", no_argument, NULL, 257 },
	{ "output", required_argument, NULL, 'o' },
	{ NULL, 0, NULL, 0 },
};

static const char *find(int argc, char **argv, size_t *len)
{
	return opt_abbrev_find(argc, argv, ":f:o:v", longopts, len);
}

static void test_found(void)
{
	char *a1[] = { "mseg", "--def", NULL };
	char *a2[] = { "mseg", "x", "--follow", "--fo=1", NULL };
	char *a3[] = { "mseg", "-v", "--fil", "y", NULL };
	size_t len = 0;

	T_STREQ(find(2, a1, &len), "--def");
	T_CHECK(len == 5, "len %zu", len);
	T_STREQ(find(4, a2, &len), "--fo=1");
	T_CHECK(len == 4, "the name without '=1': %zu", len);
	T_STREQ(find(4, a3, &len), "--fil");
}

static void test_not_found(void)
{
	/* values of options, after "--", unknown names and full names */
	char *a1[] = { "mseg", "--file", "--fo", "-o", "--def", "-vf", "--fol", "--output=--f", NULL };
	char *a2[] = { "mseg", "--follow", "--", "--def", NULL };
	char *a3[] = { "mseg", "--bogus", "--default-deny", "-", "--file=--fi", "-fo", "--def", NULL };
	size_t len = 0;

	T_CHECK(find(8, a1, &len) == NULL, "values are not options");
	T_CHECK(find(4, a2, &len) == NULL, "after --");
	/* "-fo": f takes "o" as its value, the next argument is an option */
	T_STREQ(find(7, a3, &len), "--def");
}

int main(void)
{
	T_RUN(test_found);
	T_RUN(test_not_found);
	return t_exit();
}
