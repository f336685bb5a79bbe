/* The naming rules shared by the parsers and the REST API. */
#include <string.h>

#include "mseg/model/names.h"
#include "t.h"

static void test_dns_label(void)
{
	static const char *const good[] = { "a", "shop", "web-1", "0abc", NULL };
	static const char *const bad[] = { "", "-a", "a-", "Shop", "a_b", "a.b", "é", NULL };
	char long63[64], long64[65];

	for (size_t i = 0; good[i]; i++)
		T_CHECK(name_is_dns_label(good[i]), "'%s'", good[i]);
	for (size_t i = 0; bad[i]; i++)
		T_CHECK(!name_is_dns_label(bad[i]), "'%s'", bad[i]);
	memset(long63, 'a', 63);
	long63[63] = 0;
	memset(long64, 'a', 64);
	long64[64] = 0;
	T_CHECK(name_is_dns_label(long63), "63 characters");
	T_CHECK(!name_is_dns_label(long64), "64 characters");
}

static void test_endpoint_id_and_name(void)
{
	static const char *const good[] = { "a", "web-1", "Pod_1.x", "abc-", "0", NULL };
	static const char *const bad[] = { "", "-a", "_a", ".a", "a/b", "a b", "a:b", NULL };
	char s[300];

	for (size_t i = 0; good[i]; i++)
		T_CHECK(name_is_endpoint_id(good[i]) && name_is_endpoint_name(good[i]), "'%s'",
			good[i]);
	for (size_t i = 0; bad[i]; i++)
		T_CHECK(!name_is_endpoint_id(bad[i]) && !name_is_endpoint_name(bad[i]), "'%s'",
			bad[i]);
	memset(s, 'a', sizeof(s));
	s[NAME_ENDPOINT_ID_MAX] = 0;
	T_CHECK(name_is_endpoint_id(s), "id of 128");
	s[NAME_ENDPOINT_ID_MAX] = 'a';
	s[NAME_ENDPOINT_ID_MAX + 1] = 0;
	T_CHECK(!name_is_endpoint_id(s) && name_is_endpoint_name(s), "id of 129 is a name");
	s[NAME_ENDPOINT_ID_MAX + 1] = 'a';
	s[NAME_ENDPOINT_NAME_MAX + 1] = 0;
	T_CHECK(!name_is_endpoint_name(s), "name of 254");
}

static void test_labels(void)
{
	T_CHECK(name_is_label_key("app"), "plain key");
	T_CHECK(name_is_label_key("app.kubernetes.io/name"), "prefixed key");
	T_CHECK(!name_is_label_key("App.io/name"), "prefix must be lowercase");
	T_CHECK(!name_is_label_key("a..b/name"), "empty prefix label");
	T_CHECK(!name_is_label_key("/name") && !name_is_label_key("app/"), "empty part");
	T_CHECK(!name_is_label_key("-app"), "leading '-'");
	T_CHECK(name_is_label_value("") && name_is_label_value("v1.2_X"), "values");
	T_CHECK(!name_is_label_value("a/b") && !name_is_label_value("x-"), "bad values");
}

int main(void)
{
	T_RUN(test_dns_label);
	T_RUN(test_endpoint_id_and_name);
	T_RUN(test_labels);
	return t_exit();
}
