/* Dry runs of `mseg endpoint add|label` list the endpoint's own field
 * changes the way the user reads them: "labels: app=web -> app=api". */
#include <stdlib.h>

#include "mseg/client/changes.h"
#include "t.h"

static char *lines_new(const char *before, const char *after)
{
	json_t *b = before ? json_loads(before, 0, NULL) : NULL;
	json_t *a = json_loads(after, 0, NULL);
	json_t *c = client_endpoint_changes(b, a), *v;
	char *buf = NULL;
	size_t len = 0, i;
	FILE *m = open_memstream(&buf, &len);

	json_array_foreach(c, i, v)
		fprintf(m, "%s\n", json_string_value(v));
	fclose(m);
	json_decref(a);
	json_decref(b);
	json_decref(c);
	return buf;
}

static void test_label_change(void)
{
	char *s = lines_new("{\"id\":\"web\",\"name\":\"web\",\"labels\":{\"app\":\"web\",\"tier\":\"fe\"},"
			    "\"ips\":[\"10.0.0.1\"]}",
			    "{\"labels\":{\"tier\":\"fe\",\"app\":\"api\"}}");

	T_STREQ(s, "labels: app=web,tier=fe -> app=api,tier=fe\n");
	free(s);
}

static void test_new_endpoint(void)
{
	char *s = lines_new(NULL, "{\"name\":\"db\",\"netns\":\"/run/netns/db\","
			    "\"ips\":[\"10.0.0.3\",\"fd00::3\"],\"labels\":{}}");

	T_STREQ(s, "name: - -> db\nnetns: - -> /run/netns/db\nips: - -> 10.0.0.3,fd00::3\n");
	free(s);
}

static void test_nothing_changes(void)
{
	char *s = lines_new("{\"name\":\"db\",\"labels\":{\"a\":\"b\"}}",
			    "{\"name\":\"db\",\"labels\":{\"a\":\"b\"}}");

	T_STREQ(s, "");
	free(s);
}

static void test_label_removed(void)
{
	char *s = lines_new("{\"labels\":{\"app\":\"web\",\"old\":\"x\"}}",
			    "{\"labels\":{\"app\":\"web\"}}");

	T_STREQ(s, "labels: app=web,old=x -> app=web\n");
	free(s);
}

int main(void)
{
	T_RUN(test_label_change);
	T_RUN(test_new_endpoint);
	T_RUN(test_nothing_changes);
	T_RUN(test_label_removed);
	return t_exit();
}
