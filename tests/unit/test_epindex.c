/* The compiler's endpoint index (src/lib/compile/epindex.c) against a
 * plain scan: on random inventories (namespaces declared and undeclared,
 * endpoints of one undeclared namespace carrying different namespace
 * labels, or equal ones at different addresses, ids whose order is not
 * the namespaces' order, endpoints without a namespace), the order by
 * namespace must be that of a sort of every endpoint by (namespace,
 * index), and every selection of random peers (a named namespace, a
 * namespace selector, every namespace; with and without a pod selector)
 * exactly the ascending list of endpoints selector_peer_selects() picks. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/model/inventory.h"
#include "mseg/model/selector.h"
#include "compile/epindex.h"
#include "plan_cmp.h"
#include "t.h"
#include "trand.h"
#include "tbuf.h"

/* strcmp order differs from the order of "k8s.NS." ids: "a-b" < "a" is
 * false by strcmp ("a" is a prefix) but "k8s.a-b." < "k8s.a." */
static const char *const ns_names[] = { "a", "a-b", "ab", "b", "b0", "default", "z", "m-1" };
#define N_NS (sizeof(ns_names) / sizeof(ns_names[0]))
static const char *const teams[] = { "t0", "t1", "t2" };

/* A random inventory of about @n endpoints in ns_names, some declared. */
static void random_inventory(struct buf *b, size_t n)
{
	bool declared[N_NS];

	bput(b, "namespaces: [\n");
	for (size_t i = 0; i < N_NS; i++) {
		declared[i] = rnd(2);
		if (!declared[i])
			continue;
		bput(b, "  {name: %s, labels: {team: %s%s}},\n", ns_names[i], teams[rnd(3)],
		     rnd(2) ? ", env: prod" : "");
	}
	bput(b, "]\n");
	bput(b, "endpoints:\n");
	for (size_t k = 0; k < n; k++) {
		size_t ns = rnd(N_NS);

		/* mostly "k8s.NS.NAME", so that runs of a namespace form; some
		 * ids out of any namespace order */
		if (rnd(4))
			bput(b, "  - {id: k8s.%s.p-%zu", ns_names[ns], k);
		else
			bput(b, "  - {id: c-%04x-%zu", rnd(0x10000), k);
		if (!(ns_names[ns][0] == 'd' && rnd(2)))
			bput(b, ", namespace: %s", ns_names[ns]);
		bput(b, ", labels: {app: a%u}", rnd(3));
		/* an undeclared namespace: the endpoint may say its labels,
		 * not always the same as its neighbours' */
		if (!declared[ns] && rnd(3)) {
			uint32_t v = rnd(4);

			if (v == 3)
				bput(b, ", ns_labels: {}");
			else
				bput(b, ", ns_labels: {team: %s%s}", teams[v], rnd(4) ? "" : ", env: prod");
		}
		bput(b, ", ips: [10.1.%zu.%zu]}\n", k / 200, k % 200 + 1);
	}
}

static const char *team_values[][2] = { { "t0", "t1" }, { "t1", NULL }, { "t2", NULL } };

static void random_selector(struct mseg_selector *s, struct mseg_sel_req *reqs, bool for_ns)
{
	size_t n = rnd(3);

	s->reqs = reqs;
	s->n_reqs = n;
	for (size_t i = 0; i < n; i++) {
		struct mseg_sel_req *q = &reqs[i];
		uint32_t t = rnd(3);

		q->op = (enum mseg_sel_op)rnd(4);
		if (!for_ns) {
			static const char *apps[][1] = { { "a0" }, { "a1" }, { "a2" } };

			q->key = "app";
			q->values = apps[t];
			q->n_values = 1;
			continue;
		}
		switch (rnd(3)) {
		case 0:
			q->key = "team";
			q->values = team_values[t];
			q->n_values = t == 0 ? 2 : 1;
			break;
		case 1: {
			static const char *prod[] = { "prod" };

			q->key = "env";
			q->values = prod;
			q->n_values = 1;
			break;
		}
		default:
			q->key = "kubernetes.io/metadata.name";
			q->values = (const char **)&ns_names[rnd(N_NS)];
			q->n_values = 1;
			break;
		}
		if (q->op == MSEG_SEL_EXISTS || q->op == MSEG_SEL_DOES_NOT_EXIST)
			q->n_values = 0;
	}
}

static const struct ep_index *ref_ix;

static int cmp_ref_order(const void *pa, const void *pb)
{
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
	int r = strcmp(selector_ns_name(ref_ix->eps[a]->ns), selector_ns_name(ref_ix->eps[b]->ns));

	return r ? r : (a > b) - (a < b);
}

static void test_index_against_scan(void)
{
	size_t selections = 0, by_ns_sel = 0, nonempty = 0, split_runs = 0, merged_runs = 0;

	for (int round = 0; round < 60; round++) {
		struct mseg_inventory inv;
		struct mseg_err err;
		struct buf b = { 0 };
		struct ep_index ix;
		uint32_t *order, *buf = NULL, *want;
		struct mseg_ep_brief *brief;
		size_t cap = 0, n_eps = 1 + rnd(round < 10 ? 8 : 300);
		int r;

		inventory_init(&inv);
		random_inventory(&b, n_eps);
		r = inventory_parse_buffer(&inv, "inv.yaml", b.p, b.len, &err);
		T_CHECK(r == 0, "inventory: %s:%u:%u: %s\n%s", err.file, err.line, err.col, err.msg,
			b.p);
		if (r < 0) {
			free(b.p);
			return;
		}
		/* every other round through a brief (a desired view's): the same index */
		brief = round % 2 ? brief_of(&inv) : NULL;
		r = ep_index_init(&ix, (const struct mseg_endpoint *const *)inv.eps, inv.n, brief);
		T_CHECK(r == 0, "ep_index_init: %d", r);

		/* the order: every endpoint sorted by (namespace, index) */
		order = calloc(inv.n + 1, sizeof(*order));
		want = calloc(inv.n + 1, sizeof(*want));
		for (size_t e = 0; e < inv.n; e++)
			order[e] = (uint32_t)e;
		ref_ix = &ix;
		qsort(order, inv.n, sizeof(*order), cmp_ref_order);
		T_CHECK(memcmp(order, ix.ns_order, inv.n * sizeof(*order)) == 0,
			"round %d: ns_order differs from a sort of the %zu endpoints", round, inv.n);

		for (int q = 0; q < 200; q++) {
			struct mseg_sel_req ns_reqs[2], ep_reqs[2];
			struct mseg_peer p;
			size_t n = 0, n_want = 0;

			memset(&p, 0, sizeof(p));
			p.kind = MSEG_PEER_ENDPOINTS;
			p.ns_scope = (enum mseg_ns_scope)rnd(3);
			if (p.ns_scope == MSEG_NS_NAMED)
				p.ns = rnd(8) ? ns_names[rnd(N_NS)] : rnd(2) ? NULL : "nowhere";
			random_selector(&p.ns_sel, ns_reqs, true);
			random_selector(&p.ep_sel, ep_reqs, false);
			for (size_t e = 0; e < inv.n; e++)
				if (selector_peer_selects(&p, inv.eps[e]))
					want[n_want++] = (uint32_t)e;
			r = ep_index_select(&ix, &p, &buf, &cap, &n);
			T_CHECK(r == 0, "ep_index_select: %d", r);
			T_CHECK(n == n_want && (!n || memcmp(buf, want, n * sizeof(*buf)) == 0),
				"round %d, query %d (scope %d, %zu ns reqs, %zu pod reqs): "
				"%zu selected, the scan selects %zu",
				round, q, (int)p.ns_scope, p.ns_sel.n_reqs, p.ep_sel.n_reqs, n, n_want);
			selections++;
			by_ns_sel += p.ns_scope == MSEG_NS_SELECTOR;
			nonempty += n_want > 0;
		}
		/* what the labels runs were made of (the test must see both) */
		for (size_t i = 0; i < ix.n_runs; i++) {
			const struct ep_labels_run *run = &ix.runs[i];

			if (i && ix.runs[i - 1].ep->ns == run->ep->ns)
				split_runs++;
			for (uint32_t k = run->lo + 1; k < run->hi; k++)
				merged_runs += inv.eps[ix.ns_order[k]]->ns_labels != run->ep->ns_labels;
		}
		free(order);
		free(want);
		free(buf);
		ep_index_release(&ix);
		free(brief);
		inventory_release(&inv);
		free(b.p);
	}
	/* the random inventories reached the cases that matter */
	T_CHECK(by_ns_sel > 1000 && nonempty > selections / 3, "%zu selections, %zu by namespace "
		"selector, %zu not empty", selections, by_ns_sel, nonempty);
	T_CHECK(split_runs > 0, "no namespace had endpoints with different labels");
	T_CHECK(merged_runs > 0, "no run joined equal labels at different addresses");
}

/* An address peer selects nothing; an empty inventory has nothing. */
static void test_edges(void)
{
	struct ep_index ix;
	struct mseg_peer p = { .kind = MSEG_PEER_ENDPOINTS, .ns_scope = MSEG_NS_ANY };
	uint32_t *buf = NULL;
	size_t cap = 0, n = 1;

	T_CHECK(ep_index_init(&ix, NULL, 0, NULL) == 0, "empty");
	T_CHECK(ix.n_nss == 0, "%zu namespaces", ix.n_nss);
	T_CHECK(ep_index_select(&ix, &p, &buf, &cap, &n) == 0 && n == 0, "%zu", n);
	p.ns_scope = MSEG_NS_SELECTOR;
	T_CHECK(ep_index_select(&ix, &p, &buf, &cap, &n) == 0 && n == 0, "%zu", n);
	p.ns_scope = MSEG_NS_NAMED;
	T_CHECK(ep_index_select(&ix, &p, &buf, &cap, &n) == 0 && n == 0, "%zu", n);
	p.kind = MSEG_PEER_ADDRS;
	n = 1;
	T_CHECK(ep_index_select(&ix, &p, &buf, &cap, &n) == 0 && n == 0, "%zu", n);
	free(buf);
	ep_index_release(&ix);
}

int main(void)
{
	T_RUN(test_index_against_scan);
	T_RUN(test_edges);
	return t_exit();
}
