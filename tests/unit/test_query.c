/* Query strings for msegd's API (client/query.c): every value is
 * percent-encoded, any length is either encoded whole or refused, never
 * written past a buffer (this test runs under ASan with SANITIZE=1). */
#include <errno.h>
#include <stdlib.h>
#include <strings.h>

#include "mseg/client/query.h"
#include "t.h"

#define BIG (64 * 1024)

static char *path_of(struct client_query *q)
{
	char *path = NULL;

	T_CHECK(client_query_path(q, "/v1/flows", &path) == 0, "client_query_path");
	return path;
}

static void test_empty(void)
{
	struct client_query q;
	char *path;

	T_CHECK(client_query_init(&q, 0) == 0, "init");
	path = path_of(&q);
	T_STREQ(path, "/v1/flows");
	free(path);
	client_query_release(&q);
}

static void test_special_characters(void)
{
	struct client_query q;
	char *path;

	T_CHECK(client_query_init(&q, 0) == 0, "init");
	T_CHECK(client_query_add(&q, "endpoint", "a&b=c d%e+f/g?h#i") == 0, "add");
	T_CHECK(client_query_add(&q, "namespace", "caf\xc3\xa9") == 0, "add non-ASCII");
	T_CHECK(client_query_add(&q, "limit", "10") == 0, "add");
	path = path_of(&q);
	/* libcurl's URL API may write the hex digits in either case (both
	 * mean the same, RFC 3986 2.1); the letters of the values have none */
	T_CHECK(path && strcasecmp(path, "/v1/flows?endpoint=a%26b%3Dc%20d%25e%2Bf%2Fg%3Fh%23i"
				   "&namespace=caf%C3%A9&limit=10") == 0, "got '%s'", path);
	free(path);
	client_query_release(&q);
}

static void test_64k_value_encoded(void)
{
	struct client_query q;
	char *v = malloc(BIG + 1), *path;
	size_t n;

	T_CHECK(v != NULL, "malloc");
	if (!v)
		return;
	/* every byte needs three: the encoded query is three times as long */
	memset(v, '&', BIG);
	v[BIG] = '\0';
	T_CHECK(client_query_init(&q, 0) == 0, "init");
	T_CHECK(client_query_add(&q, "endpoint", v) == 0, "a 64 KiB value without a limit");
	T_CHECK(client_query_add(&q, "since", "1700000000") == 0, "a value after it");
	path = path_of(&q);
	n = path ? strlen(path) : 0;
	T_CHECK(n == strlen("/v1/flows?endpoint=") + 3 * BIG + strlen("&since=1700000000"),
		"length %zu", n);
	T_CHECK(path && strncmp(path, "/v1/flows?endpoint=%26%26", 25) == 0, "start");
	T_CHECK(path && strcmp(path + n - 17, "&since=1700000000") == 0, "end");
	T_CHECK(path && strspn(path + 19, "%26") == 3 * BIG, "every '&' of the value encoded");
	free(path);
	client_query_release(&q);
	free(v);
}

static void test_64k_value_refused_past_max(void)
{
	struct client_query q;
	char *v = malloc(BIG + 1), *path;

	T_CHECK(v != NULL, "malloc");
	if (!v)
		return;
	memset(v, 'a', BIG);
	v[BIG] = '\0';
	T_CHECK(client_query_init(&q, 8192) == 0, "init");
	T_CHECK(client_query_add(&q, "verdict", "dropped") == 0, "a short value");
	T_CHECK(client_query_add(&q, "endpoint", v) == -E2BIG, "a 64 KiB value past the limit");
	/* exactly up to the limit: "verdict=dropped&" is 16 bytes */
	v[8192 - 16 - strlen("port=")] = '\0';
	T_CHECK(client_query_add(&q, "port", v) == 0, "a value that fills the limit");
	T_CHECK(client_query_add(&q, "x", "") == -E2BIG, "one more byte");
	path = path_of(&q);
	T_CHECK(path && strlen(path) == strlen("/v1/flows?") + 8192, "length %zu",
		path ? strlen(path) : 0);
	T_CHECK(path && strncmp(path, "/v1/flows?verdict=dropped&port=aaa", 34) == 0,
		"the refused value left the query as it was");
	free(path);
	client_query_release(&q);
	free(v);
}

static void test_bad_key(void)
{
	struct client_query q;

	T_CHECK(client_query_init(&q, 0) == 0, "init");
	T_CHECK(client_query_add(&q, "a=b", "x") == -EINVAL, "'=' in a key");
	T_CHECK(client_query_add(&q, "", "x") == -EINVAL, "empty key");
	client_query_release(&q);
}

int main(void)
{
	T_RUN(test_empty);
	T_RUN(test_special_characters);
	T_RUN(test_64k_value_encoded);
	T_RUN(test_64k_value_refused_past_max);
	T_RUN(test_bad_key);
	return t_exit();
}
