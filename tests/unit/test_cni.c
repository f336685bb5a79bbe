/* mseg-cni's pure parts: CNI_ARGS, the environment, the network config,
 * results and error objects. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mseg/cni/cni.h"
#include "t.h"

static int parse(struct cni_config *c, const char *s, enum cni_cmd cmd, struct cni_error *e)
{
	memset(e, 0, sizeof(*e));
	return cni_config_parse(c, s, strlen(s), cmd, e);
}

#define PREV "\"prevResult\": {\"cniVersion\": \"1.0.0\", \"interfaces\": [{\"name\": \"eth0\"}], " \
	     "\"ips\": [{\"address\": \"10.203.0.5/24\", \"gateway\": \"10.203.0.1\", \"interface\": 0}, " \
	     "{\"address\": \"fd00:203::5/64\", \"interface\": 0}]}"

static void test_args_k8s(void)
{
	struct cni_env env;
	struct cni_error e = { 0 };

	memset(&env, 0, sizeof(env));
	T_CHECK(cni_args_parse(&env, "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=db-0;"
			       "K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1", &e) == 0, "%s", e.msg);
	T_STREQ(env.pod_namespace, "shop");
	T_STREQ(env.pod_name, "db-0");
	T_STREQ(env.pod_uid, "u-1");
	T_CHECK(env.ignore_unknown, "IgnoreUnknown");
}

static void test_args_unknown(void)
{
	struct cni_env env;
	struct cni_error e = { 0 };

	memset(&env, 0, sizeof(env));
	T_CHECK(cni_args_parse(&env, "FOO=bar;K8S_POD_NAME=x", &e) == -EINVAL, "unknown key");
	T_CHECK(e.code == CNI_ERR_INVALID_ENV, "code %u", e.code);
	T_CHECK(strstr(e.msg, "'FOO'") != NULL, "%s", e.msg);
	/* IgnoreUnknown anywhere in the list, also after the unknown key */
	memset(&env, 0, sizeof(env));
	T_CHECK(cni_args_parse(&env, "FOO=bar;IgnoreUnknown=true;;", &e) == 0, "%s", e.msg);
	memset(&env, 0, sizeof(env));
	T_CHECK(cni_args_parse(&env, "K8S_POD_NAME", &e) == -EINVAL, "no '='");
	T_CHECK(e.code == CNI_ERR_INVALID_ENV, "code %u", e.code);
	memset(&env, 0, sizeof(env));
	T_CHECK(cni_args_parse(&env, "=x", &e) == -EINVAL, "empty key");
	memset(&env, 0, sizeof(env));
	T_CHECK(cni_args_parse(&env, "", &e) == 0 && !env.pod_name, "empty");
	memset(&env, 0, sizeof(env));
	T_CHECK(cni_args_parse(&env, "K8S_POD_NAME=;K8S_POD_NAMESPACE=", &e) == 0 &&
		!env.pod_name && !env.pod_namespace, "empty values are absent");
}

static void test_env(void)
{
	char *add[] = { "PATH=/bin", "CNI_COMMAND=ADD", "CNI_CONTAINERID=c0ffee-1",
			"CNI_NETNS=/run/netns/x", "CNI_IFNAME=eth0",
			"CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=web", NULL };
	char *no_netns[] = { "CNI_COMMAND=ADD", "CNI_CONTAINERID=c1", "CNI_IFNAME=eth0", NULL };
	char *del[] = { "CNI_COMMAND=DEL", "CNI_CONTAINERID=c1", NULL };
	char *bad_id[] = { "CNI_COMMAND=DEL", "CNI_CONTAINERID=-x", NULL };
	char *bad_cmd[] = { "CNI_COMMAND=add", NULL };
	char *rel_netns[] = { "CNI_COMMAND=CHECK", "CNI_CONTAINERID=c1", "CNI_NETNS=netns",
			      "CNI_IFNAME=eth0", NULL };
	char *version[] = { "CNI_COMMAND=VERSION", NULL };
	char *none[] = { NULL };
	struct cni_env env;
	struct cni_error e = { 0 };

	T_CHECK(cni_env_parse(&env, add, &e) == 0, "%s", e.msg);
	T_CHECK(env.cmd == CNI_CMD_ADD, "cmd");
	T_STREQ(env.containerid, "c0ffee-1");
	T_STREQ(env.netns, "/run/netns/x");
	T_STREQ(env.ifname, "eth0");
	T_STREQ(env.pod_name, "web");
	T_CHECK(cni_env_parse(&env, no_netns, &e) == -EINVAL && e.code == CNI_ERR_INVALID_ENV &&
		strstr(e.msg, "CNI_NETNS"), "%s", e.msg);
	T_CHECK(cni_env_parse(&env, del, &e) == 0 && env.cmd == CNI_CMD_DEL && !env.netns,
		"DEL needs only the id: %s", e.msg);
	T_CHECK(cni_env_parse(&env, bad_id, &e) == -EINVAL && e.code == CNI_ERR_INVALID_ENV,
		"bad id");
	T_CHECK(cni_env_parse(&env, bad_cmd, &e) == -EINVAL && e.code == CNI_ERR_INVALID_ENV,
		"commands are case sensitive");
	T_CHECK(cni_env_parse(&env, rel_netns, &e) == -EINVAL && e.code == CNI_ERR_INVALID_ENV,
		"relative netns");
	T_CHECK(cni_env_parse(&env, version, &e) == 0 && env.cmd == CNI_CMD_VERSION, "VERSION");
	T_CHECK(cni_env_parse(&env, none, &e) == -EINVAL && strstr(e.msg, "CNI_COMMAND"),
		"%s", e.msg);
}

static void test_config_defaults(void)
{
	struct cni_config c;
	struct cni_error e;

	T_CHECK(parse(&c, "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"mseg-cni\", "
		      PREV "}", CNI_CMD_ADD, &e) == 0, "%s", e.msg);
	T_STREQ(c.server, CNI_DEFAULT_SERVER);
	T_CHECK(!c.allow_unreachable, "fail by default");
	T_CHECK(c.timeout_sec == CNI_DEFAULT_TIMEOUT_SEC, "timeout %u", c.timeout_sec);
	T_CHECK(c.prev_result != NULL, "prevResult");
	T_CHECK(json_object_size(c.labels) == 0, "no labels");
	cni_config_release(&c);
}

static void test_config_options(void)
{
	struct cni_config c;
	struct cni_error e;

	T_CHECK(parse(&c, "{\"cniVersion\": \"0.4.0\", \"name\": \"n\", \"type\": \"mseg-cni\", "
		      "\"server\": \"unix:/tmp/x.sock\", \"onUnreachable\": \"allow\", "
		      "\"timeoutSeconds\": 3, \"labelsFromConfig\": true, "
		      "\"labels\": {\"app\": \"web\", \"tier\": \"a\"}, "
		      "\"args\": {\"cni\": {\"labels\": [{\"key\": \"tier\", \"value\": \"b\"}]}}, "
		      "\"runtimeConfig\": {\"labels\": {\"app\": \"api\"}}, " PREV "}",
		      CNI_CMD_ADD, &e) == 0, "%s", e.msg);
	T_STREQ(c.server, "unix:/tmp/x.sock");
	T_CHECK(c.allow_unreachable, "allow");
	T_CHECK(c.timeout_sec == 3, "timeout %u", c.timeout_sec);
	T_STREQ(json_string_value(json_object_get(c.labels, "app")), "api");
	T_STREQ(json_string_value(json_object_get(c.labels, "tier")), "b");
	cni_config_release(&c);
}

/* Labels from the network config (any of its three places) are no identity:
 * they reach msegd only with "labelsFromConfig": true. */
static void test_config_labels_opt_in(void)
{
	static const char *const with_labels[] = {
		"\"labels\": {\"app\": \"db\"}",
		"\"args\": {\"cni\": {\"labels\": [{\"key\": \"app\", \"value\": \"db\"}]}}",
		"\"runtimeConfig\": {\"labels\": {\"app\": \"db\"}}",
	};
	char buf[512];
	struct cni_config c;
	struct cni_error e;

	for (size_t i = 0; i < sizeof(with_labels) / sizeof(with_labels[0]); i++) {
		snprintf(buf, sizeof(buf), "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", "
			 "\"type\": \"t\", %s, " PREV "}", with_labels[i]);
		T_CHECK(parse(&c, buf, CNI_CMD_ADD, &e) == 0, "case %zu: %s", i, e.msg);
		T_CHECK(json_object_size(c.labels) == 0, "case %zu: labels ignored by default", i);
		T_CHECK(c.labels_ignored, "case %zu: and that is known (for the warning)", i);
		cni_config_release(&c);

		snprintf(buf, sizeof(buf), "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", "
			 "\"type\": \"t\", \"labelsFromConfig\": false, %s, " PREV "}",
			 with_labels[i]);
		T_CHECK(parse(&c, buf, CNI_CMD_ADD, &e) == 0, "case %zu: %s", i, e.msg);
		T_CHECK(json_object_size(c.labels) == 0, "case %zu: false = ignored", i);
		cni_config_release(&c);

		snprintf(buf, sizeof(buf), "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", "
			 "\"type\": \"t\", \"labelsFromConfig\": true, %s, " PREV "}",
			 with_labels[i]);
		T_CHECK(parse(&c, buf, CNI_CMD_ADD, &e) == 0, "case %zu: %s", i, e.msg);
		T_STREQ(json_string_value(json_object_get(c.labels, "app")), "db");
		T_CHECK(!c.labels_ignored, "case %zu: used", i);
		cni_config_release(&c);
	}
	/* no labels at all: nothing to warn about */
	T_CHECK(parse(&c, "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"t\", " PREV "}",
		      CNI_CMD_ADD, &e) == 0, "%s", e.msg);
	T_CHECK(!c.labels_ignored, "no labels, none ignored");
	cni_config_release(&c);
}

/* A token never goes over plain HTTP to a host that is not loopback. */
static void test_config_token_http(void)
{
	static const char *const ok[] = {
		"https://10.0.0.1:8443", "unix:/run/mseg/api.sock", "http://127.0.0.1:18080",
		"http://127.1.2.3:80/", "http://[::1]:8080", "http://localhost:8080/",
		"http://LOCALHOST", "http://127.0.0.1",
	};
	static const char *const bad[] = {
		"http://10.0.0.1:8080", "http://msegd.example:80", "http://[::2]:80",
		"http://127.0.0.1@10.0.0.1:80", "http://127.0.0.1.nip.io:80",
		"http://localhost.example:80", "http://127.0.0.1:80@10.0.0.1/",
		"http://[::ffff:10.0.0.1]:80", "http://127.0.0.1x:80", "http://0x7f000001:80",
		"http://[::1:80",
	};
	char buf[512];
	struct cni_config c;
	struct cni_error e;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(buf, sizeof(buf), "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", "
			 "\"type\": \"t\", \"server\": \"%s\", \"tokenFile\": \"/etc/mseg/t\"}",
			 ok[i]);
		T_CHECK(parse(&c, buf, CNI_CMD_DEL, &e) == 0, "'%s': %s", ok[i], e.msg);
		cni_config_release(&c);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(buf, sizeof(buf), "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", "
			 "\"type\": \"t\", \"server\": \"%s\", \"tokenFile\": \"/etc/mseg/t\"}",
			 bad[i]);
		T_CHECK(parse(&c, buf, CNI_CMD_DEL, &e) == -EINVAL, "'%s' accepted", bad[i]);
		T_CHECK(e.code == CNI_ERR_INVALID_CONFIG && strstr(e.msg, "\"tokenFile\"") &&
			strstr(e.msg, "\"server\"") && strstr(e.msg, "unencrypted"),
			"'%s': %u %s", bad[i], e.code, e.msg);
		T_CHECK(c.root == NULL, "released");
		/* without a token, plain http is the operator's choice */
		snprintf(buf, sizeof(buf), "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", "
			 "\"type\": \"t\", \"server\": \"%s\"}", bad[i]);
		T_CHECK(parse(&c, buf, CNI_CMD_DEL, &e) == 0, "'%s' without token: %s", bad[i],
			e.msg);
		cni_config_release(&c);
	}
}

static void put_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	T_CHECK(fd >= 0, "create %s", path);
	if (fd < 0)
		return;
	T_CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text), "write %s", path);
	close(fd);
	T_CHECK(chmod(path, mode) == 0, "chmod %s", path);
}

/* expect_token_error(PATH, NEEDLE): cni_token_read() refuses with code 7, a
 * message naming "tokenFile" and NEEDLE, and leaves no token behind. */
#define expect_token_error(path, needle)                                                \
	do {                                                                            \
		char tok_[64] = "junk";                                                 \
		struct cni_error e_ = { 0 };                                            \
		int r_ = cni_token_read((path), dirs, owner, tok_, sizeof(tok_), &e_);  \
		T_CHECK(r_ < 0 && e_.code == CNI_ERR_INVALID_CONFIG, "%s: r=%d code %u", \
			(path), r_, e_.code);                                           \
		T_CHECK(strstr(e_.msg, "\"tokenFile\"") && strstr(e_.msg, (needle)),   \
			"%s: '%s' lacks '%s'", (path), e_.msg, (needle));               \
		T_CHECK(tok_[0] == '\0', "%s: no token read", (path));                  \
	} while (0)

/* Token files only from an allowed, root-owned directory. The directories
 * here are the test's own (mkdtemp: mode 0700, owned by the test's user),
 * passed to cni_token_read() as the allowed list; the test's user stands
 * in for root when the test does not run as root. */
static void test_token_file(void)
{
	char allowed[] = "/tmp/mseg-cni-tok.XXXXXX", outside[] = "/tmp/mseg-cni-out.XXXXXX";
	char p[7][256], tok[64];
	const char *dirs[] = { "/nonexistent/mseg", allowed, NULL };
	uid_t owner = geteuid();
	struct cni_error e = { 0 };

	if (!mkdtemp(allowed) || !mkdtemp(outside)) {
		T_CHECK(0, "mkdtemp");
		return;
	}
	snprintf(p[0], sizeof(p[0]), "%s/token", allowed);
	snprintf(p[1], sizeof(p[1]), "%s/token", outside);
	snprintf(p[2], sizeof(p[2]), "%s/escape", allowed);
	snprintf(p[3], sizeof(p[3]), "%s/readable", allowed);
	snprintf(p[4], sizeof(p[4]), "%s/open", allowed);
	snprintf(p[5], sizeof(p[5]), "%s/open/token", allowed);
	snprintf(p[6], sizeof(p[6]), "%s/other-owner", allowed);
	put_file(p[0], "s3cret-token-0123456789abcdef\nsecond line\n", 0600);
	put_file(p[1], "outside-token\n", 0600);
	T_CHECK(symlink(p[1], p[2]) == 0, "symlink");
	put_file(p[3], "readable-token\n", 0640);
	T_CHECK(mkdir(p[4], 0775) == 0 && chmod(p[4], 0775) == 0, "mkdir");
	put_file(p[5], "token-in-open-dir\n", 0600);
	put_file(p[6], "foreign-token\n", 0600);

	/* the good case: first line, without its end */
	T_CHECK(cni_token_read(p[0], dirs, owner, tok, sizeof(tok), &e) == 0, "%s", e.msg);
	T_STREQ(tok, "s3cret-token-0123456789abcdef");
	/* a relative path resolves inside the allowed dir only by accident */
	expect_token_error("token", "not an absolute path");
	/* outside the allowed directories */
	expect_token_error(p[1], "not inside an allowed token directory");
	expect_token_error("/etc/passwd", "not inside an allowed token directory");
	/* "/allowed/../outside/token" is outside once resolved */
	{
		char dotdot[300];

		snprintf(dotdot, sizeof(dotdot), "%s/../%s/token", allowed, outside + 5);
		expect_token_error(dotdot, "not inside an allowed token directory");
	}
	/* a symlink in the allowed directory pointing out of it */
	expect_token_error(p[2], "not inside an allowed token directory");
	/* readable by the group */
	expect_token_error(p[3], "accessible to group or others (mode 0640)");
	/* in a subdirectory others may write to (they could swap the file) */
	expect_token_error(p[5], "is writable by group or others (mode 0775)");
	/* owned by someone else than root */
	if (owner == 0) {
		T_CHECK(chown(p[6], 65534, 65534) == 0, "chown");
		expect_token_error(p[6], "is owned by uid 65534, not by root");
		/* ... and the allowed directory itself */
		T_CHECK(chown(allowed, 65534, 0) == 0, "chown dir");
		expect_token_error(p[0], "is owned by uid 65534, not by root");
		T_CHECK(chown(allowed, 0, 0) == 0, "chown dir back");
	} else {
		char tok2[64];

		T_CHECK(cni_token_read(p[6], dirs, owner + 1, tok2, sizeof(tok2), &e) < 0 &&
			strstr(e.msg, "not by root"), "%s", e.msg);
	}
	/* the allowed directory itself writable by others */
	T_CHECK(chmod(allowed, 0777) == 0, "chmod dir");
	expect_token_error(p[0], "is writable by group or others (mode 0777)");
	T_CHECK(chmod(allowed, 0700) == 0, "chmod dir back");
	/* not a regular file; empty */
	expect_token_error(p[4], "not a regular file");
	put_file(p[0], "\n", 0600);
	expect_token_error(p[0], "is empty");
	/* no allowed directory at all; "/" (also spelt "/tmp/..") is none */
	{
		const char *none[] = { NULL };
		const char *root[] = { "/", "/tmp/..", NULL };

		put_file(p[0], "s3cret-token\n", 0600);
		T_CHECK(cni_token_read(p[0], none, owner, tok, sizeof(tok), &e) < 0 &&
			strstr(e.msg, "not inside"), "%s", e.msg);
		T_CHECK(cni_token_read(p[0], root, owner, tok, sizeof(tok), &e) < 0 &&
			strstr(e.msg, "not inside"), "'/' admits nothing: %s", e.msg);
	}

	for (int i = 6; i >= 0; i--)
		unlink(p[i]);
	rmdir(p[4]);
	rmdir(allowed);
	rmdir(outside);
}

struct bad_case {
	const char *json;
	enum cni_cmd cmd;
	unsigned code;
	const char *needle;
};

static void test_config_bad(void)
{
	static const struct bad_case cases[] = {
		{ "", CNI_CMD_ADD, CNI_ERR_DECODE, "decode" },
		{ "{\"cniVersion\": \"1.0.0\",", CNI_CMD_ADD, CNI_ERR_DECODE, "decode" },
		{ "[1, 2]", CNI_CMD_ADD, CNI_ERR_DECODE, "object" },
		{ "{\"cniVersion\": \"1.0.0\"} trailing", CNI_CMD_DEL, CNI_ERR_DECODE, "decode" },
		{ "{\"name\": \"a\", \"name\": \"b\"}", CNI_CMD_DEL, CNI_ERR_DECODE, "duplicate" },
		{ "{\"name\": \"n\", \"type\": \"t\"}", CNI_CMD_DEL, CNI_ERR_INVALID_CONFIG, "cniVersion" },
		{ "{\"cniVersion\": 1, \"name\": \"n\", \"type\": \"t\"}", CNI_CMD_DEL,
		  CNI_ERR_INVALID_CONFIG, "cniVersion" },
		{ "{\"cniVersion\": \"0.3.1\", \"name\": \"n\", \"type\": \"t\"}", CNI_CMD_DEL,
		  CNI_ERR_INCOMPATIBLE_VERSION, "0.3.1" },
		{ "{\"cniVersion\": \"1.0.0\", \"type\": \"t\"}", CNI_CMD_DEL, CNI_ERR_INVALID_CONFIG,
		  "name" },
		{ "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"t\"}", CNI_CMD_ADD,
		  CNI_ERR_INVALID_CONFIG, "prevResult" },
		{ "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"t\", \"prevResult\": 3}",
		  CNI_CMD_CHECK, CNI_ERR_INVALID_CONFIG, "prevResult" },
		{ "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"t\", \"server\": \"/x\"}",
		  CNI_CMD_DEL, CNI_ERR_INVALID_CONFIG, "server" },
		{ "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"t\", \"onUnreachable\": \"open\"}",
		  CNI_CMD_DEL, CNI_ERR_INVALID_CONFIG, "onUnreachable" },
		{ "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"t\", \"timeoutSeconds\": 0}",
		  CNI_CMD_DEL, CNI_ERR_INVALID_CONFIG, "timeoutSeconds" },
		{ "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"t\", \"timeoutSeconds\": \"5\"}",
		  CNI_CMD_DEL, CNI_ERR_INVALID_CONFIG, "timeoutSeconds" },
		{ "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"t\", \"labels\": {\"a\": 1}}",
		  CNI_CMD_DEL, CNI_ERR_INVALID_CONFIG, "labels" },
		{ "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"t\", \"labels\": [\"a\"]}",
		  CNI_CMD_DEL, CNI_ERR_INVALID_CONFIG, "labels" },
		{ "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"t\", "
		  "\"args\": {\"cni\": {\"labels\": [{\"key\": \"a\"}]}}}",
		  CNI_CMD_DEL, CNI_ERR_INVALID_CONFIG, "args.cni.labels[0]" },
		{ "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"t\", "
		  "\"labelsFromConfig\": \"yes\"}", CNI_CMD_DEL, CNI_ERR_INVALID_CONFIG,
		  "\"labelsFromConfig\" must be true or false" },
	};
	struct cni_config c;
	struct cni_error e;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = parse(&c, cases[i].json, cases[i].cmd, &e);

		T_CHECK(r == -EINVAL, "case %zu: r=%d", i, r);
		T_CHECK(e.code == cases[i].code, "case %zu: code %u, want %u (%s)", i, e.code,
			cases[i].code, e.msg);
		T_CHECK(strstr(e.msg, cases[i].needle) != NULL, "case %zu: '%s' lacks '%s'", i,
			e.msg, cases[i].needle);
		T_CHECK(c.root == NULL && c.labels == NULL, "case %zu: released", i);
	}
	/* a NUL byte inside the document */
	memset(&e, 0, sizeof(e));
	T_CHECK(cni_config_parse(&c, "{}\0{}", 5, CNI_CMD_DEL, &e) == -EINVAL &&
		e.code == CNI_ERR_DECODE, "NUL byte");
	/* too large */
	{
		size_t n = CNI_MAX_CONFIG_SIZE + 1;
		char *big = malloc(n);

		memset(big, ' ', n);
		T_CHECK(cni_config_parse(&c, big, n, CNI_CMD_DEL, &e) == -EINVAL &&
			e.code == CNI_ERR_DECODE, "too large");
		free(big);
	}
}

static void test_result_ips(void)
{
	struct cni_config c;
	struct cni_error e;
	json_t *ips = NULL;

	T_CHECK(parse(&c, "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"t\", " PREV "}",
		      CNI_CMD_ADD, &e) == 0, "%s", e.msg);
	T_CHECK(cni_result_ips(c.prev_result, &ips, &e) == 0, "%s", e.msg);
	T_CHECK(json_array_size(ips) == 2, "two");
	T_STREQ(json_string_value(json_array_get(ips, 0)), "10.203.0.5");
	T_STREQ(json_string_value(json_array_get(ips, 1)), "fd00:203::5");
	json_decref(ips);
	cni_config_release(&c);

	T_CHECK(parse(&c, "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"t\", "
		      "\"prevResult\": {\"ips\": []}}", CNI_CMD_ADD, &e) == 0, "%s", e.msg);
	T_CHECK(cni_result_ips(c.prev_result, &ips, &e) == -EINVAL && !ips &&
		e.code == CNI_ERR_INVALID_CONFIG, "no address");
	cni_config_release(&c);

	T_CHECK(parse(&c, "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"t\", "
		      "\"prevResult\": {\"ips\": [{\"address\": \"10.0.0.300/24\"}]}}",
		      CNI_CMD_ADD, &e) == 0, "%s", e.msg);
	T_CHECK(cni_result_ips(c.prev_result, &ips, &e) == -EINVAL &&
		strstr(e.msg, "10.0.0.300"), "bad address: %s", e.msg);
	cni_config_release(&c);
}

static void test_result_convert(void)
{
	json_t *prev = json_loads("{\"cniVersion\": \"0.4.0\", \"ips\": [{\"version\": \"4\", "
				  "\"address\": \"10.0.0.2/24\"}, {\"address\": \"fd00::2/64\"}], "
				  "\"dns\": {}}", 0, NULL);
	json_t *r1 = cni_result_convert(prev, "1.0.0");
	json_t *r0 = cni_result_convert(r1, "0.4.0");

	T_STREQ(json_string_value(json_object_get(r1, "cniVersion")), "1.0.0");
	T_CHECK(!json_object_get(json_array_get(json_object_get(r1, "ips"), 0), "version"),
		"1.0.0 has no ips[].version");
	T_CHECK(json_object_get(r1, "dns") != NULL, "other fields kept");
	T_STREQ(json_string_value(json_object_get(r0, "cniVersion")), "0.4.0");
	T_STREQ(json_string_value(json_object_get(json_array_get(json_object_get(r0, "ips"), 0),
						  "version")), "4");
	T_STREQ(json_string_value(json_object_get(json_array_get(json_object_get(r0, "ips"), 1),
						  "version")), "6");
	T_STREQ(json_string_value(json_object_get(prev, "cniVersion")), "0.4.0");
	json_decref(prev);
	json_decref(r1);
	json_decref(r0);
}

static void test_endpoint_body(void)
{
	char *envp[] = { "CNI_COMMAND=ADD", "CNI_CONTAINERID=abc123", "CNI_NETNS=/run/netns/p",
			 "CNI_IFNAME=eth0", "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;"
			 "K8S_POD_NAME=db-0", NULL };
	char *envp2[] = { "CNI_COMMAND=ADD", "CNI_CONTAINERID=abc123", "CNI_NETNS=/run/netns/p",
			  "CNI_IFNAME=eth0", NULL };
	struct cni_config c;
	struct cni_env env;
	struct cni_error e;
	json_t *ips = NULL, *body;
	char *s;

	T_CHECK(parse(&c, "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"t\", "
		      "\"labelsFromConfig\": true, \"labels\": {\"app\": \"postgres\"}, " PREV "}",
		      CNI_CMD_ADD, &e) == 0,
		"%s", e.msg);
	T_CHECK(cni_env_parse(&env, envp, &e) == 0, "%s", e.msg);
	T_CHECK(cni_result_ips(c.prev_result, &ips, &e) == 0, "%s", e.msg);
	body = cni_endpoint_body(&c, &env, ips);
	s = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	T_STREQ(s, "{\"ips\":[\"10.203.0.5\",\"fd00:203::5\"],\"labels\":{\"app\":\"postgres\"},"
		   "\"name\":\"db-0\",\"namespace\":\"shop\",\"netns\":\"/run/netns/p\"}");
	free(s);
	json_decref(body);
	/* without Kubernetes: the container id and "default" */
	T_CHECK(cni_env_parse(&env, envp2, &e) == 0, "%s", e.msg);
	body = cni_endpoint_body(&c, &env, ips);
	T_STREQ(json_string_value(json_object_get(body, "name")), "abc123");
	T_STREQ(json_string_value(json_object_get(body, "namespace")), "default");
	json_decref(body);
	json_decref(ips);
	cni_config_release(&c);
}

static void test_error_json(void)
{
	struct cni_error e = { 0 };
	json_t *o;
	char *s;

	T_CHECK(cni_error_set(&e, EINVAL, CNI_ERR_INVALID_CONFIG, "more \"here\"",
			      "bad %s", "thing") == -EINVAL, "returns -errno");
	s = cni_error_json(&e, "0.4.0");
	o = json_loads(s, 0, NULL);
	T_CHECK(o != NULL, "valid JSON: %s", s);
	T_STREQ(json_string_value(json_object_get(o, "cniVersion")), "0.4.0");
	T_CHECK(json_integer_value(json_object_get(o, "code")) == 7, "code");
	T_STREQ(json_string_value(json_object_get(o, "msg")), "bad thing");
	T_STREQ(json_string_value(json_object_get(o, "details")), "more \"here\"");
	json_decref(o);
	free(s);
	e.details[0] = '\0';
	s = cni_error_json(&e, NULL);
	o = json_loads(s, 0, NULL);
	T_STREQ(json_string_value(json_object_get(o, "cniVersion")), "1.0.0");
	T_CHECK(!json_object_get(o, "details"), "no empty details");
	json_decref(o);
	free(s);
}

static void test_version(void)
{
	char *s = cni_version_json();
	json_t *o = json_loads(s, 0, NULL), *v = json_object_get(o, "supportedVersions");

	T_CHECK(json_array_size(v) == 2, "two versions");
	T_STREQ(json_string_value(json_array_get(v, 0)), "0.4.0");
	T_STREQ(json_string_value(json_array_get(v, 1)), "1.0.0");
	T_CHECK(cni_version_supported("1.0.0") && cni_version_supported("0.4.0") &&
		!cni_version_supported("0.3.1") && !cni_version_supported(NULL), "supported");
	json_decref(o);
	free(s);
	s = cni_config_sniff_version("{\"cniVersion\": \"0.4.0\", \"x\": [", 28);
	T_CHECK(s == NULL, "sniffing needs a document");
	free(s);
	s = cni_config_sniff_version("{\"cniVersion\": \"0.4.0\"}", 23);
	T_STREQ(s, "0.4.0");
	free(s);
}

static void test_rules_programmed(void)
{
	const char *yes = "{\"id\": \"a\", \"programmed\": true}";
	const char *no = "{\"id\": \"a\", \"programmed\": false, \"in_sync\": true}";
	const char *alt = "{\"in_sync\": true}";

	T_CHECK(cni_rules_is_programmed(yes, strlen(yes)), "yes");
	T_CHECK(!cni_rules_is_programmed(no, strlen(no)), "programmed wins");
	T_CHECK(cni_rules_is_programmed(alt, strlen(alt)), "in_sync");
	T_CHECK(!cni_rules_is_programmed("{}", 2), "nothing said");
	T_CHECK(!cni_rules_is_programmed("garbage", 7), "garbage");
}

int main(void)
{
	T_RUN(test_args_k8s);
	T_RUN(test_args_unknown);
	T_RUN(test_env);
	T_RUN(test_config_defaults);
	T_RUN(test_config_options);
	T_RUN(test_config_bad);
	T_RUN(test_config_labels_opt_in);
	T_RUN(test_config_token_http);
	T_RUN(test_token_file);
	T_RUN(test_result_ips);
	T_RUN(test_result_convert);
	T_RUN(test_endpoint_body);
	T_RUN(test_error_json);
	T_RUN(test_version);
	T_RUN(test_rules_programmed);
	return t_exit();
}
