/* msegd's flags and config file: values, precedence, and errors that name
 * the option (and file:line for the config file). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mseg/daemon/daemon.h"
#include "t.h"

static int parse(struct daemon_config *c, struct mseg_err *err, int argc, char **argv)
{
	daemon_config_init(c);
	err_clear(err);
	return daemon_config_parse(c, argc, argv, err);
}

static char *write_conf(const char *text)
{
	static char path[] = "/tmp/mseg-test-conf-XXXXXX";
	char *p = strdup(path);
	int fd = mkstemp(p);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		free(p);
		return NULL;
	}
	close(fd);
	return p;
}

static void test_defaults_and_flags(void)
{
	struct daemon_config c;
	struct mseg_err err;
	char *argv[] = { "msegd", "--policy-dir", "/p", "--mode", "audit", "--default-deny",
			 "--resync", "5", "--queue-rate", "50", NULL };

	T_CHECK(parse(&c, &err, 10, argv) == 0, "%s", err.msg);
	T_STREQ(c.policy_dir, "/p");
	T_STREQ(c.state_dir, "/var/lib/mseg");
	T_STREQ(c.listen, "unix:/run/mseg/api.sock");
	T_CHECK(c.mode == MSEG_MODE_AUDIT, "mode");
	T_CHECK(c.default_deny, "default-deny");
	T_CHECK(c.resync_sec == 5, "resync %u", c.resync_sec);
	T_CHECK(c.queue_rate == 50 && c.queue_burst == 200, "rate %u burst %u", c.queue_rate,
		c.queue_burst);
	T_CHECK(c.flow_ring_size == 10000 && c.flow_window_sec == 60, "flow defaults");
	T_STREQ(c.flow_log, "/var/lib/mseg/flows.jsonl");
	T_CHECK(c.revoke == MSEG_REVOKE_ESTABLISHED, "revoke default %d", c.revoke);
	T_CHECK(c.kube_share == 50, "kube reconcile share default %u", c.kube_share);
	daemon_config_release(&c);
}

/* Flows survive a restart by default: the log lives in the state dir
 * unless --flow-log names another file or none. */
static void test_flow_log_default(void)
{
	struct daemon_config c;
	struct mseg_err err;
	char *a1[] = { "msegd", "--state-dir", "/s", NULL };
	char *a2[] = { "msegd", "--state-dir", "/s", "--flow-log", "none", NULL };
	char *a3[] = { "msegd", "--flow-log", "/f.jsonl", NULL };

	T_CHECK(parse(&c, &err, 3, a1) == 0, "%s", err.msg);
	T_STREQ(c.flow_log, "/s/flows.jsonl");
	daemon_config_release(&c);
	T_CHECK(parse(&c, &err, 5, a2) == 0, "%s", err.msg);
	T_CHECK(c.flow_log == NULL, "none: no log, got '%s'", c.flow_log);
	daemon_config_release(&c);
	T_CHECK(parse(&c, &err, 3, a3) == 0, "%s", err.msg);
	T_STREQ(c.flow_log, "/f.jsonl");
	daemon_config_release(&c);
}

static void test_revoke(void)
{
	struct daemon_config c;
	struct mseg_err err;
	char *argv[] = { "msegd", "--revoke", "new-only", NULL };
	char *argv2[] = { "msegd", "--revoke=established", NULL };

	T_CHECK(parse(&c, &err, 3, argv) == 0, "%s", err.msg);
	T_CHECK(c.revoke == MSEG_REVOKE_NEW_ONLY, "revoke %d", c.revoke);
	daemon_config_release(&c);
	T_CHECK(parse(&c, &err, 2, argv2) == 0, "%s", err.msg);
	T_CHECK(c.revoke == MSEG_REVOKE_ESTABLISHED, "revoke %d", c.revoke);
	daemon_config_release(&c);
}

static void test_bad_flags(void)
{
	/* getopt takes char **: the cases are copied before each parse */
	static const struct {
		const char *argv[4];
		const char *msg;
	} cases[] = {
		{ { "msegd", "--mode", "bogus" }, "--mode 'bogus': expected enforce or audit" },
		{ { "msegd", "--revoke", "never" },
		  "--revoke 'never': expected established or new-only" },
		{ { "msegd", "--resync", "-1" }, "--resync '-1': expected seconds 0..86400" },
		{ { "msegd", "--queue-num", "65536" }, "--queue-num '65536': expected 0..65535" },
		{ { "msegd", "--listen", "/run/x.sock" },
		  "--listen '/run/x.sock': expected unix:/absolute/path" },
		{ { "msegd", "--listen-tcp", "127.0.0.1:9000" }, "--listen-tcp requires --token-file" },
		{ { "msegd", "--tls-cert", "/c" }, "--tls-cert and --tls-key go together" },
		{ { "msegd", "--nope" }, "unknown option or missing value: '--nope'" },
		{ { "msegd", "stray" }, "unexpected argument 'stray'" },
		{ { "msegd", "--kube-reconcile-share", "4" },
		  "--kube-reconcile-share '4': expected a percentage of a core, 5..100" },
		{ { "msegd", "--kube-reconcile-share", "101" },
		  "--kube-reconcile-share '101': expected a percentage of a core, 5..100" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct daemon_config c;
		struct mseg_err err;
		int argc = cases[i].argv[2] ? 3 : 2;
		char *argv[4] = { NULL };

		for (int a = 0; a < argc; a++)
			argv[a] = (char *)cases[i].argv[a];
		T_CHECK(parse(&c, &err, argc, argv) == -EINVAL, "case %zu accepted", i);
		T_STREQ(err.msg, cases[i].msg);
		daemon_config_release(&c);
	}
}

/* getopt_long() would take "--def" for "--default-deny": msegd refuses it,
 * as it refuses every abbreviation, and names what it refused */
static void test_abbreviations_refused(void)
{
	static const struct {
		const char *argv[4];
		const char *msg;
	} cases[] = {
		{ { "msegd", "--def" }, "unknown option '--def' (abbreviations are not accepted)" },
		{ { "msegd", "--rev", "new-only" },
		  "unknown option '--rev' (abbreviations are not accepted)" },
		{ { "msegd", "--mod=audit" }, "unknown option '--mod' (abbreviations are not accepted)" },
		{ { "msegd", "--policy", "/p" },
		  "unknown option '--policy' (abbreviations are not accepted)" },
		{ { "msegd", "--flow-log-s", "4" },
		  "unknown option '--flow-log-s' (abbreviations are not accepted)" },
		/* before --config is read: the file would not be opened */
		{ { "msegd", "--conf", "/nonexistent" },
		  "unknown option '--conf' (abbreviations are not accepted)" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct daemon_config c;
		struct mseg_err err;
		int argc = cases[i].argv[2] ? 3 : 2;
		char *argv[4] = { NULL };

		for (int a = 0; a < argc; a++)
			argv[a] = (char *)cases[i].argv[a];
		T_CHECK(parse(&c, &err, argc, argv) == -EINVAL, "case %zu accepted", i);
		T_STREQ(err.msg, cases[i].msg);
		T_CHECK(!c.default_deny, "case %zu: --default-deny was applied", i);
		daemon_config_release(&c);
	}
}

/* the full names still work, also with "=", and a value that looks like
 * an abbreviation is a value */
static void test_full_names_accepted(void)
{
	struct daemon_config c;
	struct mseg_err err;
	char *argv[] = { "msegd", "--default-deny", "--mode=audit", "--policy-dir", "--def", NULL };

	T_CHECK(parse(&c, &err, 5, argv) == 0, "%s", err.msg);
	T_CHECK(c.default_deny && c.mode == MSEG_MODE_AUDIT, "flags");
	T_STREQ(c.policy_dir, "--def");
	daemon_config_release(&c);
}

static void test_config_file(void)
{
	struct daemon_config c;
	struct mseg_err err;
	char *path = write_conf("# msegd settings\npolicy-dir: /etc/mseg/policies\n"
				"default-deny: true\nresync: \"10\"\nmode: audit\n");
	char *argv[] = { "msegd", "--config", path, "--mode", "enforce", NULL };

	T_CHECK(path != NULL, "temp file");
	if (!path)
		return;
	T_CHECK(parse(&c, &err, 5, argv) == 0, "%s", err.msg);
	T_STREQ(c.policy_dir, "/etc/mseg/policies");
	T_CHECK(c.default_deny && c.resync_sec == 10, "file values");
	T_CHECK(c.mode == MSEG_MODE_ENFORCE, "the command line wins over the file");
	daemon_config_release(&c);
	unlink(path);
	free(path);
}

static void test_config_file_errors(void)
{
	static const struct {
		const char *text;
		unsigned line;
		const char *msg;
	} cases[] = {
		{ "resync: 10\nresync: abc\n", 2, "--resync 'abc': expected seconds 0..86400" },
		{ "polcy-dir: /x\n", 1, "unknown setting 'polcy-dir'" },
		{ "just words\n", 1, "expected 'key: value'" },
		{ "default-deny: maybe\n", 1, "'default-deny' expects true or false" },
		{ "help: true\n", 1, "unknown setting 'help'" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct daemon_config c;
		struct mseg_err err;
		char *path = write_conf(cases[i].text);
		char *argv[] = { "msegd", "--config", path, NULL };

		T_CHECK(path != NULL, "temp file");
		if (!path)
			continue;
		T_CHECK(parse(&c, &err, 3, argv) == -EINVAL, "case %zu accepted", i);
		T_STREQ(err.file, path);
		T_CHECK(err.line == cases[i].line, "case %zu: line %u", i, err.line);
		T_STREQ(err.msg, cases[i].msg);
		daemon_config_release(&c);
		unlink(path);
		free(path);
	}
}

/* The Kubernetes reconcile pace: a burst waits the debounce; after a long
 * reconcile, the next starts when reconciles have had their share (20%:
 * four durations after its end). */
static void test_kube_pace(void)
{
	const uint64_t ms = 1000000;

	T_CHECK(daemon_kube_delay_ms(0, 0, 5 * ms, 10, 20) == 10, "no reconcile yet: the debounce");
	T_CHECK(daemon_kube_delay_ms(100 * ms, 1 * ms, 101 * ms, 10, 20) == 10,
		"a 1 ms reconcile: the debounce");
	T_CHECK(daemon_kube_delay_ms(100 * ms, 50 * ms, 100 * ms, 10, 20) == 4 * 50,
		"right after a 50 ms reconcile: %llu ms",
		(unsigned long long)daemon_kube_delay_ms(100 * ms, 50 * ms, 100 * ms, 10, 20));
	T_CHECK(daemon_kube_delay_ms(100 * ms, 50 * ms, 250 * ms, 10, 20) == 50,
		"150 ms after it: the rest, 50 ms");
	T_CHECK(daemon_kube_delay_ms(100 * ms, 50 * ms, 299 * ms, 10, 20) == 10,
		"1 ms left: still the debounce");
	T_CHECK(daemon_kube_delay_ms(100 * ms, 50 * ms, 400 * ms, 10, 20) == 10, "long after: debounce");
	T_CHECK(daemon_kube_delay_ms(100 * ms, 2000 * ms, 100 * ms, 10, 20) == KUBE_PACE_MAX_MS,
		"never more than KUBE_PACE_MAX_MS");
	T_CHECK(daemon_kube_delay_ms(100 * ms, 50 * ms, 100 * ms, 10, 50) == 50,
		"a 50%% share: one duration");
	T_CHECK(daemon_kube_delay_ms(100 * ms, 50 * ms, 100 * ms, 10, 100) == 10,
		"a 100%% share: the debounce only");
}

int main(void)
{
	T_RUN(test_kube_pace);
	T_RUN(test_defaults_and_flags);
	T_RUN(test_flow_log_default);
	T_RUN(test_bad_flags);
	T_RUN(test_revoke);
	T_RUN(test_abbreviations_refused);
	T_RUN(test_full_names_accepted);
	T_RUN(test_config_file);
	T_RUN(test_config_file_errors);
	return t_exit();
}
