/* The API's pure parts: JSON documents (errors, policies, endpoints, plan
 * differences, check answers), the token file and the constant-time
 * comparison, the Authorization check, path segments. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "mseg/api/api.h"
#include "mseg/model/inventory.h"
#include "mseg/model/policy.h"
#include "api/api_json.h"
#include "t.h"

static char *dump(const json_t *j)
{
	return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
}

static void test_error(void)
{
	json_t *j = api_json_error("bad thing", 3, 7);
	char *s = dump(j);

	T_STREQ(s, "{\"column\":7,\"error\":\"bad thing\",\"line\":3}");
	free(s);
	json_decref(j);
	j = api_json_error("no position", 0, 0);
	s = dump(j);
	T_STREQ(s, "{\"error\":\"no position\"}");
	free(s);
	json_decref(j);
}

static const char pol[] =
	"apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: shop, namespace: shop}\n"
	"spec:\n  groups:\n    web: {selector: {app: web}}\n    db: {selector: {app: db}}\n"
	"    office: {cidrs: [192.0.2.0/24], except: [192.0.2.7/32]}\n"
	"  allow:\n    - {from: web, to: db, ports: [tcp/5432, udp/1000-2000]}\n"
	"    - {from: office, to: db, ports: [icmp]}\n";
static const char eps[] =
	"endpoints:\n"
	"  - {id: web-1, name: web, namespace: shop, labels: {app: web}, netns: /run/netns/w, ips: [10.0.0.1]}\n"
	"  - {id: db-1, namespace: shop, labels: {app: db}, ips: [10.0.0.3, \"fd00::3\"],\n"
	"     ports: [{name: pg, port: 5432, protocol: TCP}]}\n";

static void test_policy_endpoint(void)
{
	struct mseg_policy_set set;
	struct mseg_inventory inv;
	struct mseg_err err;
	json_t *j;
	char *s;

	policy_set_init(&set);
	inventory_init(&inv);
	T_CHECK(policy_parse_buffer(&set, "p", pol, strlen(pol), &err) == 0, "%s", err.msg);
	T_CHECK(inventory_parse_buffer(&inv, "e", eps, strlen(eps), &err) == 0, "%s", err.msg);
	if (set.n != 1 || inv.n != 2)
		goto out;
	j = api_json_policy(set.items[0], "api");
	T_STREQ(json_string_value(json_object_get(j, "namespace")), "shop");
	T_STREQ(json_string_value(json_object_get(j, "kind")), "AllowList");
	T_STREQ(json_string_value(json_object_get(j, "source")), "api");
	s = dump(json_object_get(j, "isolation"));
	T_STREQ(s, "[\"ingress\",\"egress\"]");
	free(s);
	/* rule 0 ingress at db: ports rendered */
	s = dump(json_object_get(json_array_get(json_object_get(j, "rules"), 0), "ports"));
	T_STREQ(s, "[\"tcp/5432\",\"udp/1000-2000\"]");
	free(s);
	s = json_dumps(j, JSON_COMPACT);
	T_CHECK(s && strstr(s, "\"cidrs\":[\"192.0.2.0/24\"],\"except\":[\"192.0.2.7/32\"]"), "%s", s);
	free(s);
	json_decref(j);

	j = api_json_endpoint(inv.eps[0], "file:/x");
	s = dump(j);
	T_STREQ(s, "{\"id\":\"db-1\",\"ips\":[\"10.0.0.3\",\"fd00::3\"],\"labels\":{\"app\":\"db\"},"
		   "\"name\":\"db-1\",\"namespace\":\"shop\",\"netns\":null,\"ports\":[{\"name\":\"pg\","
		   "\"port\":5432,\"protocol\":\"TCP\"}],\"source\":\"file:/x\"}");
	free(s);
	json_decref(j);
out:
	policy_set_release(&set);
	inventory_release(&inv);
}

static void test_plan_diff(void)
{
	struct mseg_policy_set set;
	struct mseg_inventory inv;
	struct mseg_plan *before = NULL, *after = NULL;
	struct compile_opts o = { .default_mode = MSEG_MODE_ENFORCE };
	struct mseg_err err;
	json_t *d;
	char *s;

	policy_set_init(&set);
	inventory_init(&inv);
	T_CHECK(policy_parse_buffer(&set, "p", pol, strlen(pol), &err) == 0, "%s", err.msg);
	T_CHECK(inventory_parse_buffer(&inv, "e", eps, strlen(eps), &err) == 0, "%s", err.msg);
	T_CHECK(compile_plan(NULL, 0, (const struct mseg_endpoint *const *)inv.eps, inv.n, &o,
			     &before) == 0, "compile before");
	T_CHECK(compile_plan((const struct mseg_policy *const *)set.items, set.n,
			     (const struct mseg_endpoint *const *)inv.eps, inv.n, &o, &after) == 0,
		"compile after");
	if (!before || !after)
		goto out;
	d = api_json_plan_diff(before, after, 100);
	T_CHECK(json_array_size(d) == 2, "both endpoints change: %zu", json_array_size(d));
	s = dump(json_array_get(d, 0));
	/* db-1 ingress: isolated now, web's address on 5432 and 1000-2000,
	 * the office range minus .7 for icmp */
	T_CHECK(s && strstr(s, "\"endpoint\":\"db-1\"") && strstr(s, "\"isolated\":[false,true]") &&
		strstr(s, "10.0.0.1 . tcp . 5432") && strstr(s, "\"removed\":[]"), "%s", s);
	free(s);
	json_decref(d);
	/* no change: empty */
	d = api_json_plan_diff(after, after, 100);
	T_CHECK(json_array_size(d) == 0, "no change: %zu", json_array_size(d));
	json_decref(d);
	/* the other way: removals, capped lists keep the total */
	d = api_json_plan_diff(after, before, 1);
	s = dump(json_array_get(d, 0));
	T_CHECK(s && strstr(s, "\"isolated\":[true,false]") && strstr(s, "\"removed_total\":"), "%s", s);
	T_CHECK(json_array_size(json_object_get(json_object_get(json_array_get(d, 0), "ingress"),
						"removed")) == 1, "capped at 1");
	free(s);
	json_decref(d);
out:
	plan_free(before);
	plan_free(after);
	policy_set_release(&set);
	inventory_release(&inv);
}

/* An error message with bytes that are not UTF-8 keeps its text. */
static void test_error_not_utf8(void)
{
	json_t *j = api_json_error("label 'a\xff\xc3' in caf\xc3\xa9", 3, 7);
	const char *m = j ? json_string_value(json_object_get(j, "error")) : NULL;

	T_STREQ(m, "label 'a\\xff\\xc3' in caf\xc3\xa9");
	T_CHECK(j && json_integer_value(json_object_get(j, "line")) == 3, "line kept");
	json_decref(j);
}

static void test_tokens(void)
{
	const char *secret = "0123456789abcdef0123456789abcdef";
	char path[] = "/tmp/mseg-token.XXXXXX";
	struct mseg_err err;
	char *tok = NULL;
	int fd;

	T_CHECK(api_token_equal(secret, strlen(secret), secret, strlen(secret)), "equal");
	T_CHECK(!api_token_equal("0123456789abcdef0123456789abcdeX", 32, secret, 32), "last byte");
	T_CHECK(!api_token_equal(secret, 31, secret, 32), "prefix");
	T_CHECK(!api_token_equal("", 0, secret, 32), "empty");
	T_CHECK(api_auth_check(NULL, secret) == 401, "missing header");
	T_CHECK(api_auth_check("Basic abc", secret) == 401, "not bearer");
	T_CHECK(api_auth_check("Bearer ", secret) == 401, "empty bearer");
	T_CHECK(api_auth_check("Bearer nope", secret) == 403, "wrong");
	T_CHECK(api_auth_check("Bearer 0123456789abcdef0123456789abcdef", secret) == 0, "right");
	T_CHECK(api_auth_check("bearer 0123456789abcdef0123456789abcdef", secret) == 0, "scheme case");

	fd = mkstemp(path);
	T_CHECK(fd >= 0, "mkstemp");
	if (fd < 0)
		return;
	T_CHECK(write(fd, "short-secret\n", 13) == 13, "write");
	T_CHECK(api_token_load(path, &tok, &err) == -EINVAL, "short token refused");
	T_CHECK(!strstr(err.msg, "short-secret"), "the token is not in the message: %s", err.msg);
	T_CHECK(ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0, "truncate");
	T_CHECK(write(fd, "  0123456789abcdef0123456789abcdef\n", 35) == 35, "write");
	T_CHECK(api_token_load(path, &tok, &err) == 0, "%s", err.msg);
	T_STREQ(tok, secret);
	free(tok);
	/* readable by others: refused, saying the mode */
	T_CHECK(fchmod(fd, 0644) == 0, "chmod");
	T_CHECK(api_token_load(path, &tok, &err) == -EPERM, "mode 0644 refused");
	T_CHECK(strstr(err.msg, "mode 0644") && strstr(err.msg, "chmod 600"), "%s", err.msg);
	T_CHECK(fchmod(fd, 0640) == 0 && api_token_load(path, &tok, &err) == -EPERM,
		"group-readable refused");
	close(fd);
	unlink(path);
	T_CHECK(api_token_load("/nonexistent/token", &tok, &err) == -ENOENT, "missing file");
}

static void test_segments(void)
{
	char long_seg[300];

	memset(long_seg, 'a', sizeof(long_seg) - 1);
	long_seg[sizeof(long_seg) - 1] = '\0';
	T_CHECK(api_segment_valid("shop"), "plain");
	T_CHECK(api_segment_valid("web-1.a_b"), "id chars");
	T_CHECK(!api_segment_valid(".."), "..");
	T_CHECK(!api_segment_valid("."), ".");
	T_CHECK(!api_segment_valid(""), "empty");
	T_CHECK(!api_segment_valid("a%00b"), "escaped NUL stays escaped and is refused");
	T_CHECK(!api_segment_valid("a%2Fb"), "escaped slash");
	T_CHECK(!api_segment_valid("a b"), "space");
	T_CHECK(!api_segment_valid("a\\b"), "backslash");
	T_CHECK(!api_segment_valid(long_seg), "overlong");
	long_seg[API_MAX_SEGMENT] = '\0';
	T_CHECK(api_segment_valid(long_seg), "at the limit");
}

int main(void)
{
	T_RUN(test_error);
	T_RUN(test_policy_endpoint);
	T_RUN(test_plan_diff);
	T_RUN(test_error_not_utf8);
	T_RUN(test_tokens);
	T_RUN(test_segments);
	return t_exit();
}
