#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/daemon/daemon.h"
#include "mseg/model/addr.h"
#include "mseg/model/plan.h"
#include "mseg/util/opt.h"

#ifndef MSEG_VERSION
#define MSEG_VERSION "0.1.0"
#endif

void daemon_config_init(struct daemon_config *c)
{
	memset(c, 0, sizeof(*c));
	c->mode = MSEG_MODE_ENFORCE;
	c->revoke = MSEG_REVOKE_ESTABLISHED;
	c->resync_sec = 30;
	c->seen_interval_sec = 10;
	c->kube_page_size = 500;
	c->kube_share = 50;
	c->log_level = LOG_LVL_INFO;
	c->queue_num = 0;
	c->queue_rate = TABLE_DEFAULT_RATE;
	c->queue_burst = TABLE_DEFAULT_BURST;
	c->flow_ring_size = 10000;
	c->flow_window_sec = 60;
	c->flow_log_max_mb = 16;
	c->flow_log_files = 5;
}

void daemon_config_release(struct daemon_config *c)
{
	char **strs[] = { &c->config_file, &c->state_dir, &c->policy_dir, &c->endpoints_file,
			  &c->listen, &c->listen_tcp, &c->token_file, &c->tls_cert,
			  &c->tls_key, &c->flow_log, &c->kubeconfig, &c->node_name };

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		free(*strs[i]);
		*strs[i] = NULL;
	}
	free(c->node_addrs);
	c->node_addrs = NULL;
	c->n_node_addrs = 0;
}

const char *daemon_usage(void)
{
	return "usage: msegd [options]\n"
	       "  --config FILE          settings file (keys = long option names)\n"
	       "  --state-dir DIR        persistent state (default /var/lib/mseg)\n"
	       "  --policy-dir DIR       policy files, watched for changes\n"
	       "  --endpoints FILE       endpoint inventory file, watched for changes\n"
	       "  --listen unix:PATH     REST API socket (default unix:/run/mseg/api.sock)\n"
	       "  --listen-tcp ADDR:PORT optional TCP listener (needs --token-file)\n"
	       "  --token-file FILE      bearer token for the TCP listener (>= 32 chars)\n"
	       "  --tls-cert FILE --tls-key FILE   TLS for the TCP listener\n"
	       "  --mode enforce|audit   audit: nothing is dropped anywhere (rollout)\n"
	       "  --default-deny         isolate every direction that no policy isolates\n"
	       "  --revoke established|new-only   a removed allow cuts the connections it\n"
	       "                         admitted (default) or only refuses new ones\n"
	       "  --resync SECONDS       kernel read-back period, 0 = off (default 30)\n"
	       "  --seen-interval SECONDS  fold the accepted connections of learning endpoints\n"
	       "                         into their summaries this often, 0 = off (default 10)\n"
	       "  --flow-log FILE|none   JSON-lines flow log, reloaded at start\n"
	       "                         (default STATE_DIR/flows.jsonl; none: no file)\n"
	       "  --log-level L          error|warn|info|debug (default info)\n"
	       "  --queue-num N          NFQUEUE number in each namespace (default 0)\n"
	       "  --queue-rate N         unmatched packets/s per namespace sent to msegd (default 100)\n"
	       "  --queue-burst N        burst for that limit (default 200)\n"
	       "  --flow-ring N          flow records kept in memory (default 10000)\n"
	       "  --flow-window SECONDS  repeats within it aggregate into one record (default 60)\n"
	       "  --flow-log-size MIB    rotate the flow log at this size (default 16)\n"
	       "  --flow-log-files N     rotated flow logs kept (default 5)\n"
	       "  --node-addr ADDR       an address of this node (repeat for more): traffic to\n"
	       "                         and from it is never isolated (kubelet probes); with\n"
	       "                         Kubernetes, the Node object's addresses are added\n"
	       "  --kubeconfig FILE      watch a Kubernetes API server (kubeconfig's current-context)\n"
	       "  --kubernetes in-cluster  ... with the pod's service account instead\n"
	       "  --node-name NAME       this node's name (default $NODE_NAME)\n"
	       "  --kube-idle-timeout SECONDS  a watch silent this long reconnects (default 90)\n"
	       "  --kube-page-size N     list in pages of N objects (limit/continue; default 500,\n"
	       "                         0: one request per list)\n"
	       "  --kube-reconcile-share PERCENT  under a steady stream of cluster events,\n"
	       "                         reconciles take at most this share of a core\n"
	       "                         (5..100, default 50; 100: reconcile at once)\n"
	       "  --help, --version\n";
}

enum {
	OPT_CONFIG = 1000, OPT_STATE_DIR, OPT_POLICY_DIR, OPT_ENDPOINTS, OPT_LISTEN,
	OPT_LISTEN_TCP, OPT_TOKEN_FILE, OPT_TLS_CERT, OPT_TLS_KEY, OPT_MODE,
	OPT_DEFAULT_DENY, OPT_RESYNC, OPT_SEEN_INTERVAL, OPT_FLOW_LOG, OPT_LOG_LEVEL, OPT_QUEUE_NUM,
	OPT_QUEUE_RATE, OPT_QUEUE_BURST, OPT_FLOW_RING, OPT_FLOW_WINDOW, OPT_FLOW_LOG_SIZE,
	OPT_FLOW_LOG_FILES, OPT_NODE_ADDR, OPT_REVOKE, OPT_KUBECONFIG, OPT_KUBERNETES,
	OPT_NODE_NAME, OPT_KUBE_IDLE, OPT_KUBE_PAGE,
	OPT_KUBE_SHARE, OPT_HELP, OPT_VERSION,
};

static const struct option long_opts[] = {
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
	{ "policy-dir", required_argument, NULL, OPT_POLICY_DIR },
	{ "endpoints", required_argument, NULL, OPT_ENDPOINTS },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "listen-tcp", required_argument, NULL, OPT_LISTEN_TCP },
	{ "token-file", required_argument, NULL, OPT_TOKEN_FILE },
	{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
	{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "default-deny", no_argument, NULL, OPT_DEFAULT_DENY },
	{ "revoke", required_argument, NULL, OPT_REVOKE },
	{ "resync", required_argument, NULL, OPT_RESYNC },
	{ "seen-interval", required_argument, NULL, OPT_SEEN_INTERVAL },
	{ "flow-log", required_argument, NULL, OPT_FLOW_LOG },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "queue-num", required_argument, NULL, OPT_QUEUE_NUM },
	{ "queue-rate", required_argument, NULL, OPT_QUEUE_RATE },
	{ "queue-burst", required_argument, NULL, OPT_QUEUE_BURST },
	{ "flow-ring", required_argument, NULL, OPT_FLOW_RING },
	{ "flow-window", required_argument, NULL, OPT_FLOW_WINDOW },
	{ "flow-log-size", required_argument, NULL, OPT_FLOW_LOG_SIZE },
	{ "flow-log-files", required_argument, NULL, OPT_FLOW_LOG_FILES },
	{ "node-addr", required_argument, NULL, OPT_NODE_ADDR },
	{ "kubeconfig", required_argument, NULL, OPT_KUBECONFIG },
	{ "kubernetes", required_argument, NULL, OPT_KUBERNETES },
	{ "node-name", required_argument, NULL, OPT_NODE_NAME },
	{ "kube-idle-timeout", required_argument, NULL, OPT_KUBE_IDLE },
	{ "kube-page-size", required_argument, NULL, OPT_KUBE_PAGE },
	{ "kube-reconcile-share", required_argument, NULL, OPT_KUBE_SHARE },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static int parse_uint(const char *s, unsigned long max, unsigned long *ret)
{
	char *end;
	unsigned long v;

	if (!*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int set_str(char **dst, const char *v)
{
	char *d = strdup(v);

	if (!d)
		return -ENOMEM;
	free(*dst);
	*dst = d;
	return 0;
}

/* Apply one option by its long name; shared by the command line and the
 * config file. @where names the source for messages. */
static int config_apply(struct daemon_config *c, int opt, const char *name, const char *v,
			struct mseg_err *err)
{
	unsigned long n;

	switch (opt) {
	case OPT_CONFIG:
		return set_str(&c->config_file, v);
	case OPT_STATE_DIR:
		return set_str(&c->state_dir, v);
	case OPT_POLICY_DIR:
		return set_str(&c->policy_dir, v);
	case OPT_ENDPOINTS:
		return set_str(&c->endpoints_file, v);
	case OPT_LISTEN:
		if (strncmp(v, "unix:", 5) != 0 || v[5] != '/')
			return err_setf(err, EINVAL, "--listen '%s': expected unix:/absolute/path", v);
		return set_str(&c->listen, v);
	case OPT_LISTEN_TCP:
		if (!strrchr(v, ':'))
			return err_setf(err, EINVAL, "--listen-tcp '%s': expected ADDR:PORT", v);
		return set_str(&c->listen_tcp, v);
	case OPT_TOKEN_FILE:
		return set_str(&c->token_file, v);
	case OPT_TLS_CERT:
		return set_str(&c->tls_cert, v);
	case OPT_TLS_KEY:
		return set_str(&c->tls_key, v);
	case OPT_FLOW_LOG:
		return set_str(&c->flow_log, v);
	case OPT_KUBECONFIG:
		return set_str(&c->kubeconfig, v);
	case OPT_KUBERNETES:
		if (strcmp(v, "in-cluster") != 0)
			return err_setf(err, EINVAL, "--kubernetes '%s': expected in-cluster", v);
		c->kube_in_cluster = true;
		return 0;
	case OPT_NODE_NAME:
		if (!*v)
			return err_setf(err, EINVAL, "--node-name: must not be empty");
		return set_str(&c->node_name, v);
	case OPT_KUBE_IDLE:
		if (parse_uint(v, 3600, &n) < 0 || n < 1)
			return err_setf(err, EINVAL, "--kube-idle-timeout '%s': expected seconds 1..3600", v);
		c->kube_idle_sec = (unsigned)n;
		return 0;
	case OPT_KUBE_PAGE:
		if (parse_uint(v, 100000, &n) < 0)
			return err_setf(err, EINVAL, "--kube-page-size '%s': expected 0..100000 "
					"objects per page (0: no paging)", v);
		c->kube_page_size = (unsigned)n;
		return 0;
	case OPT_KUBE_SHARE:
		if (parse_uint(v, 100, &n) < 0 || n < 5)
			return err_setf(err, EINVAL, "--kube-reconcile-share '%s': expected a percentage "
					"of a core, 5..100", v);
		c->kube_share = (unsigned)n;
		return 0;
	case OPT_MODE:
		if (strcmp(v, "enforce") == 0)
			c->mode = MSEG_MODE_ENFORCE;
		else if (strcmp(v, "audit") == 0)
			c->mode = MSEG_MODE_AUDIT;
		else
			return err_setf(err, EINVAL, "--mode '%s': expected enforce or audit", v);
		return 0;
	case OPT_DEFAULT_DENY:
		c->default_deny = true;
		return 0;
	case OPT_REVOKE:
		if (strcmp(v, "established") == 0)
			c->revoke = MSEG_REVOKE_ESTABLISHED;
		else if (strcmp(v, "new-only") == 0)
			c->revoke = MSEG_REVOKE_NEW_ONLY;
		else
			return err_setf(err, EINVAL, "--revoke '%s': expected established or new-only",
					v);
		return 0;
	case OPT_RESYNC:
		if (parse_uint(v, 86400, &n) < 0)
			return err_setf(err, EINVAL, "--resync '%s': expected seconds 0..86400", v);
		c->resync_sec = (unsigned)n;
		return 0;
	case OPT_SEEN_INTERVAL:
		if (parse_uint(v, 86400, &n) < 0)
			return err_setf(err, EINVAL, "--seen-interval '%s': expected seconds 0..86400",
					v);
		c->seen_interval_sec = (unsigned)n;
		return 0;
	case OPT_LOG_LEVEL:
		if (log_level_parse(v, &c->log_level) < 0)
			return err_setf(err, EINVAL,
					"--log-level '%s': expected error, warn, info or debug", v);
		return 0;
	case OPT_QUEUE_NUM:
		if (parse_uint(v, 65535, &n) < 0)
			return err_setf(err, EINVAL, "--queue-num '%s': expected 0..65535", v);
		c->queue_num = (uint16_t)n;
		return 0;
	case OPT_QUEUE_RATE:
		if (parse_uint(v, 1000000, &n) < 0 || n == 0)
			return err_setf(err, EINVAL, "--queue-rate '%s': expected 1..1000000", v);
		c->queue_rate = (uint32_t)n;
		return 0;
	case OPT_QUEUE_BURST:
		if (parse_uint(v, 1000000, &n) < 0 || n == 0)
			return err_setf(err, EINVAL, "--queue-burst '%s': expected 1..1000000", v);
		c->queue_burst = (uint32_t)n;
		return 0;
	case OPT_FLOW_RING:
		if (parse_uint(v, 10000000, &n) < 0 || n == 0)
			return err_setf(err, EINVAL, "--flow-ring '%s': expected 1..10000000", v);
		c->flow_ring_size = n;
		return 0;
	case OPT_FLOW_WINDOW:
		if (parse_uint(v, 86400, &n) < 0)
			return err_setf(err, EINVAL, "--flow-window '%s': expected seconds 0..86400", v);
		c->flow_window_sec = (unsigned)n;
		return 0;
	case OPT_FLOW_LOG_SIZE:
		if (parse_uint(v, 65536, &n) < 0 || n == 0)
			return err_setf(err, EINVAL, "--flow-log-size '%s': expected MiB 1..65536", v);
		c->flow_log_max_mb = (unsigned)n;
		return 0;
	case OPT_NODE_ADDR: {
		struct mseg_addr a, *t;

		if (addr_parse(v, &a) < 0)
			return err_setf(err, EINVAL, "--node-addr '%s': not an IPv4 or IPv6 address", v);
		t = realloc(c->node_addrs, (c->n_node_addrs + 1) * sizeof(*t));
		if (!t)
			return err_setf(err, ENOMEM, "out of memory");
		c->node_addrs = t;
		c->node_addrs[c->n_node_addrs++] = a;
		return 0;
	}
	case OPT_FLOW_LOG_FILES:
		if (parse_uint(v, 100, &n) < 0)
			return err_setf(err, EINVAL, "--flow-log-files '%s': expected 0..100", v);
		c->flow_log_files = (unsigned)n;
		return 0;
	}
	return err_setf(err, EINVAL, "unknown option '%s'", name);
}

/* The config file: "key: value" lines (a flat YAML mapping of the long option
 * names), '#' comments. Booleans: "default-deny: true". */
static int config_load_file(struct daemon_config *c, const char *path, struct mseg_err *err)
{
	char line[4096];
	unsigned lineno = 0;
	FILE *f = fopen(path, "re");
	int r = 0;

	if (!f)
		return err_set(err, path, 0, 0, errno, "cannot open: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		char *key = line, *val, *end;
		const struct option *o;

		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			r = err_set(err, path, lineno, 1, EINVAL, "line too long");
			goto out_close;
		}
		key += strspn(key, " \t");
		if (*key == '#' || *key == '\n' || *key == '\0')
			continue;
		val = strchr(key, ':');
		if (!val) {
			r = err_set(err, path, lineno, 1, EINVAL, "expected 'key: value'");
			goto out_close;
		}
		*val++ = '\0';
		val += strspn(val, " \t");
		end = val + strcspn(val, "\n");
		while (end > val && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
			end--;
		*end = '\0';
		if (end - val >= 2 && (*val == '"' || *val == '\'') && end[-1] == *val) {
			val++;
			end[-1] = '\0';
		}
		for (o = long_opts; o->name; o++)
			if (strcmp(o->name, key) == 0)
				break;
		if (!o->name || o->val == OPT_CONFIG || o->val == OPT_HELP || o->val == OPT_VERSION) {
			r = err_set(err, path, lineno, 1, EINVAL, "unknown setting '%s'", key);
			goto out_close;
		}
		if (o->has_arg == no_argument) {
			if (strcmp(val, "true") == 0)
				val = "";
			else if (strcmp(val, "false") == 0)
				continue;
			else {
				r = err_set(err, path, lineno, (unsigned)(val - line) + 1, EINVAL,
					    "'%s' expects true or false", key);
				goto out_close;
			}
		}
		r = config_apply(c, o->val, o->name, val, err);
		if (r < 0) {
			char msg[sizeof(err->msg)];

			/* give the file position to the option's message */
			if (err) {
				snprintf(msg, sizeof(msg), "%s", err->msg);
				err_set(err, path, lineno, 1, -r, "%s", msg);
			}
			goto out_close;
		}
	}
out_close:
	fclose(f);
	return r;
}

int daemon_config_parse(struct daemon_config *c, int argc, char **argv, struct mseg_err *err)
{
	const char *abbrev;
	size_t len;
	int opt, r;

	/* flags are not guessed: getopt_long() would take "--def" for
	 * "--default-deny" */
	abbrev = opt_abbrev_find(argc, argv, "", long_opts, &len);
	if (abbrev)
		return err_setf(err, EINVAL, "unknown option '%.*s' (abbreviations are not accepted)",
				(int)len, abbrev);

	/* pass 1: find --config so the command line can override the file */
	for (int i = 1; i < argc; i++) {
		const char *file = NULL;

		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			file = argv[i + 1];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			file = argv[i] + 9;
		if (file) {
			r = config_load_file(c, file, err);
			if (r < 0)
				return r;
			r = set_str(&c->config_file, file);
			if (r < 0)
				return r;
		}
	}

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		if (opt == '?' || opt == ':')
			return err_setf(err, EINVAL, "unknown option or missing value: '%s'",
					argv[optind - 1]);
		if (opt == OPT_HELP) {
			fputs(daemon_usage(), stdout);
			return 1;
		}
		if (opt == OPT_VERSION) {
			printf("msegd %s\n", MSEG_VERSION);
			return 1;
		}
		if (opt == OPT_CONFIG)
			continue;
		r = config_apply(c, opt, argv[optind - 1], optarg ? optarg : "", err);
		if (r < 0)
			return r;
	}
	if (optind < argc)
		return err_setf(err, EINVAL, "unexpected argument '%s'", argv[optind]);
	if (!c->state_dir && (r = set_str(&c->state_dir, "/var/lib/mseg")) < 0)
		return r;
	if (!c->listen && (r = set_str(&c->listen, "unix:/run/mseg/api.sock")) < 0)
		return r;
	/* flows survive a restart unless the operator says otherwise */
	if (c->flow_log && strcmp(c->flow_log, "none") == 0) {
		free(c->flow_log);
		c->flow_log = NULL;
	} else if (!c->flow_log) {
		if (asprintf(&c->flow_log, "%s/flows.jsonl", c->state_dir) < 0) {
			c->flow_log = NULL;
			return err_setf(err, ENOMEM, "out of memory");
		}
	}
	if ((c->tls_cert == NULL) != (c->tls_key == NULL))
		return err_setf(err, EINVAL, "--tls-cert and --tls-key go together");
	if (c->listen_tcp && !c->token_file)
		return err_setf(err, EINVAL, "--listen-tcp requires --token-file");
	if (c->kubeconfig && c->kube_in_cluster)
		return err_setf(err, EINVAL, "--kubeconfig and --kubernetes in-cluster exclude each other");
	if ((c->kubeconfig || c->kube_in_cluster) && !c->node_name) {
		const char *env = getenv("NODE_NAME");

		if (!env || !*env)
			return err_setf(err, EINVAL, "--kubeconfig/--kubernetes need --node-name (or "
					"NODE_NAME in the environment): which pods are this node's");
		if ((r = set_str(&c->node_name, env)) < 0)
			return r;
	}
	return 0;
}
