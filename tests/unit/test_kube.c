/* The Kubernetes watcher's pure parts: kubeconfig files (good ones, and
 * bad ones whose errors name the line, column and field), the in-cluster
 * config and its rotated token, the watch stream parser (events split at
 * every byte, bounded lines, errors with the byte offset), and the source
 * built from Pods, Namespaces and AllowLists (the pod's labels win over
 * the registered ones, other nodes' pods become peers, a bad AllowList is
 * left out with its error). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mseg/model/plan.h"
#include "mseg/daemon/desired.h"
#include "mseg/kube/kube.h"
#include "mseg/kube/kubeconfig.h"
#include "mseg/kube/watch.h"
#include "mseg/model/addr.h"
#include "mseg/model/inventory.h"
#include "mseg/model/names.h"
#include "mseg/model/policy.h"
#include "t.h"

static char dir[64];

static void write_file(const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
}

/* Load kubeconfig text; the error as "file:line:col: msg" with the dir cut. */
static int load(const char *text, struct kube_config *c, char *msg, size_t size)
{
	struct mseg_err err;
	char path[128], buf[1024];
	int r;

	write_file("config", text);
	snprintf(path, sizeof(path), "%s/config", dir);
	err_clear(&err);
	r = kube_config_load_file(c, path, &err);
	err_format(&err, buf, sizeof(buf));
	snprintf(msg, size, "%s", strncmp(buf, dir, strlen(dir)) == 0 ? buf + strlen(dir) + 1 : buf);
	return r;
}

static const char good[] =
	"apiVersion: v1\n"
	"kind: Config\n"
	"current-context: dev\n"
	"preferences: {}\n"
	"clusters:\n"
	"- name: other\n"
	"  cluster: {server: 'https://other:1'}\n"
	"- name: kind\n"
	"  cluster:\n"
	"    server: https://127.0.0.1:6443/\n"
	"    certificate-authority: ca.crt\n"
	"contexts:\n"
	"- name: dev\n"
	"  context: {cluster: kind, user: admin, namespace: shop}\n"
	"users:\n"
	"- name: admin\n"
	"  user:\n"
	"    token: abc123\n"
	"    client-certificate-data: aGVsbG8=\n"
	"    client-key-data: d29ybGQ\n";

static void test_kubeconfig_good(void)
{
	struct kube_config c;
	char msg[1024], want[256];
	int r = load(good, &c, msg, sizeof(msg));

	T_CHECK(r == 0, "%d %s", r, msg);
	if (r < 0)
		return;
	T_STREQ(c.server, "https://127.0.0.1:6443");
	snprintf(want, sizeof(want), "%s/ca.crt", dir);
	T_STREQ(c.ca_file, want);
	T_STREQ(c.token, "abc123");
	T_STREQ(c.cert_pem, "hello");
	T_STREQ(c.key_pem, "world");
	T_CHECK(c.key_pem_len == 5, "%zu", c.key_pem_len);
	T_CHECK(!c.insecure, "insecure");
	kube_config_release(&c);
}

static void test_kubeconfig_token_file(void)
{
	static const char text[] =
		"current-context: c\n"
		"clusters: [{name: k, cluster: {server: 'http://127.0.0.1:1', "
		"insecure-skip-tls-verify: true, certificate-authority-data: Zm9v}}]\n"
		"contexts: [{name: c, context: {cluster: k, user: u}}]\n"
		"users: [{name: u, user: {tokenFile: tok}}]\n";
	struct kube_config c;
	struct mseg_err err;
	const char *tok = NULL;
	char msg[1024];
	int r;

	write_file("tok", "first-token\n");
	r = load(text, &c, msg, sizeof(msg));
	T_CHECK(r == 0, "%s", msg);
	if (r < 0)
		return;
	T_CHECK(c.insecure, "insecure-skip-tls-verify");
	T_STREQ(c.ca_pem, "foo");
	T_CHECK(kube_config_token(&c, &tok, &err) == 0, "%s", err.msg);
	T_STREQ(tok, "first-token");
	/* rotated (a new inode, as the kubelet's atomic writer does) */
	write_file("tok.new", "second-token");
	snprintf(msg, sizeof(msg), "%s/tok.new", dir);
	{
		char dst[128];

		snprintf(dst, sizeof(dst), "%s/tok", dir);
		rename(msg, dst);
	}
	T_CHECK(kube_config_token(&c, &tok, &err) == 0, "%s", err.msg);
	T_STREQ(tok, "second-token");
	/* gone: the last token stays, the error says so */
	snprintf(msg, sizeof(msg), "%s/tok", dir);
	unlink(msg);
	T_CHECK(kube_config_token(&c, &tok, &err) == -ENOENT, "missing token file");
	T_STREQ(tok, "second-token");
	kube_config_release(&c);
}

static void test_kubeconfig_bad(void)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "clusters: []\n", "config:1:1: missing required key 'current-context'" },
		{ "current-context: x\ncontexts: []\n", "config:1:18: no context named 'x' in 'contexts'" },
		{ "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
		  "clusters:\n- name: k\n  cluster: {server: ftp://x}\n",
		  "config:5:21: clusters[0].cluster.server: 'ftp://x' is not an http(s):// URL" },
		{ "current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
		  "clusters: [{name: k, cluster: {server: 'https://x'}}]\n"
		  "users:\n- name: u\n  user:\n    exec: {command: aws}\n",
		  "config:7:11: users[0].user: credential plugins (exec, auth-provider) are not "
		  "supported; use token, tokenFile or a client certificate" },
		{ "current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
		  "clusters: [{name: k, cluster: {server: 'https://x'}}]\n"
		  "users:\n- name: u\n  user:\n    client-key-data: '!!notbase64'\n",
		  "config:7:22: users[0].user.client-key-data: not valid base64" },
		{ "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
		  "clusters: [{name: k, cluster: {server: 'https://x', insecure-skip-tls-verify: yes}}]\n",
		  "config:3:79: clusters[0].cluster.insecure-skip-tls-verify: expected true or false" },
		{ "current-context: [a]\n", "config:1:18: current-context: expected a string, got a sequence" },
		{ "a: b\n---\nc: d\n", "config: expected one YAML document, got 2" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kube_config c;
		char msg[1024];
		int r = load(cases[i].text, &c, msg, sizeof(msg));

		T_CHECK(r == -EINVAL, "case %zu: %d", i, r);
		T_STREQ(msg, cases[i].want);
		T_CHECK(c.server == NULL, "case %zu: config left filled", i);
	}
}

static void test_in_cluster(void)
{
	struct kube_config c;
	struct mseg_err err;
	char sa[128];
	int r;

	snprintf(sa, sizeof(sa), "%s/sa", dir);
	mkdir(sa, 0700);
	write_file("sa/token", "sa-token\n");
	write_file("sa/ca.crt", "-----BEGIN CERTIFICATE-----\n");
	err_clear(&err);
	r = kube_config_in_cluster(&c, "10.96.0.1", "443", sa, &err);
	T_CHECK(r == 0, "%s", err.msg);
	if (r == 0) {
		T_STREQ(c.server, "https://10.96.0.1:443");
		T_STREQ(c.file_token, "sa-token");
		kube_config_release(&c);
	}
	r = kube_config_in_cluster(&c, "fd00::1", "6443", sa, &err);
	T_CHECK(r == 0, "%s", err.msg);
	if (r == 0) {
		T_STREQ(c.server, "https://[fd00::1]:6443");
		kube_config_release(&c);
	}
	unsetenv("KUBERNETES_SERVICE_HOST");
	r = kube_config_in_cluster(&c, NULL, "443", sa, &err);
	T_CHECK(r == -EINVAL, "no host");
	T_STREQ(err.msg, "--kubernetes in-cluster: KUBERNETES_SERVICE_HOST and "
		"KUBERNETES_SERVICE_PORT are not set (not running in a pod?)");
	r = kube_config_in_cluster(&c, "h", "443", "/nonexistent", &err);
	T_CHECK(r == -ENOENT, "no service account: %d", r);
}

/* ---- the watch stream ---- */

struct got {
	char text[4096];
	int n;
};

static int collect(enum kube_event_type type, json_t *obj, void *data)
{
	struct got *g = data;
	const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"),
							     "name"));
	size_t l = strlen(g->text);

	snprintf(g->text + l, sizeof(g->text) - l, "%s %s;", kube_event_type_name(type),
		 name ? name : "-");
	g->n++;
	return 0;
}

static const char stream[] =
	"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"5\"}}}\n"
	"{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"b\"}}}\r\n"
	"\n"
	"{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"9\"}}}\n"
	"{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"\\u00e9\"}}}\n"
	"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410}}\n";
static const char stream_want[] = "ADDED a;MODIFIED b;BOOKMARK -;DELETED \xc3\xa9;ERROR -;";

static void test_watch_split_everywhere(void)
{
	size_t len = strlen(stream);

	/* two chunks, split at every byte */
	for (size_t cut = 0; cut <= len; cut++) {
		struct kube_watch_parser p;
		struct mseg_err err;
		struct got g = { "", 0 };

		kube_watch_parser_init(&p, 0);
		T_CHECK(kube_watch_feed(&p, stream, cut, collect, &g, &err) == 0, "cut %zu", cut);
		T_CHECK(kube_watch_feed(&p, stream + cut, len - cut, collect, &g, &err) == 0,
			"cut %zu: %s", cut, err.msg);
		T_STREQ(g.text, stream_want);
		T_CHECK(kube_watch_pending(&p) == 0, "cut %zu", cut);
		kube_watch_parser_release(&p);
	}
	/* one byte at a time */
	{
		struct kube_watch_parser p;
		struct mseg_err err;
		struct got g = { "", 0 };

		kube_watch_parser_init(&p, 0);
		for (size_t i = 0; i < len; i++)
			T_CHECK(kube_watch_feed(&p, stream + i, 1, collect, &g, &err) == 0, "%zu", i);
		T_STREQ(g.text, stream_want);
		kube_watch_parser_release(&p);
	}
}

static void test_watch_errors(void)
{
	static const struct {
		const char *text, *want;
		int r;
	} cases[] = {
		{ "{\"type\":\"ADDED\",\"object\":{}}\n{\"type\":\"ADDED\",\"object\":{\n",
		  "watch stream byte 29: not JSON: ", -EINVAL },
		{ "{\"type\":\"ADDED\",\"object\":{}}\n[1]\n",
		  "watch stream byte 29: an event must be a JSON object", -EINVAL },
		{ "{\"type\":\"PATCHED\",\"object\":{}}\n",
		  "watch stream byte 0: event \"type\": unknown type 'PATCHED'", -EINVAL },
		{ "{\"object\":{}}\n", "watch stream byte 0: event \"type\": missing or not a string",
		  -EINVAL },
		{ "{\"type\":\"ADDED\",\"object\":3}\n",
		  "watch stream byte 0: ADDED event: \"object\" is missing or not an object", -EINVAL },
		{ "{\"type\":\"ADDED\",\"object\":{}}\n{\"type\":\"ADDED\",\"object\":{\"x\":\"0123456789\"}}\n",
		  "watch stream byte 29: an event longer than 40 bytes", -E2BIG },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kube_watch_parser p;
		struct mseg_err err;
		struct got g = { "", 0 };
		int r;

		kube_watch_parser_init(&p, 40);
		err_clear(&err);
		r = kube_watch_feed(&p, cases[i].text, strlen(cases[i].text), collect, &g, &err);
		T_CHECK(r == cases[i].r, "case %zu: %d", i, r);
		T_CHECK(strncmp(err.msg, cases[i].want, strlen(cases[i].want)) == 0,
			"case %zu:\n    got:  '%s'\n    want: '%s...'", i, err.msg, cases[i].want);
		kube_watch_parser_release(&p);
	}
}

/* ---- the source ---- */

static json_t *pod(const char *ns, const char *name, const char *node, const char *ip,
		   const char *labels)
{
	char text[1024];
	json_t *full, *t;

	snprintf(text, sizeof(text),
		 "{\"metadata\":{\"namespace\":\"%s\",\"name\":\"%s\",\"uid\":\"u-%s\","
		 "\"resourceVersion\":\"7\",\"managedFields\":[{}],\"labels\":%s},"
		 "\"spec\":{\"nodeName\":\"%s\",\"containers\":[{\"name\":\"c\",\"image\":\"x\","
		 "\"ports\":[{\"name\":\"http\",\"containerPort\":8080},{\"containerPort\":9}]}]},"
		 "\"status\":{\"phase\":\"Running\",\"podIPs\":[{\"ip\":\"%s\"}],\"hostIP\":\"1.2.3.4\"}}",
		 ns, name, name, labels, node, ip);
	full = json_loads(text, 0, NULL);
	t = kube_pod_trim(full);
	json_decref(full);
	return t;
}

static const char reg_text[] =
	"endpoints:\n- {id: c0ffee, name: web-1, namespace: shop, netns: /run/netns/x, "
	"ips: [10.0.0.2], labels: {app: old, cni: 'yes'}}\n";

static char logged[4][1200];
static size_t n_logged;

static void log_cb(void *data, enum log_level lvl, const char *msg)
{
	if (n_logged < 4)
		snprintf(logged[n_logged], sizeof(logged[0]), "%s", msg);
	n_logged++;
}

/* Put @text (a full object) through @trim into the source. */
static json_t *trimmed(json_t *(*trim)(json_t *), const char *text)
{
	json_t *full = json_loads(text, 0, NULL), *t = trim(full);

	json_decref(full);
	return t;
}

static const char allowlist_shop[] =
	"{\"apiVersion\":\"mseg.io/v1\",\"kind\":\"AllowList\",\"metadata\":"
	"{\"name\":\"shop\",\"namespace\":\"shop\",\"uid\":\"x\",\"generation\":3},"
	"\"spec\":{\"groups\":{\"web\":{\"selector\":{\"app\":\"web\"}},"
	"\"db\":{\"selector\":{\"app\":\"db\"}}},\"allow\":[{\"from\":\"web\","
	"\"to\":\"db\",\"ports\":[\"tcp/5432\"]}]},\"status\":{}}";

static void test_source_build(void)
{
	struct mseg_inventory reg, inv;
	struct mseg_policy_set pols;
	struct kube_source src;
	struct mseg_err err;
	struct mseg_endpoint *ep;
	json_t *t;
	char *dump;
	int r;

	inventory_init(&reg);
	inventory_init(&inv);
	policy_set_init(&pols);
	n_logged = 0;
	T_CHECK(kube_source_init(&src, "n1", &pols, &inv) == 0, "init");
	src.log = log_cb;
	/* what mseg-cni registered: pod web-1 of shop, with a label the pod overrides */
	r = inventory_parse_buffer(&reg, "reg", reg_text, strlen(reg_text), &err);
	T_CHECK(r == 0, "%s", err.msg);
	t = pod("shop", "web-1", "n1", "10.0.0.99", "{\"app\":\"web\"}");
	kube_source_pod_put(&src, "shop/web-1", t);
	json_decref(t);
	t = pod("shop", "db-0", "n2", "10.1.0.5", "{\"app\":\"db\"}");
	kube_source_pod_put(&src, "shop/db-0", t);
	json_decref(t);
	/* this node's, but not registered (yet): nothing */
	t = pod("shop", "new", "n1", "10.0.0.7", "{}");
	kube_source_pod_put(&src, "shop/new", t);
	json_decref(t);
	t = pod("shop", "done", "n2", "10.1.0.6", "{}");
	json_object_set_new(t, "phase", json_string("Succeeded"));
	kube_source_pod_put(&src, "shop/done", t);
	json_decref(t);
	t = trimmed(kube_namespace_trim, "{\"metadata\":{\"name\":\"shop\",\"uid\":\"n\","
				       "\"labels\":{\"team\":\"a\"}}}");
	kube_source_namespace_put(&src, "shop", t);
	json_decref(t);
	t = trimmed(kube_policy_trim, allowlist_shop);
	kube_source_policy_put(&src, KUBE_ALLOWLIST, "shop/shop", t);
	json_decref(t);
	t = trimmed(kube_policy_trim, "{\"apiVersion\":\"mseg.io/v1\",\"kind\":\"AllowList\","
		    "\"metadata\":{\"name\":\"bad\",\"namespace\":\"shop\"},\"spec\":{\"groups\":{},"
		    "\"allow\":[{\"from\":\"nope\",\"to\":\"db\"}]}}");
	kube_source_policy_put(&src, KUBE_ALLOWLIST, "shop/bad", t);
	json_decref(t);

	T_CHECK(kube_source_sync(&src, &reg) == 0, "sync");
	T_CHECK(pols.n == 1 && strcmp(pols.items[0]->name, "shop") == 0, "%zu policies", pols.n);
	T_CHECK(n_logged == 1 && kube_source_error_count(&src) == 1, "%zu errors said", n_logged);
	T_CHECK(strstr(logged[0], "kubernetes:allowlists/shop/bad") &&
		strstr(logged[0], "(left out)"), "%s", logged[0]);
	T_CHECK(inv.n == 2, "%zu endpoints", inv.n);
	T_CHECK(inventory_ns_find(&inv, "shop") && inventory_ns_find(&inv, "shop")->n_labels == 2,
		"namespace shop with its label and kubernetes.io/metadata.name");
	ep = inventory_find(&inv, "c0ffee");
	T_CHECK(ep != NULL, "the registered pod keeps its id");
	if (ep) {
		char buf[64];

		T_STREQ(ep->netns, "/run/netns/x");
		T_CHECK(ep->n_ips == 1, "%zu", ep->n_ips);
		T_STREQ(addr_format(&ep->ips[0], buf, sizeof(buf)), "10.0.0.2");
		T_CHECK(ep->n_labels == 2, "%zu labels", ep->n_labels);
		T_STREQ(ep->labels[0].key, "app");
		T_STREQ(ep->labels[0].value, "web");   /* the pod's label wins */
		T_STREQ(ep->labels[1].key, "cni");
		T_STREQ(ep->pod_uid, "u-web-1");
		T_CHECK(ep->n_ports == 1 && strcmp(ep->ports[0].name, "http") == 0, "ports");
	}
	ep = inventory_find(&inv, "k8s.shop.db-0");
	T_CHECK(ep && !ep->netns && ep->n_ips == 1, "peer of another node");
	dump = json_dumps(json_object_get(src.pods, "shop/web-1"), JSON_SORT_KEYS | JSON_COMPACT);
	T_STREQ(dump, "{\"metadata\":{\"labels\":{\"app\":\"web\"},\"name\":\"web-1\","
		"\"namespace\":\"shop\",\"uid\":\"u-web-1\"},\"nodeName\":\"n1\",\"phase\":\"Running\","
		"\"podIPs\":[{\"ip\":\"10.0.0.99\"}],\"ports\":[{\"name\":\"http\",\"port\":8080,"
		"\"protocol\":\"TCP\"}]}");
	free(dump);

	/* per object: the bad AllowList fixed, the good one removed, a peer
	 * deleted from the API: each is gone at once, nothing else moves */
	ep = inventory_find(&inv, "c0ffee");
	t = trimmed(kube_policy_trim, "{\"apiVersion\":\"mseg.io/v1\",\"kind\":\"AllowList\","
		    "\"metadata\":{\"name\":\"bad\",\"namespace\":\"shop\"},\"spec\":{\"groups\":{\"a\":{\"selector\":{\"app\":\"a\"}}}}}");
	kube_source_policy_put(&src, KUBE_ALLOWLIST, "shop/bad", t);
	json_decref(t);
	kube_source_policy_remove(&src, KUBE_ALLOWLIST, "shop/shop");
	T_CHECK(pols.n == 1 && strcmp(pols.items[0]->name, "bad") == 0, "%zu policies", pols.n);
	T_CHECK(kube_source_error_count(&src) == 0, "the error went with the fix: %s",
		n_logged > 1 ? logged[1] : "");
	kube_source_pod_remove(&src, "shop/db-0");
	T_CHECK(!inventory_find(&inv, "k8s.shop.db-0"), "a deleted pod is no peer any more");
	T_CHECK(inventory_find(&inv, "c0ffee") == ep, "this node's pod untouched until the sync");
	/* a NetworkPolicy of an AllowList's name: left out while it lasts */
	t = trimmed(kube_policy_trim, "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":"
		    "\"NetworkPolicy\",\"metadata\":{\"name\":\"bad\",\"namespace\":\"shop\"},"
		    "\"spec\":{\"podSelector\":{}}}");
	kube_source_policy_put(&src, KUBE_NETWORKPOLICY, "shop/bad", t);
	json_decref(t);
	T_CHECK(kube_source_error_count(&src) == 1, "%zu", kube_source_error_count(&src));
	kube_source_policy_remove(&src, KUBE_ALLOWLIST, "shop/bad");
	T_CHECK(kube_source_error_count(&src) == 0 && pols.n == 1,
		"the AllowList gone: the NetworkPolicy has the name");

	kube_source_release(&src);
	policy_set_release(&pols);
	inventory_release(&inv);
	inventory_release(&reg);
}

/* A registration carries the pod's uid (mseg-cni: K8S_POD_UID): a pod
 * created again under the same name, with a new uid, is not the old one;
 * of two pods with one address, the one seen last has it. */
static void test_source_uid(void)
{
	static const char reg_uid[] =
		"endpoints:\n- {id: c1, name: web-1, namespace: shop, netns: /run/netns/x, "
		"pod_uid: u-old, ips: [10.0.0.2]}\n";
	struct mseg_inventory reg, inv;
	struct mseg_policy_set pols;
	struct kube_source src;
	struct mseg_err err;
	struct mseg_endpoint *ep;
	json_t *t;

	inventory_init(&reg);
	inventory_init(&inv);
	policy_set_init(&pols);
	T_CHECK(kube_source_init(&src, "n1", &pols, &inv) == 0, "init");
	T_CHECK(inventory_parse_buffer(&reg, "reg", reg_uid, strlen(reg_uid), &err) == 0, "%s",
		err.msg);
	T_STREQ(reg.eps[0]->pod_uid, "u-old");
	/* the Pod object of that name now is another pod (uid u-web-1) */
	t = pod("shop", "web-1", "n1", "10.0.0.2", "{\"app\":\"web\"}");
	kube_source_pod_put(&src, "shop/web-1", t);
	json_decref(t);
	kube_source_sync(&src, &reg);
	T_CHECK(!inventory_find(&inv, "c1"), "a registration of uid u-old is not pod u-web-1");
	/* the registration of the new pod: matched */
	inventory_release(&reg);
	inventory_init(&reg);
	T_CHECK(inventory_parse_buffer(&reg, "reg", "endpoints: [{id: c2, name: web-1, "
				       "namespace: shop, netns: /run/netns/y, pod_uid: u-web-1, "
				       "ips: [10.0.0.2]}]", 107, &err) == 0, "%s", err.msg);
	kube_source_sync(&src, &reg);
	ep = inventory_find(&inv, "c2");
	T_CHECK(ep && ep->n_labels == 1 && strcmp(ep->labels[0].value, "web") == 0,
		"the new pod's registration has its labels");
	/* a registration without a uid (an older runtime): namespace/name */
	inventory_release(&reg);
	inventory_init(&reg);
	T_CHECK(inventory_parse_buffer(&reg, "reg", "endpoints: [{id: c3, name: web-1, "
				       "namespace: shop, netns: /run/netns/y, ips: [10.0.0.2]}]",
				       89, &err) == 0, "%s", err.msg);
	kube_source_sync(&src, &reg);
	T_CHECK(inventory_find(&inv, "c3") && !inventory_find(&inv, "c2"), "matched by name");

	/* peers: a newer pod takes an address the older one had */
	t = pod("a", "old", "n2", "10.9.0.1", "{}");
	kube_source_pod_put(&src, "a/old", t);
	json_decref(t);
	t = pod("a", "new", "n2", "10.9.0.1", "{}");
	kube_source_pod_put(&src, "a/new", t);
	json_decref(t);
	T_CHECK(inventory_find(&inv, "k8s.a.new")->registered_ns >
		inventory_find(&inv, "k8s.a.old")->registered_ns, "the pod seen last is newer");
	/* a label change of the older one keeps its age */
	{
		uint64_t age = inventory_find(&inv, "k8s.a.old")->registered_ns;

		t = pod("a", "old", "n2", "10.9.0.1", "{\"x\":\"y\"}");
		kube_source_pod_put(&src, "a/old", t);
		json_decref(t);
		T_CHECK(inventory_find(&inv, "k8s.a.old")->registered_ns == age, "age kept");
	}
	kube_source_release(&src);
	policy_set_release(&pols);
	inventory_release(&inv);
	inventory_release(&reg);
}

/* Put the trim of @doc under @key in @store. */
static void store_put(json_t *store, const char *key, json_t *(*trim)(json_t *), const char *doc)
{
	json_error_t jerr;
	json_t *o = json_loads(doc, 0, &jerr);

	T_CHECK(o != NULL, "%s: %s", key, jerr.text);
	json_object_set_new(store, key, trim(o));
	json_decref(o);
}

static const char *route_text(const struct mseg_svc_route *r, char *buf, size_t size)
{
	char v[64], b[64];

	snprintf(buf, size, "%s:%u/%u>%s:%u", addr_format(&r->vip, v, sizeof(v)), r->port,
		 r->proto, addr_format(&r->backend, b, sizeof(b)), r->backend_port);
	return buf;
}

/* This node's addresses from its Node object (InternalIP, ExternalIP, both
 * families; no Hostname), and the Service routes: clusterIPs (dual stack)
 * and externalIPs to the ready backends of the Service's EndpointSlices,
 * ports matched by name and protocol, the backend's port from the slice. */
static void test_cluster_build(void)
{
	json_t *nodes = json_object(), *svcs = json_object(), *slices = json_object();
	struct kube_build_errs errs = { 0 };
	struct kube_cluster cl;
	char buf[128], all[2048] = "";
	size_t off = 0;
	int r;

	store_put(nodes, "n1", kube_node_trim,
		  "{\"metadata\":{\"name\":\"n1\",\"uid\":\"u\"},\"status\":{\"addresses\":["
		  "{\"type\":\"Hostname\",\"address\":\"n1\"},"
		  "{\"type\":\"InternalIP\",\"address\":\"192.168.1.10\"},"
		  "{\"type\":\"InternalIP\",\"address\":\"fd00:1::10\"},"
		  "{\"type\":\"ExternalIP\",\"address\":\"203.0.113.7\"},"
		  "{\"type\":\"InternalDNS\",\"address\":\"n1.internal\"},"
		  "{\"type\":\"ExternalIP\",\"address\":\"bogus\"}],"
		  "\"capacity\":{\"cpu\":\"2\"}}}");
	store_put(nodes, "n2", kube_node_trim,
		  "{\"metadata\":{\"name\":\"n2\"},\"status\":{\"addresses\":["
		  "{\"type\":\"InternalIP\",\"address\":\"192.168.1.11\"}]}}");
	store_put(svcs, "shop/db", kube_service_trim,
		  "{\"metadata\":{\"name\":\"db\",\"namespace\":\"shop\"},\"spec\":{"
		  "\"clusterIP\":\"10.96.0.10\",\"clusterIPs\":[\"10.96.0.10\",\"fd00:96::10\"],"
		  "\"externalIPs\":[\"198.51.100.5\"],\"selector\":{\"app\":\"db\"},\"ports\":["
		  "{\"name\":\"pg\",\"port\":80,\"targetPort\":\"pg\",\"protocol\":\"TCP\"},"
		  "{\"name\":\"metrics\",\"port\":9187,\"targetPort\":9187}]}}");
	store_put(svcs, "shop/headless", kube_service_trim,
		  "{\"metadata\":{\"name\":\"headless\",\"namespace\":\"shop\"},\"spec\":{"
		  "\"clusterIP\":\"None\",\"ports\":[{\"port\":80}]}}");
	store_put(svcs, "shop/dns", kube_service_trim,
		  "{\"metadata\":{\"name\":\"dns\",\"namespace\":\"shop\"},\"spec\":{"
		  "\"clusterIP\":\"10.96.0.53\",\"type\":\"LoadBalancer\",\"ports\":[{\"port\":53,"
		  "\"protocol\":\"UDP\"}]},\"status\":{\"loadBalancer\":{\"ingress\":["
		  "{\"ip\":\"203.0.113.53\"},{\"ip\":\"203.0.113.54\",\"ipMode\":\"Proxy\"},"
		  "{\"hostname\":\"lb.example.com\"},{\"ip\":\"203.0.113.55\",\"ipMode\":\"VIP\"},"
		  "{\"ip\":\"10.96.0.53\"}]}}}");
	store_put(slices, "shop/db-abc", kube_slice_trim,
		  "{\"metadata\":{\"name\":\"db-abc\",\"namespace\":\"shop\",\"labels\":"
		  "{\"kubernetes.io/service-name\":\"db\",\"x\":\"y\"}},\"addressType\":\"IPv4\","
		  "\"endpoints\":[{\"addresses\":[\"10.0.0.3\"],\"conditions\":{\"ready\":true}},"
		  "{\"addresses\":[\"10.0.0.4\"],\"conditions\":{\"ready\":false}},"
		  "{\"addresses\":[\"10.0.0.5\"]}],"
		  "\"ports\":[{\"name\":\"pg\",\"port\":5432,\"protocol\":\"TCP\"},"
		  "{\"name\":\"metrics\",\"port\":9187,\"protocol\":\"TCP\"}]}");
	store_put(slices, "shop/db-v6", kube_slice_trim,
		  "{\"metadata\":{\"name\":\"db-v6\",\"namespace\":\"shop\",\"labels\":"
		  "{\"kubernetes.io/service-name\":\"db\"}},\"addressType\":\"IPv6\","
		  "\"endpoints\":[{\"addresses\":[\"fd00::3\"]},{\"addresses\":[\"fd00::zz\"]}],"
		  "\"ports\":[{\"name\":\"pg\",\"port\":5432,\"protocol\":\"TCP\"},"
		  "{\"name\":\"metrics\",\"port\":9187,\"protocol\":\"TCP\"}]}");
	/* a slice of a Service in another namespace, and one of no Service */
	store_put(slices, "other/db-x", kube_slice_trim,
		  "{\"metadata\":{\"name\":\"db-x\",\"namespace\":\"other\",\"labels\":"
		  "{\"kubernetes.io/service-name\":\"db\"}},\"addressType\":\"IPv4\","
		  "\"endpoints\":[{\"addresses\":[\"10.0.9.9\"]}],"
		  "\"ports\":[{\"name\":\"pg\",\"port\":5432}]}");
	/* an FQDN slice: names, no route and no error */
	store_put(slices, "shop/db-fqdn", kube_slice_trim,
		  "{\"metadata\":{\"name\":\"db-fqdn\",\"namespace\":\"shop\",\"labels\":"
		  "{\"kubernetes.io/service-name\":\"db\"}},\"addressType\":\"FQDN\","
		  "\"endpoints\":[{\"addresses\":[\"db.example.com\"]}],"
		  "\"ports\":[{\"name\":\"pg\",\"port\":5432,\"protocol\":\"TCP\"}]}");
	store_put(slices, "shop/dns-1", kube_slice_trim,
		  "{\"metadata\":{\"name\":\"dns-1\",\"namespace\":\"shop\",\"labels\":"
		  "{\"kubernetes.io/service-name\":\"dns\"}},\"addressType\":\"IPv4\","
		  "\"endpoints\":[{\"addresses\":[\"10.0.0.53\"]}],"
		  "\"ports\":[{\"port\":5353,\"protocol\":\"UDP\"}]}");

	r = kube_cluster_build(nodes, svcs, slices, "n1", &cl, &errs);
	T_CHECK(r == 0, "%d", r);
	T_CHECK(cl.n_node_addrs == 3, "%zu node addresses", cl.n_node_addrs);
	if (cl.n_node_addrs == 3) {
		T_STREQ(addr_format(&cl.node_addrs[0], buf, sizeof(buf)), "192.168.1.10");
		T_STREQ(addr_format(&cl.node_addrs[1], buf, sizeof(buf)), "fd00:1::10");
		T_STREQ(addr_format(&cl.node_addrs[2], buf, sizeof(buf)), "203.0.113.7");
	}
	/* each bad address said once (db-v6 is read for both of db's ports) */
	T_CHECK(errs.n == 2 && strstr(errs.lines[0], "kubernetes:nodes/n1: status.addresses: "
					"'bogus' (ExternalIP) is not an IPv4 or IPv6 address") &&
			strstr(errs.lines[1], "kubernetes:endpointslices/shop/db-v6: "
					      "endpoints[1].addresses: 'fd00::zz'"),
		"%zu errors: %s", errs.n, errs.n ? errs.lines[errs.n - 1] : "");
	for (size_t i = 0; i < cl.n_routes; i++)
		off += (size_t)snprintf(all + off, sizeof(all) - off, "%s%s", i ? " " : "",
					route_text(&cl.routes[i], buf, sizeof(buf)));
	T_STREQ(all, "10.96.0.10:80/6>10.0.0.3:5432 10.96.0.10:80/6>10.0.0.5:5432 "
		"10.96.0.10:9187/6>10.0.0.3:9187 10.96.0.10:9187/6>10.0.0.5:9187 "
		"10.96.0.53:53/17>10.0.0.53:5353 "
		"198.51.100.5:80/6>10.0.0.3:5432 198.51.100.5:80/6>10.0.0.5:5432 "
		"198.51.100.5:9187/6>10.0.0.3:9187 198.51.100.5:9187/6>10.0.0.5:9187 "
		"203.0.113.53:53/17>10.0.0.53:5353 203.0.113.55:53/17>10.0.0.53:5353 "
		"fd00:96::10:80/6>fd00::3:5432 fd00:96::10:9187/6>fd00::3:9187");
	kube_cluster_release(&cl);
	kube_build_errs_release(&errs);

	/* another node's name: none of n1's addresses; a bad VIP is said */
	store_put(svcs, "shop/bad", kube_service_trim,
		  "{\"metadata\":{\"name\":\"bad\",\"namespace\":\"shop\"},\"spec\":{"
		  "\"clusterIPs\":[\"10.96.0.300\"],\"ports\":[{\"port\":80}]},"
		  "\"status\":{\"loadBalancer\":{\"ingress\":[{\"hostname\":\"h\"},{\"ip\":\"lb\"}]}}}");
	r = kube_cluster_build(nodes, svcs, slices, "n2", &cl, &errs);
	T_CHECK(r == 0 && cl.n_node_addrs == 1, "n2: %zu addresses", cl.n_node_addrs);
	{
		bool vip_said = false, lb_said = false;

		for (size_t i = 0; i < errs.n; i++) {
			vip_said |= strstr(errs.lines[i], "kubernetes:services/shop/bad: "
					   "spec.clusterIPs[0]: '10.96.0.300'") != NULL;
			lb_said |= strstr(errs.lines[i], "kubernetes:services/shop/bad: "
					  "status.loadBalancer.ingress[1].ip: 'lb' is not an IPv4 "
					  "or IPv6 address") != NULL;
		}
		T_CHECK(errs.n == 3 && vip_said && lb_said, "%zu errors: %s", errs.n,
			errs.n ? errs.lines[0] : "");
	}
	kube_cluster_release(&cl);
	kube_build_errs_release(&errs);
	/* what is kept of a slice */
	{
		char *dump = json_dumps(json_object_get(slices, "shop/db-abc"),
					JSON_SORT_KEYS | JSON_COMPACT);

		T_STREQ(dump, "{\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":"
			"[\"10.0.0.3\"],\"ready\":true},{\"addresses\":[\"10.0.0.4\"],\"ready\":false},"
			"{\"addresses\":[\"10.0.0.5\"]}],\"metadata\":{\"name\":\"db-abc\","
			"\"namespace\":\"shop\",\"service\":\"db\"},\"ports\":[{\"name\":\"pg\","
			"\"port\":5432,\"protocol\":\"TCP\"},{\"name\":\"metrics\",\"port\":9187,"
			"\"protocol\":\"TCP\"}]}");
		free(dump);
	}
	json_decref(nodes);
	json_decref(svcs);
	json_decref(slices);
}

static struct mseg_endpoint *ep_of(const char *doc)
{
	struct mseg_endpoint *ep = NULL;
	struct mseg_err err;

	if (endpoint_parse_buffer(NULL, "t", doc, strlen(doc), &ep, &err) < 0)
		printf("  endpoint: %s\n", err.msg);
	return ep;
}

static const struct mseg_endpoint *view_find(const struct desired_view *v, const char *id)
{
	for (size_t i = 0; i < v->inv.n; i++)
		if (strcmp(v->inv.eps[i]->id, id) == 0)
			return v->inv.eps[i];
	return NULL;
}

/* The merge with the cluster's source: its endpoint stands for the
 * registered one of the same id (and goes with it), a peer is added, a
 * file endpoint and a file policy win name clashes. */
static void test_desired_merge(void)
{
	static const char pol[] =
		"apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: p, namespace: shop}\n"
		"spec: {groups: {db: {selector: {app: db}}}}\n";
	struct desired ds;
	struct desired_view v;
	struct desired_change ch = { .del_id = "c-db" };
	struct mseg_policy_set pols, fpols;
	struct mseg_inventory inv, finv;
	const struct mseg_endpoint *e;
	struct mseg_err err;

	desired_init(&ds);
	inventory_put(&ds.inv[DESIRED_API], ep_of("{id: c-db, name: db-0, namespace: shop, "
						  "netns: /run/netns/db, ips: [10.0.0.3]}"));
	inventory_put(&ds.inv[DESIRED_API], ep_of("{id: c-web, name: web-1, namespace: shop, "
						  "netns: /run/netns/web, ips: [10.0.0.1]}"));
	policy_set_init(&pols);
	inventory_init(&inv);
	T_CHECK(policy_parse_buffer(&pols, "k", pol, strlen(pol), &err) == 0, "%s", err.msg);
	inventory_put(&inv, ep_of("{id: c-db, name: db-0, namespace: shop, netns: /run/netns/db, "
				  "ips: [10.0.0.3], labels: {app: db}}"));
	inventory_put(&inv, ep_of("{id: k8s.shop.x, name: x, namespace: shop, ips: [10.1.0.9], "
				  "labels: {app: web}}"));
	desired_kube_replace(&ds, &pols, &inv);

	T_CHECK(desired_view_build(&ds, NULL, &v) == 0, "view");
	T_CHECK(v.inv.n == 3 && v.pols.n == 1, "%zu endpoints, %zu policies", v.inv.n, v.pols.n);
	e = view_find(&v, "c-db");
	T_CHECK(e && e->n_labels == 1, "c-db is the cluster's, with the pod's labels");
	T_CHECK(view_find(&v, "k8s.shop.x") != NULL, "the peer is in the view");
	desired_view_release(&v);

	/* the registration goes (a CNI DEL): so does the cluster's copy */
	T_CHECK(desired_view_build(&ds, &ch, &v) == 0, "view");
	T_CHECK(!view_find(&v, "c-db"), "c-db gone with its registration");
	T_CHECK(v.inv.n == 2, "%zu endpoints", v.inv.n);
	desired_view_release(&v);

	/* a file endpoint and a file policy of the same names win */
	policy_set_init(&fpols);
	inventory_init(&finv);
	policy_parse_buffer(&fpols, "f", pol, strlen(pol), &err);
	inventory_put(&finv, ep_of("{id: c-db, netns: /run/netns/f, ips: [10.0.0.3]}"));
	desired_files_replace(&ds, &fpols, &finv);
	T_CHECK(desired_view_build(&ds, NULL, &v) == 0, "view");
	e = view_find(&v, "c-db");
	T_CHECK(e && strcmp(e->netns, "/run/netns/f") == 0, "the file's c-db wins");
	T_CHECK(v.shadowed_eps == 2, "%zu shadowed endpoints", v.shadowed_eps);
	T_CHECK(v.pols.n == 1 && v.shadowed_pols == 1, "%zu policies, %zu shadowed", v.pols.n,
		v.shadowed_pols);
	desired_view_release(&v);
	desired_release(&ds);
}

/* With a Kubernetes source, a pod's registration (it has a pod_uid) is
 * in no view until the Pod object stands for it: never programmed
 * without its labels. A registration without a uid, and any without a
 * Kubernetes source, are as before. */
static void test_desired_waiting(void)
{
	struct desired ds;
	struct desired_view v;
	struct mseg_policy_set pols;
	struct mseg_inventory inv;

	desired_init(&ds);
	inventory_put(&ds.inv[DESIRED_API], ep_of("{id: c-web, name: web-1, namespace: shop, "
						  "pod_uid: u1, netns: /run/netns/web, "
						  "ips: [10.0.0.1]}"));
	inventory_put(&ds.inv[DESIRED_API], ep_of("{id: c-hand, name: hand, namespace: shop, "
						  "netns: /run/netns/hand, ips: [10.0.0.2]}"));
	T_CHECK(desired_view_build(&ds, NULL, &v) == 0 && v.inv.n == 2 && v.waiting == 0,
		"no Kubernetes source: both");
	desired_view_release(&v);
	ds.kube_pods = true;
	T_CHECK(desired_view_build(&ds, NULL, &v) == 0, "view");
	T_CHECK(!view_find(&v, "c-web") && view_find(&v, "c-hand") && v.waiting == 1,
		"c-web waits for its Pod");
	desired_view_release(&v);
	T_CHECK(desired_endpoint_waiting(&ds, "c-web") != NULL, "c-web is waiting");
	T_CHECK(desired_endpoint_waiting(&ds, "c-hand") == NULL, "c-hand is not");
	policy_set_init(&pols);
	inventory_init(&inv);
	inventory_put(&inv, ep_of("{id: c-web, name: web-1, namespace: shop, pod_uid: u1, "
				  "netns: /run/netns/web, ips: [10.0.0.1], labels: {app: web}}"));
	desired_kube_replace(&ds, &pols, &inv);
	T_CHECK(desired_view_build(&ds, NULL, &v) == 0, "view");
	T_CHECK(view_find(&v, "c-web") && view_find(&v, "c-web")->n_labels == 1 && v.waiting == 0,
		"the Pod seen: c-web with its labels");
	desired_view_release(&v);
	T_CHECK(desired_endpoint_waiting(&ds, "c-web") == NULL, "no longer waiting");
	desired_release(&ds);
}

/* At cluster scale most policies concern pods of other nodes alone: only
 * those that cover or give rules to a programmed endpoint are compiled,
 * and the programmed endpoint's entries are the same as with every policy. */
static void test_desired_programmable(void)
{
	static const char pols_text[] =
		"apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: db, namespace: shop}\n"
		"spec:\n  groups: {web: {selector: {app: web}}, db: {selector: {app: db}}}\n"
		"  allow: [{from: web, to: db, ports: [tcp/5432]}]\n---\n"
		"apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: xy, namespace: other}\n"
		"spec:\n  groups: {x: {selector: {app: x}}, y: {selector: {app: y}}}\n"
		"  allow: [{from: x, to: y, ports: [tcp/80]}]\n";
	static const char *const peers[] = {
		"{id: k8s.shop.web, name: web, namespace: shop, ips: [10.1.0.1], labels: {app: web}}",
		"{id: k8s.other.x, name: x, namespace: other, ips: [10.1.0.2], labels: {app: x}}",
		"{id: k8s.other.y, name: y, namespace: other, ips: [10.1.0.3], labels: {app: y}}",
	};
	struct desired ds;
	struct desired_view v;
	struct mseg_policy_set pols;
	struct mseg_inventory inv;
	struct mseg_policy **prog;
	struct mseg_plan *full = NULL, *part = NULL;
	struct mseg_err err;
	size_t n;

	desired_init(&ds);
	policy_set_init(&pols);
	inventory_init(&inv);
	T_CHECK(policy_parse_buffer(&pols, "k", pols_text, strlen(pols_text), &err) == 0, "%s",
		err.msg);
	inventory_put(&inv, ep_of("{id: c-db, name: db-0, namespace: shop, netns: /run/netns/db, "
				  "ips: [10.0.0.3], labels: {app: db}}"));
	for (size_t i = 0; i < 3; i++) {
		struct mseg_endpoint *ep = ep_of(peers[i]);

		ep->cluster_peer = true;
		inventory_put(&inv, ep);
	}
	inventory_put(&ds.inv[DESIRED_API], ep_of("{id: c-db, name: db-0, namespace: shop, "
						  "netns: /run/netns/db, ips: [10.0.0.3]}"));
	desired_kube_replace(&ds, &pols, &inv);
	T_CHECK(desired_view_build(&ds, NULL, &v) == 0 && v.pols.n == 2 && v.inv.n == 4, "view");
	T_CHECK(desired_view_programmable(&v, &prog, &n) == 0, "programmable");
	T_CHECK(n == 1 && strcmp(prog[0]->name, "db") == 0, "%zu kept: only shop/db", n);
	T_CHECK(compile_plan((const struct mseg_policy *const *)v.pols.items, v.pols.n,
			     (const struct mseg_endpoint *const *)v.inv.eps, v.inv.n, NULL, &full) == 0,
		"compile all");
	T_CHECK(compile_plan((const struct mseg_policy *const *)prog, n,
			     (const struct mseg_endpoint *const *)v.inv.eps, v.inv.n, NULL, &part) == 0,
		"compile kept");
	for (size_t i = 0; full && part && i < full->n_eps; i++) {
		if (full->eps[i].ep->cluster_peer)
			continue;
		for (int d = 0; d < MSEG_DIR_COUNT; d++) {
			const struct mseg_dir_plan *a = &full->eps[i].dir[d], *b = &part->eps[i].dir[d];

			T_CHECK(a->isolated == b->isolated && a->n_entries == b->n_entries,
				"%s dir %d: the same isolation and entries", full->eps[i].ep->id, d);
			for (size_t e = 0; e < a->n_entries && e < b->n_entries; e++)
				T_CHECK(addr_eq(&a->entries[e].lo, &b->entries[e].lo) &&
					addr_eq(&a->entries[e].hi, &b->entries[e].hi) &&
					a->entries[e].proto == b->entries[e].proto &&
					a->entries[e].port_lo == b->entries[e].port_lo &&
					a->entries[e].port_hi == b->entries[e].port_hi, "entry %zu", e);
		}
		T_CHECK(full->eps[i].dir[MSEG_DIR_INGRESS].n_entries == 1, "c-db: web on 5432");
	}
	plan_free(full);
	plan_free(part);
	free(prog);
	desired_view_release(&v);
	desired_release(&ds);
}

/* The endpoint document of a trimmed pod, as the watcher once wrote it
 * and had the endpoint parser read back (@r: its registration): the
 * reference the direct build must equal. */
static char *pod_doc(json_t *pod, const struct mseg_endpoint *r)
{
	json_t *md = json_object_get(pod, "metadata"), *labels = json_object(), *ips = json_array();
	const char *ns = json_string_value(json_object_get(md, "namespace"));
	const char *name = json_string_value(json_object_get(md, "name"));
	const char *uid = json_string_value(json_object_get(md, "uid"));
	json_t *ep, *ip;
	char id[300], buf[64];
	size_t i;
	char *text;

	for (i = 0; r && i < r->n_labels; i++)
		json_object_set_new(labels, r->labels[i].key, json_string(r->labels[i].value));
	json_object_update(labels, json_object_get(md, "labels"));
	if (r) {
		for (i = 0; i < r->n_ips; i++)
			json_array_append_new(ips, json_string(addr_format(&r->ips[i], buf,
									 sizeof(buf))));
		snprintf(id, sizeof(id), "%s", r->id);
	} else {
		json_array_foreach(json_object_get(pod, "podIPs"), i, ip)
			if (json_is_string(json_object_get(ip, "ip")))
				json_array_append(ips, json_object_get(ip, "ip"));
		snprintf(id, sizeof(id), "k8s.%s.%s", ns, name);
	}
	ep = json_pack("{sssssssoso}", "id", id, "name", name, "namespace", ns, "labels", labels,
		       "ips", ips);
	if (r && r->netns)
		json_object_set_new(ep, "netns", json_string(r->netns));
	if (uid && name_is_endpoint_id(uid))
		json_object_set_new(ep, "pod_uid", json_string(uid));
	if (json_array_size(json_object_get(pod, "ports")))
		json_object_set(ep, "ports", json_object_get(pod, "ports"));
	text = json_dumps(ep, JSON_COMPACT);
	json_decref(ep);
	return text;
}

/* Everything an endpoint carries, as one line, to compare two. */
static void ep_text(const struct mseg_endpoint *ep, char *buf, size_t size)
{
	size_t n = 0;
	char a[64];

	n += (size_t)snprintf(buf + n, size - n, "id=%s name=%s ns=%s netns=%s uid=%s labels=",
			      ep->id, ep->name, ep->ns, ep->netns ?: "-", ep->pod_uid ?: "-");
	for (size_t i = 0; i < ep->n_labels && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s:%s,", ep->labels[i].key,
				      ep->labels[i].value);
	for (size_t i = 0; i < ep->n_ns_labels && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, " ns:%s:%s", ep->ns_labels[i].key,
				      ep->ns_labels[i].value);
	for (size_t i = 0; i < ep->n_ips && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, " ip:%s", addr_format(&ep->ips[i], a,
									       sizeof(a)));
	for (size_t i = 0; i < ep->n_ports && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, " port:%s/%u/%u", ep->ports[i].name,
				      ep->ports[i].proto, ep->ports[i].port);
}

/* A pod's endpoint is built straight from its JSON object: the same
 * endpoint, and for a bad pod the same error (naming the pod and the
 * field), as the endpoint document through the endpoint parser. */
static void test_source_direct_build(void)
{
	static const struct {
		const char *ns, *name, *node, *labels, *status, *ports;
		bool bad;
	} pods[] = {
		{ "shop", "web-1", "n1", "{\"app\":\"web\",\"example.com/tier\":\"front\"}",
		  "\"podIPs\":[{\"ip\":\"10.0.0.99\"}]", NULL, false },
		{ "shop", "db-0", "n2", "{\"app\":\"db\",\"tier\":\"\"}",
		  "\"podIPs\":[{\"ip\":\"10.1.0.5\"},{\"ip\":\"fd00::5\"}]",
		  "[{\"name\":\"pg\",\"containerPort\":5432},{\"name\":\"dns\",\"containerPort\":53,"
		  "\"protocol\":\"UDP\"},{\"containerPort\":9}]", false },
		{ "shop", "bare", "n2", "{}", "\"podIPs\":[{\"ip\":\"fd00::6\"}]", "[]", false },
		{ "web", "bad-ip", "n2", "{\"app\":\"x\"}", "\"podIPs\":[{\"ip\":\"10.0.0.300\"}]",
		  NULL, true },
		{ "web", "bad-label", "n2", "{\"app\":\"not ok\"}", "\"podIPs\":[{\"ip\":\"10.2.0.1\"}]",
		  NULL, true },
		{ "web", "bad-key", "n2", "{\"-app\":\"x\"}", "\"podIPs\":[{\"ip\":\"10.2.0.2\"}]",
		  NULL, true },
		{ "web", "bad-port", "n2", "{}", "\"podIPs\":[{\"ip\":\"10.2.0.3\"}]",
		  "[{\"name\":\"Http_1\",\"containerPort\":80}]", true },
		{ "web", "big-port", "n2", "{}", "\"podIPs\":[{\"ip\":\"10.2.0.4\"}]",
		  "[{\"name\":\"http\",\"containerPort\":70000}]", true },
		{ "web", "dup-ip", "n2", "{}",
		  "\"podIPs\":[{\"ip\":\"10.2.0.5\"},{\"ip\":\"10.2.0.5\"}]", NULL, true },
		{ "web", "ok", "n2", "{\"app\":\"y\"}", "\"podIPs\":[{\"ip\":\"10.2.0.6\"}]", NULL,
		  false },
	};
	struct mseg_inventory reg, inv;
	struct mseg_policy_set pols;
	struct kube_source src;
	struct mseg_err err;
	size_t n_bad = 0;
	int r;

	inventory_init(&reg);
	inventory_init(&inv);
	policy_set_init(&pols);
	err_clear(&err);
	r = inventory_parse_buffer(&reg, "reg", reg_text, strlen(reg_text), &err);
	T_CHECK(r == 0, "registrations: %s", err.msg);
	T_CHECK(kube_source_init(&src, "n1", &pols, &inv) == 0, "init");
	src.log = log_cb;
	n_logged = 0;
	for (size_t i = 0; i < sizeof(pods) / sizeof(pods[0]); i++) {
		char text[2048], key[300], fname[320], want[1200], got[1200];
		struct mseg_endpoint *ref = NULL;
		const struct mseg_endpoint *have, *r0 = NULL;
		json_t *full, *t;
		char *doc;

		snprintf(text, sizeof(text),
			 "{\"metadata\":{\"namespace\":\"%s\",\"name\":\"%s\",\"uid\":\"u-%s\","
			 "\"labels\":%s},\"spec\":{\"nodeName\":\"%s\",\"containers\":[{\"name\":\"c\","
			 "\"ports\":%s}]},\"status\":{\"phase\":\"Running\",%s}}",
			 pods[i].ns, pods[i].name, pods[i].name, pods[i].labels, pods[i].node,
			 pods[i].ports ? pods[i].ports : "[]", pods[i].status);
		full = json_loads(text, 0, NULL);
		T_CHECK(full != NULL, "pod %zu is JSON", i);
		if (!full)
			continue;
		t = kube_pod_trim(full);
		json_decref(full);
		snprintf(key, sizeof(key), "%s/%s", pods[i].ns, pods[i].name);
		snprintf(fname, sizeof(fname), "kubernetes:pods/%s", key);
		if (strcmp(pods[i].node, "n1") == 0)
			r0 = reg.eps[0];
		doc = pod_doc(t, r0);
		err_clear(&err);
		r = endpoint_parse_buffer(NULL, fname, doc, strlen(doc), &ref, &err);
		free(doc);
		T_CHECK((r < 0) == pods[i].bad, "%s: the parser %s it", key,
			r < 0 ? "refuses" : "takes");
		n_logged = 0;
		kube_source_pod_put(&src, key, t);
		json_decref(t);
		if (r0)
			kube_source_sync(&src, &reg);
		if (r == 0) {
			have = inventory_find(&inv, ref->id);
			T_CHECK(have != NULL, "%s: applied", key);
			if (have) {
				ep_text(ref, want, sizeof(want));
				ep_text(have, got, sizeof(got));
				T_CHECK(strcmp(want, got) == 0, "%s: the same endpoint\n    direct: %s\n"
					"    parsed: %s", key, got, want);
			}
			endpoint_free(ref);
			continue;
		}
		/* the parser's message without its line:col is the direct one */
		n_bad++;
		snprintf(want, sizeof(want), "%s: %s (left out)", fname, err.msg);
		T_CHECK(n_logged == 1, "%s: said once", key);
		if (n_logged == 1)
			T_STREQ(logged[0], want);
		snprintf(want, sizeof(want), "k8s.%s.%s", pods[i].ns, pods[i].name);
		T_CHECK(!inventory_find(&inv, want), "%s: left out", key);
	}
	T_CHECK(kube_source_error_count(&src) == n_bad, "%zu pods left out, %zu errors", n_bad,
		kube_source_error_count(&src));
	T_CHECK(inventory_find(&inv, "k8s.web.ok") && inventory_find(&inv, "c0ffee"),
		"the rest applies");
	kube_source_release(&src);
	inventory_release(&inv);
	inventory_release(&reg);
	policy_set_release(&pols);
}

static void test_base64(void)
{
	char *out;
	size_t n;

	T_CHECK(kube_base64_decode("aGk=\n", 5, &out, &n) == 0 && n == 2, "hi");
	T_STREQ(out, "hi");
	free(out);
	T_CHECK(kube_base64_decode("a=b", 3, &out, &n) == -EINVAL, "data after padding");
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/mseg-test-kube-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	T_RUN(test_kubeconfig_good);
	T_RUN(test_kubeconfig_token_file);
	T_RUN(test_kubeconfig_bad);
	T_RUN(test_in_cluster);
	T_RUN(test_watch_split_everywhere);
	T_RUN(test_watch_errors);
	T_RUN(test_source_build);
	T_RUN(test_source_uid);
	T_RUN(test_source_direct_build);
	T_RUN(test_desired_waiting);
	T_RUN(test_cluster_build);
	T_RUN(test_desired_merge);
	T_RUN(test_desired_programmable);
	T_RUN(test_base64);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			return 1;
	}
	return t_exit();
}
