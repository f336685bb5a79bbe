/* `mseg get rules ID` leaves empty sets out by default: what stays is
 * what a user reads, byte for byte. */
#include <stdlib.h>

#include "mseg/client/nft_text.h"
#include "t.h"

static void test_empty_sets_dropped(void)
{
	const char *in =
		"table inet mseg {\n"
		"\tcounter in_invalid {\n"
		"\t}\n"
		"\n"
		"\tset in4_port {\n"
		"\t\ttype ipv4_addr . inet_proto . inet_service\n"
		"\t}\n"
		"\n"
		"\tset in4_any {\n"
		"\t\ttype ipv4_addr\n"
		"\t\telements = {\n"
		"\t\t\t10.89.3.1\n"
		"\t\t}\n"
		"\t}\n"
		"\n"
		"\tset in6_port_iv {\n"
		"\t\ttype ipv6_addr . inet_proto . inet_service\n"
		"\t\tflags interval\n"
		"\t}\n"
		"\n"
		"\tchain input {\n"
		"\t}\n"
		"}\n";
	const char *want =
		"table inet mseg {\n"
		"\tcounter in_invalid {\n"
		"\t}\n"
		"\n"
		"\tset in4_any {\n"
		"\t\ttype ipv4_addr\n"
		"\t\telements = {\n"
		"\t\t\t10.89.3.1\n"
		"\t\t}\n"
		"\t}\n"
		"\n"
		"\tchain input {\n"
		"\t}\n"
		"}\n";
	size_t n = 0;
	char *out = client_nft_text_compact(in, &n);

	T_STREQ(out, want);
	T_CHECK(n == 2, "dropped %zu", n);
	free(out);
}

static void test_nothing_to_drop(void)
{
	size_t n = 5;
	char *out = client_nft_text_compact("table inet mseg {\n}\n", &n);

	T_STREQ(out, "table inet mseg {\n}\n");
	T_CHECK(n == 0, "dropped %zu", n);
	free(out);
	out = client_nft_text_compact("", &n);
	T_STREQ(out, "");
	free(out);
}

int main(void)
{
	T_RUN(test_empty_sets_dropped);
	T_RUN(test_nothing_to_drop);
	return t_exit();
}
