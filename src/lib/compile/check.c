/* The decision behind POST /v1/check and `mseg check`: compile the plan and
 * look the packet up in the source's egress and the destination's ingress
 * entries, with their provenance. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/model/addr.h"
#include "mseg/compile/check.h"
#include "mseg/model/policy.h"
#include "mseg/model/selector.h"

const char *check_verdict_name(enum check_verdict v)
{
	switch (v) {
	case CHECK_ALLOWED:
		return "allowed";
	case CHECK_AUDITED:
		return "audited";
	case CHECK_DENIED:
		break;
	}
	return "denied";
}

static const struct mseg_endpoint *ep_by_id(const struct mseg_endpoint *const *eps, size_t n,
					    const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(eps[i]->id, id) == 0)
			return eps[i];
	return NULL;
}

static const struct mseg_endpoint *ep_by_addr(const struct mseg_endpoint *const *eps, size_t n,
					      const struct mseg_addr *a)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < eps[i]->n_ips; k++)
			if (addr_eq(&eps[i]->ips[k], a))
				return eps[i];
	return NULL;
}

/* An endpoint id or an address; @ret_ep is the endpoint owning it, if any. */
static int side_resolve(const struct mseg_endpoint *const *eps, size_t n, const char *what,
			const char *s, const struct mseg_endpoint **ret_ep,
			struct mseg_addr *ret_addr, bool *ret_has_addr, struct mseg_err *err)
{
	*ret_has_addr = false;
	*ret_ep = ep_by_id(eps, n, s);
	if (*ret_ep)
		return 0;
	if (addr_parse(s, ret_addr) < 0)
		return err_setf(err, EINVAL, "%s '%s': not an endpoint id or an address", what, s);
	*ret_has_addr = true;
	*ret_ep = ep_by_addr(eps, n, ret_addr);
	return 0;
}

static const struct mseg_addr *ep_addr_of(const struct mseg_endpoint *ep, int family)
{
	for (size_t i = 0; i < ep->n_ips; i++)
		if (ep->ips[i].family == family)
			return &ep->ips[i];
	return NULL;
}

static bool entry_admits(const struct mseg_entry *e, const struct mseg_addr *a, uint8_t proto,
			 uint16_t port)
{
	size_t len = a->family == AF_INET ? 4 : 16;

	if (e->lo.family != a->family)
		return false;
	if (memcmp(e->lo.bytes, a->bytes, len) > 0 || memcmp(a->bytes, e->hi.bytes, len) > 0)
		return false;
	if (e->proto == 0)
		return true;
	if (e->proto != proto)
		return false;
	if (proto_has_ports(proto))
		return port >= e->port_lo && port <= e->port_hi;
	return true;
}

bool check_dir_admits(const struct mseg_dir_plan *dp, const struct mseg_addr *peer, uint8_t proto,
		      uint16_t port, const struct mseg_entry **ret_entry)
{
	if (ret_entry)
		*ret_entry = NULL;
	if (!dp->isolated)
		return true;
	for (size_t i = 0; i < dp->n_entries; i++) {
		if (!entry_admits(&dp->entries[i], peer, proto, port))
			continue;
		if (ret_entry)
			*ret_entry = &dp->entries[i];
		return true;
	}
	return false;
}

struct check_index {
	const struct mseg_dir_plan *dp;
	struct mseg_entry *sorted;    /* by family, lo */
	struct mseg_addr *maxhi;      /* max hi of sorted[0..i] within i's family */
	size_t n;
};

/* family, then the address as a big-endian integer */
static int ix_addr_cmp(const struct mseg_addr *a, const struct mseg_addr *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(a->bytes, b->bytes, a->family == AF_INET ? 4 : 16);
}

static int ix_entry_cmp(const void *pa, const void *pb)
{
	const struct mseg_entry *a = pa, *b = pb;

	return ix_addr_cmp(&a->lo, &b->lo);
}

struct check_index *check_index_new(const struct mseg_dir_plan *dp)
{
	struct check_index *ix = calloc(1, sizeof(*ix));
	size_t n = dp->n_entries;

	if (!ix)
		return NULL;
	ix->dp = dp;
	ix->n = n;
	ix->sorted = malloc((n ? n : 1) * sizeof(*ix->sorted));
	ix->maxhi = malloc((n ? n : 1) * sizeof(*ix->maxhi));
	if (!ix->sorted || !ix->maxhi)
		return check_index_free(ix);
	if (n)
		memcpy(ix->sorted, dp->entries, n * sizeof(*ix->sorted));
	qsort(ix->sorted, n, sizeof(*ix->sorted), ix_entry_cmp);
	for (size_t i = 0; i < n; i++) {
		ix->maxhi[i] = ix->sorted[i].hi;
		if (i && ix->sorted[i - 1].lo.family == ix->sorted[i].lo.family &&
		    ix_addr_cmp(&ix->maxhi[i - 1], &ix->maxhi[i]) > 0)
			ix->maxhi[i] = ix->maxhi[i - 1];
	}
	return ix;
}

struct check_index *check_index_free(struct check_index *ix)
{
	if (!ix)
		return NULL;
	free(ix->sorted);
	free(ix->maxhi);
	free(ix);
	return NULL;
}

bool check_index_admits(const struct check_index *ix, const struct mseg_addr *peer, uint8_t proto,
			uint16_t port)
{
	size_t lo = 0, hi = ix->n;

	if (!ix->dp->isolated)
		return true;
	/* pos = how many entries start at or below @peer */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		struct mseg_addr l = ix->sorted[mid].lo;

		if (ix_addr_cmp(&l, peer) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t j = lo; j-- > 0;) {
		struct mseg_dir_plan one = { .isolated = true, .entries = &ix->sorted[j], .n_entries = 1 };

		if (ix->sorted[j].lo.family != peer->family || ix_addr_cmp(&ix->maxhi[j], peer) < 0)
			break;   /* no entry at or before j reaches @peer */
		if (check_dir_admits(&one, peer, proto, port, NULL))
			return true;
	}
	return false;
}

static void side_decide(struct check_side *side, const struct mseg_plan *plan, enum mseg_dir dir,
			const struct mseg_policy *const *pols, size_t n_pols,
			const struct mseg_addr *peer, uint8_t proto, uint16_t port)
{
	const struct mseg_dir_plan *dp = NULL;
	const struct mseg_entry *e;

	for (size_t i = 0; i < plan->n_eps; i++)
		if (plan->eps[i].ep == side->ep)
			dp = &plan->eps[i].dir[dir];
	side->allowed = true;
	if (!dp || !dp->isolated)
		return;
	side->isolated = true;
	side->mode = dp->mode;
	side->allowed = false;
	if (check_dir_admits(dp, peer, proto, port, &e)) {
		side->allowed = true;
		if (e->policy < n_pols) {
			side->policy = pols[e->policy];
			side->rule = e->rule < side->policy->n_rules ?
					     side->policy->rules[e->rule].index : e->rule;
		}
		return;
	}
	for (size_t p = 0; p < n_pols; p++) {
		const struct mseg_policy *pol = pols[p];

		if (!(pol->isolation & (1u << dir)) || !selector_policy_covers(pol, side->ep))
			continue;
		if (side->n_isolating < CHECK_MAX_ISOLATING)
			side->isolating[side->n_isolating] = pol;
		side->n_isolating++;
	}
	side->default_deny = side->n_isolating == 0;
}

int check_decide(const struct mseg_policy *const *pols, size_t n_pols,
		 const struct mseg_endpoint *const *eps, size_t n_eps,
		 const struct compile_opts *opts, const struct check_query *q,
		 struct check_result *ret, struct mseg_err *err)
{
	struct mseg_plan *plan = NULL;
	struct mseg_addr a_src, a_dst;
	bool has_src, has_dst;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = side_resolve(eps, n_eps, "from", q->from, &ret->src_ep, &a_src, &has_src, err);
	if (r < 0)
		return r;
	r = side_resolve(eps, n_eps, "to", q->to, &ret->dst_ep, &a_dst, &has_dst, err);
	if (r < 0)
		return r;
	/* pick the addresses: given ones first, else the endpoints' (IPv4 first) */
	if (!has_src || !has_dst) {
		static const int fams[] = { AF_INET, AF_INET6 };
		bool found = false;

		for (size_t f = 0; f < 2 && !found; f++) {
			const struct mseg_addr *s = has_src ? (a_src.family == fams[f] ? &a_src : NULL)
							    : ep_addr_of(ret->src_ep, fams[f]);
			const struct mseg_addr *d = has_dst ? (a_dst.family == fams[f] ? &a_dst : NULL)
							    : ep_addr_of(ret->dst_ep, fams[f]);

			if (s && d) {
				ret->src = *s;
				ret->dst = *d;
				found = true;
			}
		}
		if (!found)
			return err_setf(err, EINVAL, "'%s' and '%s' have no address family in common",
					q->from, q->to);
	} else {
		if (a_src.family != a_dst.family)
			return err_setf(err, EINVAL, "'%s' and '%s' are of different address families",
					q->from, q->to);
		ret->src = a_src;
		ret->dst = a_dst;
	}
	ret->egress.ep = ret->src_ep;
	ret->ingress.ep = ret->dst_ep;
	ret->egress.allowed = ret->ingress.allowed = true;
	if (ret->src_ep || ret->dst_ep) {
		r = compile_plan(pols, n_pols, eps, n_eps, opts, &plan);
		if (r < 0)
			return err_setf(err, -r, "compile: %s", strerror(-r));
		if (ret->src_ep)
			side_decide(&ret->egress, plan, MSEG_DIR_EGRESS, pols, n_pols, &ret->dst,
				    q->proto, q->port);
		if (ret->dst_ep)
			side_decide(&ret->ingress, plan, MSEG_DIR_INGRESS, pols, n_pols, &ret->src,
				    q->proto, q->port);
		plan_free(plan);
	}
	if (ret->egress.allowed && ret->ingress.allowed)
		ret->verdict = CHECK_ALLOWED;
	else if ((ret->egress.allowed || ret->egress.mode == MSEG_MODE_AUDIT) &&
		 (ret->ingress.allowed || ret->ingress.mode == MSEG_MODE_AUDIT))
		ret->verdict = CHECK_AUDITED;
	else
		ret->verdict = CHECK_DENIED;
	return 0;
}
