/* Unit tests of the element diff an update sends (kernel/ep_diff.h): the
 * fast diff (only what changed) against the full diff of both plans, on
 * random sequences of changes to a few dozen endpoints and a handful of
 * AllowLists and NetworkPolicies (labels, addresses, named ports, namespace
 * labels, policies added, changed and removed), each step a full
 * compile_plan(). A simulated kernel (the elements of every set of every
 * endpoint's direction) takes each step's fast diff the way nf_tables would
 * (a delete must find its element, an add must not) and must end with
 * exactly the new plan's element image (nl_parts_build(): the plan's
 * entries, the range entries of slotted signatures in the port-range slot
 * sets instead). No kernel involved. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mseg/model/addr.h"
#include "mseg/model/inventory.h"
#include "mseg/model/plan.h"
#include "mseg/model/policy.h"
#include "kernel/ep_diff.h"
#include "t.h"

#include "rand_world.h"

/* ---- the simulated kernel: sorted boxes per endpoint and direction ---- */

struct kset {
	struct mseg_entry *v;
	size_t n, cap;
};

static struct kset kernel[N_EPS][MSEG_DIR_COUNT][NL_SETS_PER_DIR];

static ssize_t kset_find(const struct kset *k, const struct mseg_entry *e, size_t *ret_pos)
{
	size_t lo = 0, hi = k->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = addr_entry_cmp(&k->v[mid], e);

		if (c == 0)
			return (ssize_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*ret_pos = lo;
	return -1;
}

/* Apply @dd as nf_tables would: false on a delete of something absent or
 * an add of something present (the kernel refuses the batch). */
static bool kset_apply(struct kset *ks, const struct ep_dir_diff *dd)
{
	size_t pos = 0;

	for (size_t s = 0; s < NL_SETS_PER_DIR; s++) {
		struct kset *k = &ks[s];

		for (size_t i = dd->del_off[s]; i < dd->del_off[s + 1]; i++) {
			ssize_t at = kset_find(k, dd->del[i], &pos);

			if (at < 0)
				return false;
			memmove(k->v + at, k->v + at + 1, (k->n - (size_t)at - 1) * sizeof(*k->v));
			k->n--;
		}
	}
	for (size_t s = 0; s < NL_SETS_PER_DIR; s++) {
		struct kset *k = &ks[s];

		for (size_t i = dd->add_off[s]; i < dd->add_off[s + 1]; i++) {
			if (kset_find(k, dd->add[i], &pos) >= 0)
				return false;
			if (k->n == k->cap) {
				k->cap = k->cap * 2 + 16;
				k->v = realloc(k->v, k->cap * sizeof(*k->v));
				if (!k->v)
					abort();
			}
			memmove(k->v + pos + 1, k->v + pos, (k->n - pos) * sizeof(*k->v));
			k->v[pos] = *dd->add[i];
			k->n++;
		}
	}
	return true;
}

/* Every set holds exactly its elements of @dp's image. */
static bool kset_equals(const struct kset *ks, const struct mseg_dir_plan *dp)
{
	struct nl_parts p;
	bool same = true;

	if (nl_parts_build(&p, dp) < 0)
		abort();
	nl_parts_sort(&p);
	for (size_t s = 0; s < NL_SETS_PER_DIR && same; s++) {
		size_t n = p.off[s + 1] - p.off[s];

		same = ks[s].n == n;
		for (size_t i = 0; i < n && same; i++)
			same = addr_entry_cmp(p.v[p.off[s] + i], &ks[s].v[i]) == 0;
	}
	nl_parts_release(&p);
	return same;
}

/* Same sets, same entries (by box, in the same order) in each. */
static bool diff_equal(const struct ep_dir_diff *a, const struct ep_dir_diff *b)
{
	for (size_t i = 0; i <= NL_SETS_PER_DIR; i++)
		if (a->del_off[i] != b->del_off[i] || a->add_off[i] != b->add_off[i])
			return false;
	for (size_t i = 0; i < a->del_off[NL_SETS_PER_DIR]; i++)
		if (addr_entry_cmp(a->del[i], b->del[i]) != 0)
			return false;
	for (size_t i = 0; i < a->add_off[NL_SETS_PER_DIR]; i++)
		if (addr_entry_cmp(a->add[i], b->add[i]) != 0)
			return false;
	return true;
}

static const struct mseg_dir_plan no_dir = { .isolated = false };

/* One random run: @steps changes from a random start. */
static void run_sequence(uint64_t seed, int steps, size_t *ret_changed, size_t *ret_elems)
{
	struct compiled cur = { 0 }, next;
	struct world w;
	int failures = 0;

	rng_state = seed;
	world_init(&w);
	memset(kernel, 0, sizeof(kernel));
	T_CHECK(world_compile(&w, &cur) == 0, "seed %llu: the start does not compile",
		(unsigned long long)seed);
	for (int step = 0; step <= steps && failures == 0; step++) {
		const char *what = step ? world_change(&w) : "start";

		if (world_compile(&w, &next) < 0) {
			T_CHECK(0, "seed %llu step %d (%s): does not compile",
				(unsigned long long)seed, step, what);
			break;
		}
		for (int i = 0; i < N_EPS && failures == 0; i++) {
			char id[16];
			const struct mseg_ep_plan *o, *n;

			snprintf(id, sizeof(id), "ep%02d", i);
			o = step ? plan_find(cur.plan, id) : NULL;
			n = plan_find(next.plan, id);
			for (int d = 0; d < MSEG_DIR_COUNT && failures == 0; d++) {
				const struct mseg_dir_plan *od = o ? &o->dir[d] : &no_dir;
				const struct mseg_dir_plan *nd = n ? &n->dir[d] : &no_dir;
				struct ep_dir_diff fast, full;
				int r1 = ep_dir_diff_compute(&fast, od, nd, EP_DIFF_FAST);
				int r2 = ep_dir_diff_compute(&full, od, nd, EP_DIFF_FULL);

				T_CHECK(r1 == 0 && r2 == 0, "diff failed: %d %d", r1, r2);
				if (r1 == 0 && r2 == 0) {
					if (!diff_equal(&fast, &full)) {
						T_CHECK(0, "seed %llu step %d (%s): %s %s: fast diff "
							"(-%zu +%zu) != full diff (-%zu +%zu)",
							(unsigned long long)seed, step, what, id,
							d ? "egress" : "ingress",
							fast.del_off[NL_SETS_PER_DIR],
							fast.add_off[NL_SETS_PER_DIR],
							full.del_off[NL_SETS_PER_DIR],
							full.add_off[NL_SETS_PER_DIR]);
						failures++;
					}
					if (!kset_apply(kernel[i][d], &fast) ||
					    !kset_equals(kernel[i][d], nd)) {
						T_CHECK(0, "seed %llu step %d (%s): %s %s: the kernel "
							"does not end with the new plan's entries",
							(unsigned long long)seed, step, what, id,
							d ? "egress" : "ingress");
						failures++;
					}
					if (step && od->n_entries != nd->n_entries)
						(*ret_changed)++;
					*ret_elems += nd->n_entries;
				}
				ep_dir_diff_release(&fast);
				ep_dir_diff_release(&full);
			}
		}
		compiled_release(&cur);
		cur = next;
	}
	compiled_release(&cur);
	for (int i = 0; i < N_EPS; i++)
		for (int d = 0; d < MSEG_DIR_COUNT; d++)
			for (size_t s = 0; s < NL_SETS_PER_DIR; s++)
				free(kernel[i][d][s].v);
	memset(kernel, 0, sizeof(kernel));
}

/* Random sequences of changes: the fast diff is the full diff, and the
 * simulated kernel always ends with the new plan's entries. */
static void random_changes_fast_equals_full(void)
{
	size_t changed = 0, elems = 0;

	for (uint64_t seed = 1; seed <= 12; seed++)
		run_sequence(seed * 0x9E3779B97F4A7C15ull, 60, &changed, &elems);
	/* the sequences really moved entries around */
	T_CHECK(changed > 200, "only %zu directions changed size", changed);
	T_CHECK(elems > 10000, "only %zu entries seen", elems);
}

/* ---- hand-made cases ---- */

static struct mseg_entry ent4(uint32_t a, uint8_t proto, uint16_t port)
{
	struct mseg_entry e;

	memset(&e, 0, sizeof(e));
	e.lo.family = AF_INET;
	e.lo.bytes[0] = (uint8_t)(a >> 24);
	e.lo.bytes[1] = (uint8_t)(a >> 16);
	e.lo.bytes[2] = (uint8_t)(a >> 8);
	e.lo.bytes[3] = (uint8_t)a;
	e.hi = e.lo;
	e.proto = proto;
	e.port_lo = e.port_hi = port;
	return e;
}

static size_t n_del(const struct ep_dir_diff *dd)
{
	return dd->del_off[NL_SETS_PER_DIR];
}

static size_t n_add(const struct ep_dir_diff *dd)
{
	return dd->add_off[NL_SETS_PER_DIR];
}

/* One entry in and one out in the middle of 1,000; the same array; new
 * provenance only; bytes a box does not use that differ. */
static void fast_diff_cases(void)
{
	enum { N = 1000 };
	struct mseg_entry *a = calloc(N, sizeof(*a)), *b = calloc(N, sizeof(*b));
	struct mseg_dir_plan da = { .isolated = true, .entries = a, .n_entries = N };
	struct mseg_dir_plan db = { .isolated = true, .entries = b, .n_entries = N };
	struct ep_dir_diff dd, full;

	/* b: a without 10.0.1.244 (i = 250), with 10.0.3.31 (odd: new) */
	for (uint32_t i = 0, k = 0; i < N; i++) {
		a[i] = ent4(0x0a000000 + 2 * i, IPPROTO_TCP, 443);
		if (i == 400)
			b[k++] = ent4(0x0a000000 + 2 * 400 - 1, IPPROTO_TCP, 443);
		if (i != 250)
			b[k++] = a[i];
	}
	T_CHECK(ep_dir_diff_compute(&dd, &da, &db, EP_DIFF_FAST) == 0, "fast");
	T_CHECK(ep_dir_diff_compute(&full, &da, &db, EP_DIFF_FULL) == 0, "full");
	T_CHECK(diff_equal(&dd, &full), "fast -%zu +%zu, full -%zu +%zu", n_del(&dd), n_add(&dd),
		n_del(&full), n_add(&full));
	T_CHECK(n_del(&dd) == 1 && n_add(&dd) == 1, "-%zu +%zu", n_del(&dd), n_add(&dd));
	ep_dir_diff_release(&dd);
	ep_dir_diff_release(&full);

	/* the array the kernel holds: nothing, without a look */
	T_CHECK(ep_dir_diff_compute(&dd, &da, &da, EP_DIFF_FAST) == 0 && n_del(&dd) == 0 &&
			n_add(&dd) == 0 && !dd.del && !dd.add,
		"same array");
	ep_dir_diff_release(&dd);

	/* new provenance and unused address bytes: the same boxes */
	memcpy(b, a, N * sizeof(*a));
	for (size_t i = 0; i < N; i += 7) {
		b[i].policy = 3;
		b[i].rule = 9;
		b[i].lo.bytes[9] = 0x55;
	}
	T_CHECK(ep_dir_diff_compute(&dd, &da, &db, EP_DIFF_FAST) == 0 && n_del(&dd) == 0 &&
			n_add(&dd) == 0,
		"provenance only: -%zu +%zu", n_del(&dd), n_add(&dd));
	ep_dir_diff_release(&dd);

	/* out of order (not from the compiler): the full diff decides */
	memcpy(b, a, N * sizeof(*a));
	b[500] = a[10];
	b[10] = a[500];
	b[600] = ent4(0x0b000000, IPPROTO_UDP, 53);
	T_CHECK(ep_dir_diff_compute(&dd, &da, &db, EP_DIFF_FAST) == 0, "fast, unsorted");
	T_CHECK(ep_dir_diff_compute(&full, &da, &db, EP_DIFF_FULL) == 0, "full, unsorted");
	T_CHECK(diff_equal(&dd, &full) && n_del(&dd) == 1 && n_add(&dd) == 1,
		"unsorted: fast -%zu +%zu, full -%zu +%zu", n_del(&dd), n_add(&dd), n_del(&full),
		n_add(&full));
	/* the add goes to the udp entry's set, not to the tcp one */
	{
		int k = nl_set_index(AF_INET, SHAPE_PORT);

		T_CHECK(k >= 0 && dd.add_off[k + 1] - dd.add_off[k] == 1 &&
				dd.add[dd.add_off[k]]->proto == IPPROTO_UDP,
			"add in set %d", k);
	}
	ep_dir_diff_release(&dd);
	ep_dir_diff_release(&full);

	/* everything from nothing, and back */
	T_CHECK(ep_dir_diff_compute(&dd, &no_dir, &da, EP_DIFF_FAST) == 0 && n_add(&dd) == N &&
			n_del(&dd) == 0,
		"from empty");
	ep_dir_diff_release(&dd);
	T_CHECK(ep_dir_diff_compute(&dd, &da, &no_dir, EP_DIFF_FAST) == 0 && n_del(&dd) == N &&
			n_add(&dd) == 0,
		"to empty");
	ep_dir_diff_release(&dd);
	free(a);
	free(b);
}

static struct mseg_entry rng4(uint32_t a, uint16_t lo, uint16_t hi)
{
	struct mseg_entry e = ent4(a, IPPROTO_TCP, lo);

	e.port_hi = hi;
	return e;
}

/* Range entries in port-range slots: the fast diff widens a span to whole
 * (address, protocol) groups (a group whose other entry sits in the common
 * head still leaves its slot), keeps the slot choice when it holds, and
 * follows it when it changes. */
static void fast_diff_slots(void)
{
	enum { N = 400 };
	struct mseg_entry *a = calloc(N + 4, sizeof(*a)), *b = calloc(N + 4, sizeof(*b));
	struct mseg_dir_plan da = { .isolated = true, .entries = a };
	struct mseg_dir_plan db = { .isolated = true, .entries = b };
	int r0 = nl_slot_set_index(AF_INET, 0, false), r1 = nl_slot_set_index(AF_INET, 1, false);
	int iv = nl_set_index(AF_INET, SHAPE_PORT_IV);
	struct ep_dir_diff dd, full;
	size_t n = 0;

	/* every 4th address on every port (slot 0), the others on 8000-8100
	 * (slot 1); 10.0.0.101 in two entries, 8000-8049 and 8050-8100 */
	for (uint32_t i = 0; i < N; i++) {
		if (i == 101) {
			a[n++] = rng4(0x0a000000 + i, 8000, 8049);
			a[n++] = rng4(0x0a000000 + i, 8050, 8100);
		} else {
			a[n++] = i % 4 ? rng4(0x0a000000 + i, 8000, 8100) : rng4(0x0a000000 + i, 0, 65535);
		}
	}
	da.n_entries = db.n_entries = n;
	memcpy(b, a, n * sizeof(*a));
	/* 10.0.0.101's second entry grows: its signature 8000-8200 sorts third,
	 * the choice holds, and both its entries go to in4_port_iv */
	b[102].port_hi = 8200;
	T_CHECK(ep_dir_diff_compute(&dd, &da, &db, EP_DIFF_FAST) == 0, "fast");
	T_CHECK(ep_dir_diff_compute(&full, &da, &db, EP_DIFF_FULL) == 0, "full");
	T_CHECK(diff_equal(&dd, &full), "group: fast -%zu +%zu, full -%zu +%zu", n_del(&dd),
		n_add(&dd), n_del(&full), n_add(&full));
	T_CHECK(dd.del_off[r1 + 1] - dd.del_off[r1] == 1 && dd.add_off[iv + 1] - dd.add_off[iv] == 2 &&
			n_del(&dd) == 1 && n_add(&dd) == 2,
		"10.0.0.101 from in4_range1 to in4_port_iv: -%zu +%zu", n_del(&dd), n_add(&dd));
	ep_dir_diff_release(&dd);
	ep_dir_diff_release(&full);

	/* 10.0.0.200 (every port) goes: one element of in4_range0 */
	memcpy(b, a, n * sizeof(*a));
	memmove(b + 201, b + 202, (n - 202) * sizeof(*b));
	db.n_entries = n - 1;
	T_CHECK(ep_dir_diff_compute(&dd, &da, &db, EP_DIFF_FAST) == 0, "fast");
	T_CHECK(ep_dir_diff_compute(&full, &da, &db, EP_DIFF_FULL) == 0, "full");
	T_CHECK(diff_equal(&dd, &full) && n_del(&dd) == 1 && n_add(&dd) == 0 &&
			dd.del_off[r0 + 1] - dd.del_off[r0] == 1,
		"slot 0 member gone: fast -%zu +%zu, full -%zu +%zu", n_del(&dd), n_add(&dd),
		n_del(&full), n_add(&full));
	ep_dir_diff_release(&dd);
	ep_dir_diff_release(&full);

	/* all on every port go but 10.0.0.0: the choice holds */
	db.n_entries = 0;
	for (size_t i = 0; i < n; i++)
		if (a[i].port_hi != 65535 || i == 0)
			b[db.n_entries++] = a[i];
	T_CHECK(ep_dir_diff_compute(&dd, &da, &db, EP_DIFF_FAST) == 0, "fast");
	T_CHECK(ep_dir_diff_compute(&full, &da, &db, EP_DIFF_FULL) == 0, "full");
	T_CHECK(diff_equal(&dd, &full) && n_del(&dd) == N / 4 - 1 && n_add(&dd) == 0,
		"one left on every port: fast -%zu +%zu, full -%zu +%zu", n_del(&dd), n_add(&dd),
		n_del(&full), n_add(&full));
	ep_dir_diff_release(&dd);
	ep_dir_diff_release(&full);

	/* then 10.0.0.0 goes too: 8000-8100 moves up to slot 0, its members
	 * from in4_range1 to in4_range0, and the port sets follow */
	memcpy(a, b, db.n_entries * sizeof(*a));
	da.n_entries = db.n_entries;
	memmove(b, b + 1, (db.n_entries - 1) * sizeof(*b));
	db.n_entries--;
	T_CHECK(ep_dir_diff_compute(&dd, &da, &db, EP_DIFF_FAST) == 0, "fast");
	T_CHECK(ep_dir_diff_compute(&full, &da, &db, EP_DIFF_FULL) == 0, "full");
	T_CHECK(diff_equal(&dd, &full), "choice changes: fast -%zu +%zu, full -%zu +%zu",
		n_del(&dd), n_add(&dd), n_del(&full), n_add(&full));
	/* the members: every address but 10.0.0.0 (10.0.0.101 once) */
	T_CHECK(dd.add_off[r0 + 1] - dd.add_off[r0] == db.n_entries - 1 &&
			dd.del_off[r1 + 1] - dd.del_off[r1] == db.n_entries - 1 &&
			dd.del_off[r0 + 1] - dd.del_off[r0] == 1,
		"slot 1's members move to slot 0: +%zu -%zu",
		dd.add_off[r0 + 1] - dd.add_off[r0], dd.del_off[r1 + 1] - dd.del_off[r1]);
	ep_dir_diff_release(&dd);
	ep_dir_diff_release(&full);
	free(a);
	free(b);
}

int main(void)
{
	T_RUN(fast_diff_cases);
	T_RUN(fast_diff_slots);
	T_RUN(random_changes_fast_equals_full);
	return t_exit();
}
