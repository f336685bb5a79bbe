/* selector: label selectors, namespace scopes and peer selection
 * (mseg/model/selector.h). Pure. */
#include <string.h>

#include "mseg/model/selector.h"
#include "mseg/util/hash.h"

const char *selector_ns_name(const char *ns)
{
	return ns ? ns : "default";
}

static const struct mseg_label *label_find(const struct mseg_label *labels, size_t n,
					   const char *key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(key, labels[mid].key);

		if (c == 0)
			return &labels[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static bool req_has_value(const struct mseg_sel_req *req, const char *value)
{
	size_t i;

	for (i = 0; i < req->n_values; i++)
		if (!strcmp(req->values[i], value))
			return true;
	return false;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

bool selector_equal(const struct mseg_selector *a, const struct mseg_selector *b)
{
	if (a->n_reqs != b->n_reqs)
		return false;
	for (size_t i = 0; i < a->n_reqs; i++) {
		const struct mseg_sel_req *p = &a->reqs[i], *q = &b->reqs[i];

		if (p->op != q->op || p->n_values != q->n_values || !str_eq(p->key, q->key))
			return false;
		for (size_t k = 0; k < p->n_values; k++)
			if (!str_eq(p->values[k], q->values[k]))
				return false;
	}
	return true;
}

uint64_t selector_hash(uint64_t h, const struct mseg_selector *s)
{
	h = hash_fnv(h, &s->n_reqs, sizeof(s->n_reqs));
	for (size_t i = 0; i < s->n_reqs; i++) {
		const struct mseg_sel_req *q = &s->reqs[i];

		h = hash_fnv_str(h, q->key);
		h = hash_fnv(h, &q->op, sizeof(q->op));
		h = hash_fnv(h, &q->n_values, sizeof(q->n_values));
		for (size_t k = 0; k < q->n_values; k++)
			h = hash_fnv_str(h, q->values[k]);
	}
	return h;
}

bool selector_matches(const struct mseg_selector *sel, const struct mseg_label *labels,
		      size_t n_labels)
{
	size_t i;

	if (!sel)
		return true;
	for (i = 0; i < sel->n_reqs; i++) {
		const struct mseg_sel_req *req = &sel->reqs[i];
		const struct mseg_label *l = label_find(labels, n_labels, req->key);

		switch (req->op) {
		case MSEG_SEL_IN:
			if (!l || !req_has_value(req, l->value))
				return false;
			break;
		case MSEG_SEL_NOT_IN:
			if (l && req_has_value(req, l->value))
				return false;
			break;
		case MSEG_SEL_EXISTS:
			if (!l)
				return false;
			break;
		case MSEG_SEL_DOES_NOT_EXIST:
			if (l)
				return false;
			break;
		}
	}
	return true;
}

bool selector_ns_matches(const struct mseg_peer *peer, const struct mseg_endpoint *ep)
{
	switch (peer->ns_scope) {
	case MSEG_NS_NAMED:
		return strcmp(selector_ns_name(peer->ns), selector_ns_name(ep->ns)) == 0;
	case MSEG_NS_SELECTOR:
		return selector_matches(&peer->ns_sel, ep->ns_labels, ep->n_ns_labels);
	case MSEG_NS_ANY:
		return true;
	}
	return false;
}

bool selector_peer_selects(const struct mseg_peer *peer, const struct mseg_endpoint *ep)
{
	return peer->kind == MSEG_PEER_ENDPOINTS && selector_ns_matches(peer, ep) &&
	       selector_matches(&peer->ep_sel, ep->labels, ep->n_labels);
}

bool selector_policy_covers(const struct mseg_policy *pol, const struct mseg_endpoint *ep)
{
	for (size_t i = 0; i < pol->n_subjects; i++)
		if (selector_peer_selects(&pol->subjects[i], ep))
			return true;
	return false;
}
