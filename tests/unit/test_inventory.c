/* The endpoint inventory: parsing, validation with exact messages, and the
 * sorted put/remove/find operations. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mseg/model/inventory.h"
#include "t.h"

static char errbuf[1024];

static const char *fmt(const struct mseg_err *e)
{
	return err_format(e, errbuf, sizeof(errbuf));
}

static bool addr_is(const struct mseg_addr *a, const char *text)
{
	struct mseg_addr b = { 0 };

	if (inet_pton(AF_INET, text, b.bytes) == 1)
		b.family = AF_INET;
	else if (inet_pton(AF_INET6, text, b.bytes) == 1)
		b.family = AF_INET6;
	return a->family == b.family && !memcmp(a->bytes, b.bytes, sizeof(b.bytes));
}

static const char good[] =
	"endpoints:\n"
	"  - id: web-1\n"
	"    name: web\n"
	"    namespace: shop\n"
	"    labels: {tier: front, app: web, app.kubernetes.io/name: web-ui, empty: \"\"}\n"
	"    ns_labels: {kubernetes.io/metadata.name: shop}\n"
	"    netns: /run/netns/web-1\n"
	"    ips: [10.0.0.2, \"fd00::2\"]\n"
	"    ports:\n"
	"      - {name: http, port: 8080, protocol: TCP}\n"
	"      - {name: dns, port: 53, protocol: UDP}\n"
	"      - {name: metrics, port: 9090}\n"
	"  - id: db-1\n"
	"    ips: [10.0.0.5]\n"
	"  - {id: api-1, labels: {app: api}, ips: [\"2001:db8::7\"]}\n";

static void test_good(void)
{
	struct mseg_inventory inv;
	struct mseg_endpoint *ep;
	struct mseg_err err;
	int r;

	inventory_init(&inv);
	r = inventory_parse_buffer(&inv, "inv.yaml", good, strlen(good), &err);
	T_CHECK(r == 0, "%s", fmt(&err));
	T_CHECK(inv.n == 3, "n = %zu", inv.n);
	if (inv.n != 3)
		goto out;
	/* sorted by id */
	T_STREQ(inv.eps[0]->id, "api-1");
	T_STREQ(inv.eps[1]->id, "db-1");
	T_STREQ(inv.eps[2]->id, "web-1");

	ep = inventory_find(&inv, "web-1");
	T_CHECK(ep == inv.eps[2], "find");
	T_STREQ(ep->name, "web");
	T_STREQ(ep->ns, "shop");
	T_STREQ(ep->netns, "/run/netns/web-1");
	T_CHECK(ep->n_labels == 4, "labels %zu", ep->n_labels);
	if (ep->n_labels == 4) {
		T_STREQ(ep->labels[0].key, "app");
		T_STREQ(ep->labels[1].key, "app.kubernetes.io/name");
		T_STREQ(ep->labels[1].value, "web-ui");
		T_STREQ(ep->labels[2].key, "empty");
		T_STREQ(ep->labels[2].value, "");
		T_STREQ(ep->labels[3].key, "tier");
	}
	T_CHECK(ep->n_ns_labels == 1, "ns_labels");
	T_CHECK(ep->n_ips == 2 && addr_is(&ep->ips[0], "10.0.0.2") &&
			addr_is(&ep->ips[1], "fd00::2"),
		"ips");
	T_CHECK(ep->n_ports == 3, "ports %zu", ep->n_ports);
	if (ep->n_ports == 3) {
		T_STREQ(ep->ports[0].name, "http");
		T_CHECK(ep->ports[0].port == 8080 && ep->ports[0].proto == IPPROTO_TCP, "http");
		T_CHECK(ep->ports[1].port == 53 && ep->ports[1].proto == IPPROTO_UDP, "dns");
		T_CHECK(ep->ports[2].port == 9090 && ep->ports[2].proto == IPPROTO_TCP,
			"protocol defaults to TCP");
	}
	T_STREQ(ep->pos.file, "inv.yaml");
	T_CHECK(ep->pos.line == 2 && ep->pos.col == 5, "pos %u:%u", ep->pos.line, ep->pos.col);

	/* defaults */
	ep = inventory_find(&inv, "db-1");
	T_CHECK(ep != NULL, "db-1");
	if (ep) {
		T_STREQ(ep->name, "db-1");
		T_STREQ(ep->ns, "default");
		T_CHECK(ep->netns == NULL && ep->n_labels == 0 && ep->n_ports == 0, "optional");
	}
	T_CHECK(inventory_find(&inv, "nope") == NULL, "find absent");
out:
	inventory_release(&inv);
}

static void test_json_and_multidoc(void)
{
	const char *j = "{\"endpoints\": [{\"id\": \"a\", \"ips\": [\"10.1.0.1\"]},\n"
			"\t{\"id\": \"b\", \"labels\": {\"app\": \"x\"}, \"ips\": [\"10.1.0.2\"],\n"
			"\t \"ports\": [{\"name\": \"pg\", \"port\": 5432, \"protocol\": \"TCP\"}]}]}\n";
	const char *m = "endpoints: [{id: c, ips: [10.2.0.1]}]\n---\n---\nendpoints: []\n"
			"---\nendpoints: [{id: d, ips: [10.2.0.2]}]\n";
	struct mseg_inventory inv;
	struct mseg_err err;
	int r;

	inventory_init(&inv);
	r = inventory_parse_buffer(&inv, "j", j, strlen(j), &err);
	T_CHECK(r == 0 && inv.n == 2, "json: %s", fmt(&err));
	r = inventory_parse_buffer(&inv, "m", m, strlen(m), &err);
	T_CHECK(r == 0 && inv.n == 4, "multi-doc: %s", fmt(&err));
	if (inv.n == 4) {
		T_STREQ(inv.eps[0]->id, "a");
		T_STREQ(inv.eps[3]->id, "d");
		T_CHECK(inv.eps[1]->n_ports == 1 && inv.eps[1]->ports[0].port == 5432, "json port");
	}
	/* an empty inventory is fine */
	r = inventory_parse_buffer(&inv, "e", "", 0, &err);
	T_CHECK(r == 0 && inv.n == 4, "empty");
	r = inventory_parse_buffer(&inv, "e", "endpoints: []\n", 14, &err);
	T_CHECK(r == 0 && inv.n == 4, "no endpoints");
	inventory_release(&inv);
}

/* One inventory document, with its error. Also checks that an inventory
 * holding "old-1" is left untouched. */
static const struct {
	const char *yaml, *err;
} bad[] = {
	{ "endpoints:\n  - {id: a, ips: [10.0.0.1]}\n  - {id: b, ips: [10.0.0.2]}\n"
	  "  - {id: a, ips: [10.0.0.3]}\n",
	  "inv.yaml:4:10: endpoint 'a' is already defined at inv.yaml:2:5" },
	{ "endpoints:\n  - {id: old-1, ips: [10.0.0.1]}\n",
	  "inv.yaml:2:10: endpoint 'old-1' is already defined at old.yaml:1:13" },
	{ "endpoints:\n  - {id: a, ips: [10.0.0.256]}\n",
	  "inv.yaml:2:19: endpoint 'a': ips[0]: '10.0.0.256' is not a valid IP address" },
	{ "endpoints:\n  - {id: a, ips: [10.0.0.1/32]}\n",
	  "inv.yaml:2:19: endpoint 'a': ips[0]: '10.0.0.1/32' is not a valid IP address "
	  "(write it without a prefix length)" },
	{ "endpoints:\n  - {id: a, ips: [\"fd00::1\", \"fd00:0::1\"]}\n",
	  "inv.yaml:2:30: endpoint 'a': ips[1]: duplicate address 'fd00:0::1'" },
	{ "endpoints:\n  - id: a\n    netns: /run/netns/a\n",
	  "inv.yaml:2:5: endpoint 'a': missing required key 'ips'" },
	{ "endpoints:\n  - {id: a, ips: []}\n",
	  "inv.yaml:2:18: endpoint 'a': ips: must not be empty" },
	{ "endpoints:\n  - {id: a, ips: 10.0.0.1}\n",
	  "inv.yaml:2:18: endpoint 'a': ips: expected a sequence, got a string" },
	{ "endpoints:\n  - {id: a, netns: run/netns/a, ips: [10.0.0.1]}\n",
	  "inv.yaml:2:20: endpoint 'a': netns: 'run/netns/a' is not an absolute path" },
	{ "endpoints:\n  - {id: a, labels: {\"app name\": x}, ips: [10.0.0.1]}\n",
	  "inv.yaml:2:22: endpoint 'a': labels: 'app name' is not a valid label key ([prefix/]name: "
	  "name at most 63 characters of letters, digits, '-', '_' and '.', beginning and ending "
	  "with a letter or digit)" },
	{ "endpoints:\n  - {id: a, labels: {app: -x}, ips: [10.0.0.1]}\n",
	  "inv.yaml:2:27: endpoint 'a': labels: label 'app': '-x' is not a valid label value (at "
	  "most 63 characters of letters, digits, '-', '_' and '.', beginning and ending with a "
	  "letter or digit)" },
	{ "endpoints:\n  - {id: a, labels: {Example.COM/app: x}, ips: [10.0.0.1]}\n",
	  "inv.yaml:2:22: endpoint 'a': labels: 'Example.COM/app' is not a valid label key "
	  "([prefix/]name: name at most 63 characters of letters, digits, '-', '_' and '.', "
	  "beginning and ending with a letter or digit)" },
	{ "endpoints:\n  - {id: a, ns_labels: {team: }, ips: [10.0.0.1]}\n",
	  "inv.yaml:2:31: endpoint 'a': ns_labels: label 'team': expected a string, got an empty "
	  "value" },
	{ "endpoints:\n  - {id: \"a b\", ips: [10.0.0.1]}\n",
	  "inv.yaml:2:10: endpoints[0].id: 'a b' is not a valid id (letters, digits, '_', '.' and "
	  "'-', beginning with a letter or digit, at most 128 characters)" },
	{ "endpoints:\n  - {name: a, ips: [10.0.0.1]}\n",
	  "inv.yaml:2:5: endpoints[0]: missing required key 'id'" },
	{ "endpoints:\n  - {id: a, ips: [10.0.0.1], adress: x}\n",
	  "inv.yaml:2:30: endpoint 'a': unknown key 'adress'" },
	{ "endpoints:\n  - {id: a, namespace: Shop, ips: [10.0.0.1]}\n",
	  "inv.yaml:2:24: endpoint 'a': namespace: 'Shop' is not a valid namespace (lowercase "
	  "letters, digits and '-', beginning and ending with a letter or digit, at most 63 "
	  "characters)" },
	{ "endpoints:\n  - {id: a, ips: [10.0.0.1], ports: [{name: http, port: \"8080\"}]}\n",
	  "inv.yaml:2:57: endpoint 'a': ports[0].port: expected an integer, got a string" },
	{ "endpoints:\n  - {id: a, ips: [10.0.0.1], ports: [{name: http, port: 65536}]}\n",
	  "inv.yaml:2:57: endpoint 'a': ports[0].port: 65536 out of range (1-65535)" },
	{ "endpoints:\n  - {id: a, ips: [10.0.0.1], ports: [{name: http, port: 80, protocol: tcp}]}\n",
	  "inv.yaml:2:71: endpoint 'a': ports[0].protocol: unknown protocol 'tcp' (TCP, UDP or "
	  "SCTP)" },
	{ "endpoints:\n  - {id: a, ips: [10.0.0.1], ports: [{name: HTTP, port: 80}]}\n",
	  "inv.yaml:2:45: endpoint 'a': ports[0].name: 'HTTP' is not a valid port name (at most 15 "
	  "lowercase letters, digits and '-', with a letter, no '-' at either end or twice in a "
	  "row)" },
	{ "endpoints:\n  - {id: a, ips: [10.0.0.1], ports: [{name: h, port: 80}, {name: h, port: 81}]}\n",
	  "inv.yaml:2:66: endpoint 'a': ports[1].name: duplicate port name 'h'" },
	{ "endpoints:\n  - {id: a, ips: [10.0.0.1], ports: [{port: 80}]}\n",
	  "inv.yaml:2:38: endpoint 'a': ports[0]: missing required key 'name'" },
	{ "endpoint:\n  - {id: a, ips: [10.0.0.1]}\n", "inv.yaml:1:1: unknown key 'endpoint'" },
	{ "endpoints: {id: a}\n", "inv.yaml:1:12: endpoints: expected a sequence, got a mapping" },
	{ "- {id: a}\n", "inv.yaml:1:1: document: expected a mapping, got a sequence" },
	{ "endpoints:\n  - [a]\n", "inv.yaml:2:5: endpoints[0]: expected a mapping, got a sequence" },
	{ "endpoints:\n  - {id: a, ips: [10.0.0.1]\n",
	  "inv.yaml:3:1: did not find expected ',' or '}' (while parsing a flow mapping at line 2, "
	  "column 5)" },
	/* a good document before a bad one: nothing is loaded */
	{ "endpoints: [{id: z1, ips: [10.0.0.1]}]\n---\nendpoints: [{id: z2, ips: [bad]}]\n",
	  "inv.yaml:3:28: endpoint 'z2': ips[0]: 'bad' is not a valid IP address" },
	{ "endpoints: &e []\n", "inv.yaml:1:12: YAML aliases/anchors are not supported" },
};

static void test_bad(void)
{
	static const char old[] = "endpoints: [{id: old-1, ips: [10.9.9.9]}]\n";
	struct mseg_inventory inv;
	struct mseg_err err;
	size_t i;

	inventory_init(&inv);
	T_CHECK(inventory_parse_buffer(&inv, "old.yaml", old, strlen(old), &err) == 0, "setup");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct mseg_endpoint *before = inv.n == 1 ? inv.eps[0] : NULL;
		int r;

		err_clear(&err);
		r = inventory_parse_buffer(&inv, "inv.yaml", bad[i].yaml, strlen(bad[i].yaml), &err);
		T_CHECK(r == -EINVAL, "case %zu: r = %d", i, r);
		T_STREQ(fmt(&err), bad[i].err);
		T_CHECK(inv.n == 1 && inv.eps[0] == before, "case %zu changed the inventory", i);
	}
	inventory_release(&inv);
}

static struct mseg_endpoint *one(const char *id, const char *yaml)
{
	struct mseg_endpoint *ep = NULL;
	struct mseg_err err;
	int r = endpoint_parse_buffer(id, "body", yaml, strlen(yaml), &ep, &err);

	T_CHECK(r == 0 && ep, "endpoint_parse_buffer: %s", fmt(&err));
	return ep;
}

static void test_put_remove(void)
{
	static const char *const ids[] = { "m", "c", "x", "a", "q", "b" };
	struct mseg_inventory inv;
	struct mseg_endpoint *ep, *keep;
	size_t i;

	inventory_init(&inv);
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		ep = one(ids[i], "{\"ips\": [\"10.0.0.1\"]}");
		T_CHECK(ep && inventory_put(&inv, ep) == 0, "put %s", ids[i]);
	}
	T_CHECK(inv.n == 6, "n = %zu", inv.n);
	for (i = 1; i < inv.n; i++)
		T_CHECK(strcmp(inv.eps[i - 1]->id, inv.eps[i]->id) < 0, "sorted at %zu", i);

	/* replacing frees the old one (valgrind checks) and keeps the order */
	keep = one("q", "{\"ips\": [\"10.0.0.9\"], \"name\": \"new\"}");
	T_CHECK(keep && inventory_put(&inv, keep) == 0 && inv.n == 6, "replace");
	T_CHECK(inventory_find(&inv, "q") == keep, "find replaced");
	T_STREQ(inventory_find(&inv, "q")->name, "new");

	T_CHECK(inventory_remove(&inv, "a") == 0 && inv.n == 5, "remove first");
	T_CHECK(inventory_remove(&inv, "x") == 0 && inv.n == 4, "remove last");
	T_CHECK(inventory_remove(&inv, "x") == -ENOENT, "remove absent");
	T_STREQ(inv.eps[0]->id, "b");
	T_STREQ(inv.eps[3]->id, "q");
	for (i = 0; i < inv.n; i++)
		T_CHECK(inventory_find(&inv, inv.eps[i]->id) == inv.eps[i], "find %zu", i);

	ep = calloc(1, sizeof(*ep));
	T_CHECK(inventory_put(&inv, ep) == -EINVAL, "put without id");
	free(ep);
	T_CHECK(inventory_put(&inv, NULL) == -EINVAL, "put NULL");
	T_CHECK(endpoint_free(NULL) == NULL, "free NULL");
	inventory_release(&inv);
	T_CHECK(inv.n == 0 && inv.eps == NULL, "released");
}

static void test_endpoint_body(void)
{
	struct mseg_endpoint *ep = NULL;
	struct mseg_err err;
	const char *body = "{\"name\": \"web\", \"namespace\": \"shop\", \"labels\": {\"app\": \"web\"},\n"
			   " \"netns\": \"/run/netns/web\", \"ips\": [\"10.0.0.2\", \"fd00::2\"]}";
	int r;

	ep = one("web-1", body);
	if (ep) {
		T_STREQ(ep->id, "web-1");
		T_STREQ(ep->name, "web");
		T_STREQ(ep->ns, "shop");
		T_CHECK(ep->n_ips == 2 && ep->n_labels == 1, "fields");
		T_STREQ(ep->pos.file, "body");
		ep = endpoint_free(ep);
	}
	ep = one("web-1", "{\"id\": \"web-1\", \"ips\": [\"10.0.0.2\"]}");
	endpoint_free(ep);
	ep = one(NULL, "{id: web-2, ips: [10.0.0.2]}");
	if (ep)
		T_STREQ(ep->id, "web-2");
	ep = endpoint_free(ep);

	r = endpoint_parse_buffer("web-1", "body", "{\"id\": \"web-2\", \"ips\": [\"10.0.0.2\"]}", 36,
				  &ep, &err);
	T_CHECK(r == -EINVAL, "id mismatch");
	T_STREQ(fmt(&err), "body:1:8: endpoint.id: 'web-2' does not match the endpoint id 'web-1'");
	r = endpoint_parse_buffer(NULL, "body", "{\"ips\": [\"10.0.0.2\"]}", 21, &ep, &err);
	T_CHECK(r == -EINVAL, "missing id");
	T_STREQ(fmt(&err), "body:1:1: endpoint: missing required key 'id'");
	r = endpoint_parse_buffer("bad id", "body", "{\"ips\": [\"10.0.0.2\"]}", 21, &ep, &err);
	T_CHECK(r == -EINVAL, "bad path id");
	T_STREQ(fmt(&err), "'bad id' is not a valid endpoint id (letters, digits, '_', '.' and "
			   "'-', beginning with a letter or digit, at most 128 characters)");
	r = endpoint_parse_buffer("a", "body", "", 0, &ep, &err);
	T_CHECK(r == -EINVAL, "empty body");
	T_STREQ(fmt(&err), "body: empty document");
	r = endpoint_parse_buffer("a", "body", "{ips: [10.0.0.1]}\n---\n{ips: [10.0.0.2]}\n", 40, &ep,
				  &err);
	T_CHECK(r == -EINVAL, "two documents");
	T_STREQ(fmt(&err), "body:2:1: expected one endpoint document, found another");
	T_CHECK(ep == NULL, "nothing returned on error");
}

static void test_load_file(void)
{
	char path[] = "/tmp/mseg-inv-XXXXXX";
	struct mseg_inventory inv;
	struct mseg_err err;
	int fd = mkstemp(path), r;

	inventory_init(&inv);
	T_CHECK(fd >= 0, "mkstemp");
	if (fd < 0)
		return;
	T_CHECK(write(fd, good, strlen(good)) == (ssize_t)strlen(good), "write");
	close(fd);
	r = inventory_load_file(&inv, path, &err);
	T_CHECK(r == 0 && inv.n == 3, "load: %s", fmt(&err));
	if (inv.n == 3)
		T_STREQ(inv.eps[0]->pos.file, path);
	unlink(path);
	r = inventory_load_file(&inv, path, &err);
	T_CHECK(r == -ENOENT && inv.n == 3, "missing file");
	inventory_release(&inv);
}

int main(void)
{
	T_RUN(test_good);
	T_RUN(test_json_and_multidoc);
	T_RUN(test_bad);
	T_RUN(test_put_remove);
	T_RUN(test_endpoint_body);
	T_RUN(test_load_file);
	return t_exit();
}
