/* The desired state and its one merge (include/mseg/daemon/desired.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/daemon/desired.h"
#include "mseg/daemon/store.h"
#include "mseg/model/inventory.h"
#include "mseg/model/policy.h"

void desired_init(struct desired *ds)
{
	memset(ds, 0, sizeof(*ds));
	for (int s = 0; s < DESIRED_N_SOURCES; s++) {
		policy_set_init(&ds->pols[s]);
		inventory_init(&ds->inv[s]);
	}
}

void desired_release(struct desired *ds)
{
	for (int s = 0; s < DESIRED_N_SOURCES; s++) {
		policy_set_release(&ds->pols[s]);
		inventory_release(&ds->inv[s]);
	}
	ds->store = store_free(ds->store);
}

int desired_store_open(struct desired *ds, const char *state_dir, struct mseg_err *err)
{
	struct mseg_policy_set pols;
	struct mseg_inventory inv;
	struct store *st = NULL;
	int r;

	policy_set_init(&pols);
	inventory_init(&inv);
	r = store_open(state_dir, &st, err);
	if (r < 0)
		return r;
	r = store_load(st, &pols, &inv, err);
	if (r < 0) {
		store_free(st);
		policy_set_release(&pols);
		inventory_release(&inv);
		return r;
	}
	policy_set_release(&ds->pols[DESIRED_API]);
	inventory_release(&ds->inv[DESIRED_API]);
	ds->pols[DESIRED_API] = pols;
	ds->inv[DESIRED_API] = inv;
	store_free(ds->store);
	ds->store = st;
	return 0;
}

void desired_files_replace(struct desired *ds, struct mseg_policy_set *pols,
			   struct mseg_inventory *inv)
{
	policy_set_release(&ds->pols[DESIRED_FILE]);
	inventory_release(&ds->inv[DESIRED_FILE]);
	ds->pols[DESIRED_FILE] = *pols;
	ds->inv[DESIRED_FILE] = *inv;
	policy_set_init(pols);
	inventory_init(inv);
}

bool desired_policy_shadowed(const struct desired *ds, const struct mseg_policy *p)
{
	return policy_set_find(&ds->pols[DESIRED_FILE], p->ns, p->name) != NULL;
}

bool desired_endpoint_shadowed(const struct desired *ds, const struct mseg_endpoint *ep)
{
	return inventory_find(&ds->inv[DESIRED_FILE], ep->id) != NULL;
}

static bool change_drops_policy(const struct desired_change *ch, const struct mseg_policy *p)
{
	if (!ch)
		return false;
	if (ch->put_pol && strcmp(p->ns, ch->put_pol->ns) == 0 &&
	    strcmp(p->name, ch->put_pol->name) == 0)
		return true;
	return ch->del_ns && strcmp(p->ns, ch->del_ns) == 0 && strcmp(p->name, ch->del_name) == 0;
}

static bool change_drops_endpoint(const struct desired_change *ch, const struct mseg_endpoint *ep)
{
	if (!ch)
		return false;
	if (ch->put_ep && strcmp(ep->id, ch->put_ep->id) == 0)
		return true;
	return ch->del_id && strcmp(ep->id, ch->del_id) == 0;
}

/* The API's endpoints as the change leaves them, in id order (the file's
 * shadowing is applied by the caller): @out gets at most n + 1 pointers. */
static size_t api_endpoints_changed(const struct desired *ds, const struct desired_change *ch,
				    struct mseg_endpoint **out)
{
	const struct mseg_inventory *api = &ds->inv[DESIRED_API];
	struct mseg_endpoint *put = ch ? (struct mseg_endpoint *)ch->put_ep : NULL;
	size_t n = 0;

	for (size_t i = 0; i < api->n; i++) {
		struct mseg_endpoint *ep = api->eps[i];

		if (put && strcmp(put->id, ep->id) < 0) {
			out[n++] = put;
			put = NULL;
		}
		if (!change_drops_endpoint(ch, ep))
			out[n++] = ep;
	}
	if (put)
		out[n++] = put;
	return n;
}

int desired_view_build(const struct desired *ds, const struct desired_change *ch,
		       struct desired_view *ret)
{
	const struct mseg_policy_set *fp = &ds->pols[DESIRED_FILE], *ap = &ds->pols[DESIRED_API];
	const struct mseg_inventory *fi = &ds->inv[DESIRED_FILE];
	size_t np = fp->n + ap->n + 1, ne = fi->n + ds->inv[DESIRED_API].n + 1;
	struct mseg_endpoint **api_eps;
	size_t n_api, a = 0, b = 0;

	memset(ret, 0, sizeof(*ret));
	ret->pols.items = calloc(np, sizeof(*ret->pols.items));
	ret->inv.eps = calloc(ne, sizeof(*ret->inv.eps));
	api_eps = calloc(ne, sizeof(*api_eps));
	if (!ret->pols.items || !ret->inv.eps || !api_eps) {
		free(api_eps);
		desired_view_release(ret);
		return -ENOMEM;
	}
	ret->pols.cap = np;
	ret->inv.cap = ne;

	for (size_t i = 0; i < fp->n; i++)
		ret->pols.items[ret->pols.n++] = fp->items[i];
	for (size_t i = 0; i < ap->n; i++) {
		struct mseg_policy *p = ap->items[i];

		if (desired_policy_shadowed(ds, p))
			ret->shadowed_pols++;
		else if (!change_drops_policy(ch, p))
			ret->pols.items[ret->pols.n++] = p;
	}
	if (ch && ch->put_pol)
		ret->pols.items[ret->pols.n++] = (struct mseg_policy *)ch->put_pol;

	/* both sides are sorted by id: merge, the file winning a clash */
	n_api = api_endpoints_changed(ds, ch, api_eps);
	while (a < fi->n || b < n_api) {
		struct mseg_endpoint *fa = a < fi->n ? fi->eps[a] : NULL;
		struct mseg_endpoint *fb = b < n_api ? api_eps[b] : NULL;
		int c = !fa ? 1 : !fb ? -1 : strcmp(fa->id, fb->id);

		if (c == 0) {
			ret->shadowed_eps++;
			b++;
			continue;
		}
		ret->inv.eps[ret->inv.n++] = c < 0 ? fi->eps[a++] : api_eps[b++];
	}
	free(api_eps);
	return 0;
}

void desired_view_release(struct desired_view *v)
{
	free(v->pols.items);
	free(v->inv.eps);
	memset(v, 0, sizeof(*v));
}

int desired_compile(const struct desired *ds, const struct desired_change *ch,
		    const struct compile_opts *opts, struct mseg_plan **ret)
{
	struct desired_view v;
	int r = desired_view_build(ds, ch, &v);

	if (r < 0)
		return r;
	r = compile_plan((const struct mseg_policy *const *)v.pols.items, v.pols.n,
			 (const struct mseg_endpoint *const *)v.inv.eps, v.inv.n, opts, ret);
	desired_view_release(&v);
	return r;
}

struct mseg_policy *desired_policy_find(const struct desired *ds, enum desired_source src,
					const char *ns, const char *name)
{
	return policy_set_find(&ds->pols[src], ns, name);
}

struct mseg_endpoint *desired_endpoint_find(const struct desired *ds, enum desired_source src,
					    const char *id)
{
	return inventory_find(&ds->inv[src], id);
}

static int no_store(struct mseg_err *err)
{
	return err_setf(err, EROFS, "no state dir is open");
}

int desired_api_policy_put(struct desired *ds, struct mseg_policy *p, const char *doc,
			   size_t len, struct mseg_err *err)
{
	int r;

	if (!ds->store)
		return no_store(err);
	r = store_policy_put(ds->store, p->ns, p->name, doc, len, err);
	if (r < 0)
		return r;
	r = policy_set_put(&ds->pols[DESIRED_API], p);
	if (r < 0)
		return err_setf(err, -r, "policy '%s/%s' is stored but could not be taken into "
			       "memory (%s); a restart brings it", p->ns, p->name, strerror(-r));
	ds->generation++;
	return 0;
}

int desired_api_policy_delete(struct desired *ds, const char *ns, const char *name,
			      struct mseg_err *err)
{
	int r;

	if (!ds->store)
		return no_store(err);
	if (!policy_set_find(&ds->pols[DESIRED_API], ns, name))
		return err_setf(err, ENOENT, "no policy '%s/%s'", ns, name);
	r = store_policy_delete(ds->store, ns, name, err);
	if (r < 0 && r != -ENOENT)
		return r;
	policy_set_remove(&ds->pols[DESIRED_API], ns, name);
	ds->generation++;
	return 0;
}

int desired_api_endpoint_put(struct desired *ds, struct mseg_endpoint *ep, const char *doc,
			     size_t len, struct mseg_err *err)
{
	int r;

	if (!ds->store)
		return no_store(err);
	r = store_endpoint_put(ds->store, ep->id, doc, len, err);
	if (r < 0)
		return r;
	r = inventory_put(&ds->inv[DESIRED_API], ep);
	if (r < 0)
		return err_setf(err, -r, "endpoint '%s' is stored but could not be taken into "
			       "memory (%s); a restart brings it", ep->id, strerror(-r));
	ds->generation++;
	return 0;
}

int desired_api_endpoint_delete(struct desired *ds, const char *id, struct mseg_err *err)
{
	int r;

	if (!ds->store)
		return no_store(err);
	if (!inventory_find(&ds->inv[DESIRED_API], id))
		return err_setf(err, ENOENT, "no endpoint '%s'", id);
	r = store_endpoint_delete(ds->store, id, err);
	if (r < 0 && r != -ENOENT)
		return r;
	inventory_remove(&ds->inv[DESIRED_API], id);
	ds->generation++;
	return 0;
}

int desired_api_policy_doc(const struct desired *ds, const char *ns, const char *name,
			   char **ret_doc, size_t *ret_len)
{
	if (!ds->store)
		return -ENOENT;
	return store_policy_read(ds->store, ns, name, ret_doc, ret_len);
}

int desired_api_endpoint_doc(const struct desired *ds, const char *id, char **ret_doc,
			     size_t *ret_len)
{
	if (!ds->store)
		return -ENOENT;
	return store_endpoint_read(ds->store, id, ret_doc, ret_len);
}

const char *desired_state_dir(const struct desired *ds)
{
	return ds->store ? store_dir(ds->store) : NULL;
}
