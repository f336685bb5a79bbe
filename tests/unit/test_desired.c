/* The desired state's one merge: a file wins a name clash over the API, a
 * pending change shows in the view exactly as it will after it is made (the
 * dry run and the real reconcile see the same state), API changes are
 * durable before they show, and a refused change leaves everything as it
 * was. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mseg/daemon/desired.h"
#include "mseg/model/addr.h"
#include "mseg/model/inventory.h"
#include "mseg/model/plan.h"
#include "mseg/model/policy.h"
#include "t.h"

static char dir[64];

static const char pol_shop[] =
	"apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: NAME, namespace: shop}\n"
	"spec:\n  groups:\n    web: {selector: {app: web}}\n    db: {selector: {app: db}}\n"
	"  allow:\n    - {from: web, to: db, ports: [tcp/PORT]}\n";

static char *pol_text(const char *name, const char *port)
{
	static char buf[512];
	char tmp[512];
	char *p;

	snprintf(tmp, sizeof(tmp), "%s", pol_shop);
	p = strstr(tmp, "NAME");
	*p = '\0';
	snprintf(buf, sizeof(buf), "%s%s%s", tmp, name, p + 4);
	snprintf(tmp, sizeof(tmp), "%s", buf);
	p = strstr(tmp, "PORT");
	*p = '\0';
	snprintf(buf, sizeof(buf), "%s%s%s", tmp, port, p + 4);
	return buf;
}

static struct mseg_policy *pol_new(const char *name, const char *port)
{
	struct mseg_policy_set set;
	struct mseg_policy *p = NULL;
	struct mseg_err err;
	const char *text = pol_text(name, port);

	policy_set_init(&set);
	err_clear(&err);
	if (policy_parse_buffer(&set, "test", text, strlen(text), &err) == 0 && set.n == 1) {
		p = set.items[0];
		set.n = 0;
	}
	policy_set_release(&set);
	return p;
}

static char ep_doc[256];   /* the document of the last ep_new() */

static struct mseg_endpoint *ep_new(const char *id, const char *app, const char *ip)
{
	struct mseg_endpoint *ep = NULL;
	struct mseg_err err;
	char *doc = ep_doc;

	snprintf(ep_doc, sizeof(ep_doc),
		 "{\"namespace\": \"shop\", \"labels\": {\"app\": \"%s\"}, \"ips\": [\"%s\"]}",
		 app, ip);
	err_clear(&err);
	if (endpoint_parse_buffer(id, "test", doc, strlen(doc), &ep, &err) < 0)
		return NULL;
	return ep;
}

/* ep_new() and store it through the API with its document */
static int api_ep_put(struct desired *ds, const char *id, const char *app, const char *ip)
{
	struct mseg_endpoint *ep = ep_new(id, app, ip);
	struct mseg_err err;
	int r;

	err_clear(&err);
	r = desired_api_endpoint_put(ds, ep, ep_doc, strlen(ep_doc), &err);
	if (r < 0)
		endpoint_free(ep);
	return r;
}

/* "id,id,..." of the view's endpoints and "ns/name,..." of its policies */
static const char *view_eps(const struct desired_view *v)
{
	static char buf[256];
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < v->inv.n && n < sizeof(buf); i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? "," : "", v->inv.eps[i]->id);
	return buf;
}

static const char *view_pols(const struct desired_view *v)
{
	static char buf[256];
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < v->pols.n && n < sizeof(buf); i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? "," : "",
				      v->pols.items[i]->name);
	return buf;
}

static bool ep_plan_same(const struct mseg_ep_plan *a, const struct mseg_ep_plan *b)
{
	if (strcmp(a->ep->id, b->ep->id) != 0)
		return false;
	for (int d = 0; d < MSEG_DIR_COUNT; d++) {
		const struct mseg_dir_plan *x = &a->dir[d], *y = &b->dir[d];

		if (x->isolated != y->isolated || x->mode != y->mode || x->n_entries != y->n_entries)
			return false;
		for (size_t i = 0; i < x->n_entries; i++)
			if (addr_entry_cmp(&x->entries[i], &y->entries[i]) != 0 ||
			    x->entries[i].policy != y->entries[i].policy ||
			    x->entries[i].rule != y->entries[i].rule)
				return false;
	}
	return true;
}

static void fresh_dir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("  cannot clean %s\n", dir);
}

/* files: policy f1, endpoints b, d; API: policy a1 and f1 (shadowed),
 * endpoints a, b (shadowed), c */
static void setup(struct desired *ds)
{
	struct mseg_policy_set fp;
	struct mseg_inventory fi;
	struct mseg_err err;
	const char *t;

	fresh_dir();
	desired_init(ds);
	err_clear(&err);
	T_CHECK(desired_store_open(ds, dir, &err) == 0, "store_open: %s", err.msg);
	policy_set_init(&fp);
	inventory_init(&fi);
	policy_set_put(&fp, pol_new("f1", "5432"));
	inventory_put(&fi, ep_new("b", "web", "10.0.0.2"));
	inventory_put(&fi, ep_new("d", "db", "10.0.0.4"));
	desired_files_replace(ds, &fp, &fi);
	T_CHECK(fp.n == 0 && fi.n == 0, "files taken");
	policy_set_release(&fp);
	inventory_release(&fi);

	t = pol_text("a1", "80");
	T_CHECK(desired_api_policy_put(ds, pol_new("a1", "80"), t, strlen(t), &err) == 0, "%s", err.msg);
	t = pol_text("f1", "1");
	T_CHECK(desired_api_policy_put(ds, pol_new("f1", "1"), t, strlen(t), &err) == 0, "%s", err.msg);
	T_CHECK(api_ep_put(ds, "c", "db", "10.0.0.3") == 0, "c");
	T_CHECK(api_ep_put(ds, "a", "web", "10.0.0.1") == 0, "a");
	T_CHECK(api_ep_put(ds, "b", "db", "10.0.0.9") == 0, "b");
}

static void test_files_win_and_order(void)
{
	struct desired ds;
	struct desired_view v;

	setup(&ds);
	T_CHECK(desired_view_build(&ds, NULL, &v) == 0, "build");
	T_STREQ(view_eps(&v), "a,b,c,d");
	T_STREQ(view_pols(&v), "f1,a1");
	T_CHECK(v.shadowed_pols == 1 && v.shadowed_eps == 1, "shadowed %zu %zu", v.shadowed_pols,
		v.shadowed_eps);
	/* the file's b (app web), not the API's (app db) */
	T_CHECK(v.inv.eps[1]->n_labels == 1 && strcmp(v.inv.eps[1]->labels[0].value, "web") == 0,
		"file endpoint b wins");
	/* the file's f1 (port 5432) */
	T_CHECK(v.pols.items[0]->pos.file && strcmp(v.pols.items[0]->pos.file, "test") == 0, "f1");
	T_CHECK(desired_policy_shadowed(&ds, desired_policy_find(&ds, DESIRED_API, "shop", "f1")),
		"f1 shadowed");
	T_CHECK(!desired_policy_shadowed(&ds, desired_policy_find(&ds, DESIRED_API, "shop", "a1")),
		"a1 not shadowed");
	desired_view_release(&v);
	desired_release(&ds);
}

/* A pending change shows in the view exactly as the state is after the
 * change is made: same endpoints in the same order, same policies, and the
 * same compiled plan. */
static void test_change_equals_commit(void)
{
	struct desired ds;
	struct mseg_endpoint *put = ep_new("bb", "web", "10.0.0.7");
	struct mseg_policy *pol = pol_new("a1", "443");
	struct desired_change ch = { .put_ep = put, .put_pol = pol, .del_id = "c" };
	struct desired_view before, after;
	struct compile_opts opts = { 0 };
	struct desired_plan pending = { 0 }, made = { 0 };
	struct mseg_plan *plan_pending, *plan_made;
	struct mseg_err err;
	char pending_eps[256], pending_pols[256];
	const char *t = pol_text("a1", "443");

	setup(&ds);
	T_CHECK(desired_view_build(&ds, &ch, &before) == 0, "build with change");
	snprintf(pending_eps, sizeof(pending_eps), "%s", view_eps(&before));
	snprintf(pending_pols, sizeof(pending_pols), "%s", view_pols(&before));
	T_STREQ(pending_eps, "a,b,bb,d");
	T_CHECK(desired_compile(&ds, &ch, &opts, &pending) == 0, "compile pending");
	plan_pending = pending.plan;
	desired_view_release(&before);

	err_clear(&err);
	T_CHECK(desired_api_endpoint_put(&ds, put, ep_doc, strlen(ep_doc), &err) == 0, "put");
	T_CHECK(desired_api_endpoint_delete(&ds, "c", &err) == 0, "delete");
	T_CHECK(desired_api_policy_put(&ds, pol, t, strlen(t), &err) == 0, "policy put");
	T_CHECK(desired_view_build(&ds, NULL, &after) == 0, "build after");
	T_STREQ(view_eps(&after), pending_eps);
	/* the replaced policy moves to the end of the API set either way */
	T_STREQ(view_pols(&after), pending_pols);
	T_CHECK(desired_compile(&ds, NULL, &opts, &made) == 0, "compile made");
	plan_made = made.plan;
	T_CHECK(plan_pending && plan_made && plan_pending->n_eps == plan_made->n_eps &&
		plan_made->n_eps == 4, "same plan size");
	for (size_t i = 0; plan_pending && plan_made && i < plan_pending->n_eps &&
			   i < plan_made->n_eps; i++)
		T_CHECK(ep_plan_same(&plan_pending->eps[i], &plan_made->eps[i]),
			"plan of endpoint %zu differs", i);
	T_CHECK(plan_made && plan_made->eps[3].dir[MSEG_DIR_INGRESS].n_entries > 0,
		"d (db) admits something");
	T_CHECK(ds.generation == 8, "generation %llu", (unsigned long long)ds.generation);
	desired_plan_release(&pending);
	desired_plan_release(&made);
	desired_view_release(&after);
	desired_release(&ds);
}

/* A refused write changes nothing: the store dir cannot be written. */
static void test_refused_write_changes_nothing(void)
{
	struct desired ds;
	struct desired_view v;
	struct mseg_endpoint *ep = ep_new("zz", "web", "10.0.0.8");
	struct mseg_err err;
	char sub[128];
	uint64_t gen;

	setup(&ds);
	gen = ds.generation;
	snprintf(sub, sizeof(sub), "%s/endpoints", dir);
	chmod(sub, 0500);
	err_clear(&err);
	if (geteuid() == 0) {
		/* root writes anyway: take the directory away instead */
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s' && touch '%s'", sub, sub);
		T_CHECK(system(cmd) == 0, "replace dir");
	}
	T_CHECK(desired_api_endpoint_put(&ds, ep, ep_doc, strlen(ep_doc), &err) < 0, "put must fail");
	T_CHECK(err.msg[0] != '\0', "error says why");
	T_CHECK(ds.generation == gen, "generation unchanged");
	T_CHECK(desired_view_build(&ds, NULL, &v) == 0, "build");
	T_STREQ(view_eps(&v), "a,b,c,d");
	desired_view_release(&v);
	T_CHECK(desired_api_endpoint_delete(&ds, "nope", &err) == -ENOENT, "delete absent");
	T_CHECK(desired_api_policy_delete(&ds, "shop", "nope", &err) == -ENOENT, "delete absent");
	endpoint_free(ep);
	desired_release(&ds);
}

/* What the API accepted comes back from the store after a restart. */
static void test_reopen(void)
{
	struct desired ds, again;
	struct desired_view v;
	struct mseg_err err;

	setup(&ds);
	desired_release(&ds);
	desired_init(&again);
	err_clear(&err);
	T_CHECK(desired_store_open(&again, dir, &err) == 0, "reopen: %s", err.msg);
	T_CHECK(desired_view_build(&again, NULL, &v) == 0, "build");
	T_STREQ(view_eps(&v), "a,b,c");
	T_STREQ(view_pols(&v), "a1,f1");
	T_CHECK(v.shadowed_eps == 0 && v.shadowed_pols == 0, "no files, nothing shadowed");
	desired_view_release(&v);
	desired_release(&again);
}

static const struct mseg_policy *view_pol(const struct desired_view *v, const char *name)
{
	for (size_t i = 0; i < v->pols.n; i++)
		if (strcmp(v->pols.items[i]->name, name) == 0)
			return v->pols.items[i];
	return NULL;
}

/* A mode set through the API shows in every view (compile sees it), over
 * the document's; it and a learning stage's end survive a reopen; a
 * refused write changes nothing; a policy that goes takes its stage. */
static void test_stages(void)
{
	struct desired ds, again;
	struct desired_view v;
	const struct mseg_policy *p;
	struct mseg_err err;
	char sub[256];
	uint64_t gen;

	setup(&ds);
	err_clear(&err);
	T_CHECK(desired_stage_set(&ds, "shop", "a1", STAGE_AUDIT, 0, 1000, &err) == 0, "%s", err.msg);
	T_CHECK(desired_stage_set(&ds, "shop", "f1", STAGE_LEARN, 3600, 1000, &err) == 0, "%s",
		err.msg);
	T_CHECK(desired_stage_set(&ds, "shop", "nope", STAGE_AUDIT, 0, 1000, &err) == -ENOENT,
		"no such policy");
	T_CHECK(desired_view_build(&ds, NULL, &v) == 0, "build");
	p = view_pol(&v, "a1");
	T_CHECK(p && p->mode == MSEG_MODE_AUDIT && !p->learn, "a1 audited in the view");
	p = view_pol(&v, "f1");
	T_CHECK(p && p->mode == MSEG_MODE_ENFORCE && p->learn && p->learn_until_s == 4600,
		"f1 learning until 4600: %" PRIu64, p ? p->learn_until_s : 0);
	T_CHECK(p && desired_policy_learning(p, 4599) && !desired_policy_learning(p, 4600),
		"learning ends at 4600");
	desired_view_release(&v);
	T_CHECK(desired_policy_find(&ds, DESIRED_API, "shop", "a1")->mode == MSEG_MODE_ENFORCE,
		"the source policy is untouched");

	/* a refused write: nothing changes */
	gen = ds.generation;
	snprintf(sub, sizeof(sub), "rm -f '%s/stages' && mkdir '%s/stages'", dir, dir);
	T_CHECK(system(sub) == 0, "block the file");
	T_CHECK(desired_stage_set(&ds, "shop", "a1", STAGE_SPEC, 0, 2000, &err) < 0, "refused");
	T_CHECK(ds.generation == gen, "generation unchanged");
	T_CHECK(desired_stage_find(&ds, "shop", "a1")->mode == STAGE_AUDIT, "still audit");
	snprintf(sub, sizeof(sub), "rmdir '%s/stages'", dir);
	T_CHECK(system(sub) == 0, "unblock");
	T_CHECK(desired_stage_set(&ds, "shop", "a1", STAGE_AUDIT, 0, 1000, &err) == 0, "%s", err.msg);
	desired_release(&ds);

	desired_init(&again);
	T_CHECK(desired_store_open(&again, dir, &err) == 0, "reopen: %s", err.msg);
	T_CHECK(desired_stages_load(&again, &err) == 0, "load: %s", err.msg);
	T_CHECK(desired_view_build(&again, NULL, &v) == 0, "build");
	p = view_pol(&v, "a1");
	T_CHECK(p && p->mode == MSEG_MODE_AUDIT, "a1 still audited after the reopen");
	p = view_pol(&v, "f1");
	T_CHECK(p && p->learn && p->learn_until_s == 4600, "f1's stage ends at 4600 still");
	desired_view_release(&v);
	/* the API's f1 goes, a1 back to its document: both stages go */
	T_CHECK(desired_api_policy_delete(&again, "shop", "f1", &err) == 0, "%s", err.msg);
	T_CHECK(desired_stage_set(&again, "shop", "a1", STAGE_SPEC, 0, 5000, &err) == 0, "%s",
		err.msg);
	T_CHECK(desired_stages_sync(&again, 5000, &err) == 0, "%s", err.msg);
	T_CHECK(!desired_stage_find(&again, "shop", "a1"), "a1: its document again");
	T_CHECK(!desired_stage_find(&again, "shop", "f1") || desired_policy_find(&again, DESIRED_FILE, "shop", "f1"),
		"f1's stage only while some f1 exists");
	desired_release(&again);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/mseg-desired-%d", (int)getpid());
	T_RUN(test_files_win_and_order);
	T_RUN(test_change_equals_commit);
	T_RUN(test_refused_write_changes_nothing);
	T_RUN(test_reopen);
	T_RUN(test_stages);
	fresh_dir();
	return t_exit();
}
