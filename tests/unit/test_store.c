/* The state store: what is put comes back on load, byte for byte; deletes
 * are durable; a crash before the rename (a leftover temporary file) loses
 * only the unacknowledged write; a stored file that no longer parses is an
 * error naming it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mseg/model/inventory.h"
#include "mseg/model/policy.h"
#include "mseg/daemon/store.h"
#include "t.h"

static char dir[64];
static char errbuf[1024];

static const char pol_a[] =
	"apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: a, namespace: shop}\n"
	"spec:\n  groups:\n    web: {selector: {app: web}}\n    db: {selector: {app: db}}\n"
	"  allow:\n    - {from: web, to: db, ports: [tcp/5432]}\n";
static const char pol_a2[] =
	"{\"apiVersion\": \"mseg.io/v1\", \"kind\": \"AllowList\", \"metadata\": {\"name\": \"a\", "
	"\"namespace\": \"shop\"}, \"spec\": {\"groups\": {\"db\": {\"selector\": {\"app\": \"db\"}}},"
	" \"allow\": [{\"from\": \"world\", \"to\": \"db\", \"ports\": [\"tcp/5432\"]}]}}";
static const char ep_db[] = "{\"namespace\": \"shop\", \"labels\": {\"app\": \"db\"}, "
			    "\"netns\": \"/run/netns/x\", \"ips\": [\"10.0.0.2\"]}";

static void rm_rf(const char *path)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		printf("  cannot remove %s\n", path);
}

static size_t count_files(const char *sub)
{
	char path[256];
	DIR *d;
	struct dirent *de;
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void test_roundtrip(void)
{
	struct store *s = NULL;
	struct mseg_policy_set pols;
	struct mseg_inventory inv;
	struct mseg_err err;
	char *doc = NULL;
	size_t len = 0;
	struct stat st;
	char path[256];
	int r;

	r = store_open(dir, &s, &err);
	T_CHECK(r == 0, "%s", err_format(&err, errbuf, sizeof(errbuf)));
	if (r)
		return;
	snprintf(path, sizeof(path), "%s/policies", dir);
	T_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0700, "policies dir mode %o",
		st.st_mode & 0777);
	T_CHECK(store_policy_put(s, "shop", "a", pol_a, strlen(pol_a), &err) == 0, "%s", err.msg);
	T_CHECK(store_endpoint_put(s, "db-1", ep_db, strlen(ep_db), &err) == 0, "%s", err.msg);
	T_CHECK(store_policy_read(s, "shop", "a", &doc, &len) == 0, "read");
	T_CHECK(doc && len == strlen(pol_a) && memcmp(doc, pol_a, len) == 0, "bytes differ");
	free(doc);
	snprintf(path, sizeof(path), "%s/policies/shop.a", dir);
	T_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "file mode %o", st.st_mode & 0777);

	/* replace: one file, the new content */
	T_CHECK(store_policy_put(s, "shop", "a", pol_a2, strlen(pol_a2), &err) == 0, "%s", err.msg);
	T_CHECK(count_files("policies") == 1, "%zu files", count_files("policies"));

	policy_set_init(&pols);
	inventory_init(&inv);
	r = store_load(s, &pols, &inv, &err);
	T_CHECK(r == 0, "%s", err_format(&err, errbuf, sizeof(errbuf)));
	T_CHECK(pols.n == 1 && !strcmp(pols.items[0]->ns, "shop") && !strcmp(pols.items[0]->name, "a"),
		"policies %zu", pols.n);
	T_CHECK(pols.n == 1 && pols.items[0]->n_rules == 1, "the replaced policy came back");
	T_CHECK(inv.n == 1 && !strcmp(inv.eps[0]->id, "db-1") && !strcmp(inv.eps[0]->ns, "shop"),
		"endpoints %zu", inv.n);
	policy_set_release(&pols);
	inventory_release(&inv);

	/* deletes */
	T_CHECK(store_policy_delete(s, "shop", "a", &err) == 0, "%s", err.msg);
	T_CHECK(store_policy_delete(s, "shop", "a", &err) == -ENOENT, "second delete");
	T_CHECK(store_endpoint_delete(s, "db-1", &err) == 0, "%s", err.msg);
	T_CHECK(count_files("policies") == 0 && count_files("endpoints") == 0, "files left");
	/* names that would leave the directory are refused */
	T_CHECK(store_endpoint_put(s, "../x", ep_db, strlen(ep_db), &err) == -EINVAL, "../x");
	T_CHECK(store_endpoint_put(s, ".hidden", ep_db, strlen(ep_db), &err) == -EINVAL, ".hidden");
	T_CHECK(store_policy_put(s, "a.b", "c", pol_a, strlen(pol_a), &err) == -EINVAL, "dot in ns");
	store_free(s);
}

/* A crash after the temporary file was written but before the rename: the
 * old state stays, the temporary file is removed on load. */
static void test_crash_leftover(void)
{
	struct store *s = NULL;
	struct mseg_policy_set pols;
	struct mseg_inventory inv;
	struct mseg_err err;
	char path[256];
	int fd;

	T_CHECK(store_open(dir, &s, &err) == 0, "%s", err.msg);
	if (!s)
		return;
	T_CHECK(store_policy_put(s, "shop", "a", pol_a, strlen(pol_a), &err) == 0, "%s", err.msg);
	snprintf(path, sizeof(path), "%s/policies/.tmp.999.1", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	T_CHECK(fd >= 0, "create temp");
	if (fd >= 0) {
		/* half a document, as a kill -9 in the middle of a write leaves it */
		T_CHECK(write(fd, pol_a2, 20) == 20, "write");
		close(fd);
	}
	policy_set_init(&pols);
	inventory_init(&inv);
	T_CHECK(store_load(s, &pols, &inv, &err) == 0, "%s", err_format(&err, errbuf, sizeof(errbuf)));
	T_CHECK(pols.n == 1 && pols.items[0]->n_rules == 2, "the acknowledged version (2 rules), got %zu rules",
		pols.n ? pols.items[0]->n_rules : 0);
	T_CHECK(access(path, F_OK) != 0, "temporary file removed");
	policy_set_release(&pols);
	inventory_release(&inv);
	store_policy_delete(s, "shop", "a", &err);
	store_free(s);
}

static void test_corrupt(void)
{
	struct store *s = NULL;
	struct mseg_policy_set pols;
	struct mseg_inventory inv;
	struct mseg_err err;
	int r;

	T_CHECK(store_open(dir, &s, &err) == 0, "%s", err.msg);
	if (!s)
		return;
	T_CHECK(store_write_atomic(dir, "policies/shop.b", "kind: [", 7, &err) == 0, "%s", err.msg);
	policy_set_init(&pols);
	inventory_init(&inv);
	err_clear(&err);
	r = store_load(s, &pols, &inv, &err);
	T_CHECK(r == -EINVAL, "r = %d", r);
	T_CHECK(strstr(err.file, "policies/shop.b") != NULL, "error names the file: '%s'", err.file);
	T_CHECK(pols.n == 0 && inv.n == 0, "nothing loaded");
	policy_set_release(&pols);
	inventory_release(&inv);
	/* a file whose content is another policy than its name */
	T_CHECK(store_write_atomic(dir, "policies/shop.b", pol_a, strlen(pol_a), &err) == 0, "%s", err.msg);
	r = store_load(s, &pols, &inv, &err);
	T_CHECK(r == -EINVAL, "name mismatch r = %d", r);
	policy_set_release(&pols);
	inventory_release(&inv);
	store_free(s);
}

/* Quarantine: a bad file is moved aside with its reason, the rest loads. */
static void test_quarantine(void)
{
	struct store *s = NULL;
	struct mseg_policy_set pols;
	struct mseg_inventory inv;
	struct mseg_err err;
	char path[512];
	int r;

	T_CHECK(store_open(dir, &s, &err) == 0, "%s", err.msg);
	if (!s)
		return;
	store_quarantine_enable(s);
	T_CHECK(store_write_atomic(dir, "policies/shop.b", "kind: [", 7, &err) == 0, "%s", err.msg);
	T_CHECK(store_policy_put(s, "shop", "a", pol_a, strlen(pol_a), &err) == 0, "%s", err.msg);
	T_CHECK(store_write_atomic(dir, "endpoints/bad", "{\"ips\": 5}", 11, &err) == 0, "%s",
		err.msg);
	T_CHECK(store_endpoint_put(s, "db", ep_db, strlen(ep_db), &err) == 0, "%s", err.msg);
	policy_set_init(&pols);
	inventory_init(&inv);
	err_clear(&err);
	r = store_load(s, &pols, &inv, &err);
	T_CHECK(r == 0, "loads the rest: r = %d (%s)", r, err.msg);
	T_CHECK(pols.n == 1 && inv.n == 1, "the good ones: %zu policies, %zu endpoints", pols.n,
		inv.n);
	T_CHECK(store_quarantined_count(s) == 2, "two quarantined: %zu", store_quarantined_count(s));
	T_CHECK(store_quarantined(s, 0) && strstr(store_quarantined(s, 0), "policies/shop.b") &&
		strstr(store_quarantined(s, 0), "moved to") &&
		strstr(store_quarantined(s, 0), "quarantine/policies.shop.b"),
		"says what and where: %s", store_quarantined(s, 0));
	snprintf(path, sizeof(path), "%s/quarantine/endpoints.bad", dir);
	T_CHECK(access(path, F_OK) == 0, "the endpoint file was moved aside");
	snprintf(path, sizeof(path), "%s/endpoints/bad", dir);
	T_CHECK(access(path, F_OK) != 0, "and is no longer in the store");
	policy_set_release(&pols);
	inventory_release(&inv);
	store_free(s);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/mseg-store.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	/* a nested, not yet existing state dir */
	strcat(dir, "/state");
	T_RUN(test_roundtrip);
	T_RUN(test_crash_leftover);
	T_RUN(test_corrupt);
	rm_rf(dir);
	T_RUN(test_quarantine);
	dir[strlen(dir) - strlen("/state")] = '\0';
	rm_rf(dir);
	return t_exit();
}
