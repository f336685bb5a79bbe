/* Unit tests of the port-range slots (kernel/slots.h) and of the element
 * image that places them (nl_parts_build()): on random range entries of a
 * direction, what the slots and *_port_iv admit together is exactly what
 * the entries admit (as sets of address, protocol, port points), no point
 * is in two places, at most K slots are used, the result does not depend
 * on anything but the entries, and an entry whose signature sorts after
 * the chosen ones moves nothing. No kernel involved. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mseg/compile/render_text.h"
#include "mseg/model/addr.h"
#include "mseg/model/plan.h"
#include "kernel/render_nl.h"
#include "kernel/slots.h"
#include "t.h"

/* The universe: 10.0.0.0-15 x {tcp, udp} x ports 0-63. */
#define N_ADDR 16
#define N_PORT 64
#define N_POINTS (N_ADDR * 2 * N_PORT)

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

static size_t point(unsigned a, uint8_t proto, unsigned port)
{
	return ((size_t)a * 2 + (proto == IPPROTO_UDP)) * N_PORT + port;
}

static struct mseg_entry box(unsigned alo, unsigned ahi, uint8_t proto, unsigned plo,
			     unsigned phi)
{
	struct mseg_entry e;

	memset(&e, 0, sizeof(e));
	e.lo.family = e.hi.family = AF_INET;
	e.lo.bytes[0] = e.hi.bytes[0] = 10;
	e.lo.bytes[3] = (uint8_t)alo;
	e.hi.bytes[3] = (uint8_t)ahi;
	e.proto = proto;
	e.port_lo = (uint16_t)plo;
	e.port_hi = (uint16_t)phi;
	return e;
}

/* Mark the points of @e in @bits; false when one was marked already. */
static bool mark(uint8_t *bits, const struct mseg_entry *e)
{
	bool fresh = true;

	for (unsigned a = e->lo.bytes[3]; a <= e->hi.bytes[3]; a++)
		for (unsigned p = e->port_lo; p <= e->port_hi; p++) {
			size_t k = point(a, e->proto, p);

			fresh &= !bits[k];
			bits[k] = 1;
		}
	return fresh;
}

static int entry_cmp(const void *a, const void *b)
{
	return addr_entry_cmp(a, b);
}

/* Random pairwise disjoint range boxes (SHAPE_PORT_IV: a port range, or an
 * address range), sorted: what compile_plan() hands over. Few port
 * patterns, so that signatures repeat across addresses. */
static size_t random_entries(struct mseg_entry *v, size_t max)
{
	static const unsigned pat[][2] = { { 8, 20 }, { 0, 63 }, { 30, 31 }, { 40, 50 },
					   { 21, 22 }, { 5, 7 } };
	uint8_t used[N_POINTS] = { 0 };
	size_t n = 0, tries = max * 4;

	while (n < max && tries--) {
		struct mseg_entry e;
		uint8_t proto = rnd(3) ? IPPROTO_TCP : IPPROTO_UDP;
		uint8_t probe[N_POINTS];

		if (rnd(5) == 0) {
			/* an address range: stays in *_port_iv */
			unsigned lo = rnd(N_ADDR - 1), hi = lo + 1 + rnd(N_ADDR - 1 - lo);
			unsigned plo = rnd(N_PORT);

			e = box(lo, hi, proto, plo, plo + rnd(N_PORT - plo));
		} else {
			const unsigned *pp = pat[rnd(sizeof(pat) / sizeof(pat[0]))];
			unsigned a = rnd(N_ADDR);

			e = box(a, a, proto, pp[0], pp[1]);
			if (rnd(4) == 0)   /* an odd one */
				e.port_hi = (uint16_t)(e.port_lo + rnd(N_PORT - e.port_lo));
		}
		if (e.port_lo == e.port_hi && e.lo.bytes[3] == e.hi.bytes[3])
			continue;   /* a single point is an exact entry, not a range */
		memcpy(probe, used, sizeof(probe));
		if (!mark(probe, &e))
			continue;
		memcpy(used, probe, sizeof(used));
		v[n++] = e;
	}
	qsort(v, n, sizeof(*v), entry_cmp);
	return n;
}

/* The assignment on random entries, k = 0..4. */
static void test_assign_random(void)
{
	enum { MAX = 40 };
	struct mseg_entry v[MAX];
	const struct mseg_entry *pv[MAX];
	int failures = 0;

	for (int run = 0; run < 2000 && failures < 5; run++) {
		size_t n, k = (size_t)(run % 5);
		struct slot_assign a, b;
		uint8_t want[N_POINTS] = { 0 }, got[N_POINTS] = { 0 };
		bool twice = false;

		rng_state = 0x9e3779b97f4a7c15ull * (uint64_t)(run + 1);
		n = random_entries(v, 1 + rnd(MAX));
		for (size_t i = 0; i < n; i++) {
			pv[i] = &v[i];
			mark(want, &v[i]);
		}
		if (slots_assign(pv, n, k, &a) < 0 || slots_assign(pv, n, k, &b) < 0) {
			T_CHECK(0, "run %d: assign failed", run);
			failures++;
			continue;
		}
		/* deterministic */
		if (a.n_used != b.n_used || memcmp(a.slot, b.slot, n) != 0) {
			T_CHECK(0, "run %d: two runs differ", run);
			failures++;
		}
		/* the one-pass choice over a whole direction's array (exact
		 * entries of the same addresses in between) is the same */
		{
			struct mseg_entry raw[2 * MAX];
			struct slot_assign c;
			size_t m = 0;

			for (size_t i = 0; i < n; i++) {
				raw[m++] = v[i];
				if (rnd(2)) {   /* an exact entry of the same address */
					raw[m] = box(v[i].lo.bytes[3], v[i].lo.bytes[3], v[i].proto,
						     100 + rnd(50), 0);
					raw[m].port_hi = raw[m].port_lo;
					m++;
				}
			}
			qsort(raw, m, sizeof(*raw), entry_cmp);
			if (slots_choose(raw, m, AF_INET, k, &c) < 0 || !slots_same_choice(&a, &c)) {
				T_CHECK(0, "run %d: slots_choose() differs", run);
				failures++;
			}
			slot_assign_release(&c);
		}
		/* placing a run of whole groups with the choice gives those
		 * groups' slots */
		if (n > 2) {
			size_t from = rnd((uint32_t)n), to;
			struct slot_assign part;

			while (from > 0 && v[from - 1].lo.bytes[3] == v[from].lo.bytes[3])
				from--;
			to = from + 1 + rnd((uint32_t)(n - from));
			while (to < n && v[to].lo.bytes[3] == v[to - 1].lo.bytes[3])
				to++;
			if (slots_assign_with(pv + from, to - from, &a, &part) < 0 ||
			    memcmp(part.slot, a.slot + from, to - from) != 0) {
				T_CHECK(0, "run %d: slots_assign_with() of [%zu, %zu) differs", run, from,
					to);
				failures++;
			}
			slot_assign_release(&part);
		}
		/* K respected */
		if (a.n_used > k) {
			T_CHECK(0, "run %d: %zu slots used, k %zu", run, a.n_used, k);
			failures++;
		}
		/* what each place admits: *_port_iv its entries, slot j every
		 * (address, protocol) of its members on every port of its
		 * signature; no point twice, and the union is what the
		 * entries admit */
		for (size_t i = 0; i < n; i++)
			if (a.slot[i] < 0)
				twice |= !mark(got, &v[i]);
		for (size_t j = 0; j < a.n_used; j++) {
			unsigned done[N_ADDR][2] = { { 0 } };

			for (size_t i = 0; i < n; i++) {
				const struct slot_range *r = a.ranges + a.sig_off[j];
				unsigned ad = v[i].lo.bytes[3];

				if (a.slot[i] != (int8_t)j || done[ad][v[i].proto == IPPROTO_UDP]++)
					continue;
				if (v[i].lo.bytes[3] != v[i].hi.bytes[3]) {
					T_CHECK(0, "run %d: an address range in slot %zu", run, j);
					failures++;
				}
				for (size_t m = 0; m < a.sig_n[j]; m++) {
					struct mseg_entry e = box(ad, ad, v[i].proto, r[m].lo, r[m].hi);

					twice |= !mark(got, &e);
				}
			}
			/* signatures distinct, ranges ascending and apart */
			for (size_t m = 1; m < a.sig_n[j]; m++)
				if (a.ranges[a.sig_off[j] + m].lo <=
				    (unsigned)a.ranges[a.sig_off[j] + m - 1].hi + 1) {
					T_CHECK(0, "run %d: slot %zu ranges not merged", run, j);
					failures++;
				}
		}
		if (twice || memcmp(want, got, sizeof(want)) != 0) {
			T_CHECK(0, "run %d (k %zu, %zu entries): admitted points differ%s", run, k, n,
				twice ? " (a point in two places)" : "");
			failures++;
		}
		slot_assign_release(&a);
		slot_assign_release(&b);
	}
}

/* A new address whose signature sorts after the chosen ones moves
 * nothing; one that sorts first takes slot 0 and shifts the others. */
static void test_assign_stable(void)
{
	struct mseg_entry v[4] = {
		box(1, 1, IPPROTO_TCP, 8000, 8100),
		box(2, 2, IPPROTO_TCP, 8000, 8100),
		box(3, 3, IPPROTO_TCP, 9000, 9100),
		box(4, 4, IPPROTO_TCP, 9500, 9600),
	};
	const struct mseg_entry *pv[4] = { &v[0], &v[1], &v[2], &v[3] };
	struct slot_assign a;

	T_CHECK(slots_assign(pv, 3, 2, &a) == 0, "assign");
	T_CHECK(a.n_used == 2 && a.slot[0] == 0 && a.slot[1] == 0 && a.slot[2] == 1, "slots %d %d %d",
		a.slot[0], a.slot[1], a.slot[2]);
	slot_assign_release(&a);
	/* 9500-9600 sorts last: no slot, and the others stay */
	T_CHECK(slots_assign(pv, 4, 2, &a) == 0, "assign");
	T_CHECK(a.slot[0] == 0 && a.slot[1] == 0 && a.slot[2] == 1 && a.slot[3] == -1,
		"slots %d %d %d %d", a.slot[0], a.slot[1], a.slot[2], a.slot[3]);
	slot_assign_release(&a);
	/* every port (0-65535) sorts first */
	v[3] = box(4, 4, IPPROTO_TCP, 0, 65535);
	T_CHECK(slots_assign(pv, 4, 2, &a) == 0, "assign");
	T_CHECK(a.slot[3] == 0 && a.slot[0] == 1 && a.slot[1] == 1 && a.slot[2] == -1,
		"slots %d %d %d %d", a.slot[0], a.slot[1], a.slot[2], a.slot[3]);
	slot_assign_release(&a);
}

/* The image: slot members leave in4_port_iv for in4_rangeJ (address .
 * protocol, once per pair) and in4_rangeJ_ports (the merged signature). */
static void test_parts_image(void)
{
	struct mseg_entry v[] = {
		box(0, 3, IPPROTO_TCP, 80, 90),            /* an address range */
		box(1, 1, IPPROTO_TCP, 8000, 8049),
		box(1, 1, IPPROTO_TCP, 8050, 8100),        /* adjacent: one range */
		box(1, 1, IPPROTO_UDP, 8000, 8100),        /* same signature, udp */
		box(2, 2, IPPROTO_TCP, 0, 65535),
		box(3, 3, IPPROTO_TCP, 9000, 9001),        /* sorts third: no slot */
	};
	struct mseg_dir_plan dp = { .isolated = true, .entries = v,
				    .n_entries = sizeof(v) / sizeof(v[0]) };
	int iv = nl_set_index(AF_INET, SHAPE_PORT_IV);
	struct nl_set_spec s;
	struct nl_parts p;
	char el[RENDER_TEXT_ENTRY_MAX];
	size_t k;

	qsort(v, dp.n_entries, sizeof(v[0]), entry_cmp);
	T_CHECK(nl_parts_build(&p, &dp) == 0, "build");
	nl_parts_sort(&p);
	T_CHECK(p.off[iv + 1] - p.off[iv] == 2, "port_iv: %zu", p.off[iv + 1] - p.off[iv]);
	/* slot 0: 0-65535 (sorts first) */
	k = (size_t)nl_slot_set_index(AF_INET, 0, false);
	nl_set_spec_get(MSEG_DIR_INGRESS, k, &s);
	T_CHECK(p.off[k + 1] - p.off[k] == 1, "range0: %zu", p.off[k + 1] - p.off[k]);
	T_STREQ(nl_elem_text(&s, p.v[p.off[k]], el, sizeof(el)), "10.0.0.2 . tcp");
	nl_set_spec_get(MSEG_DIR_INGRESS, k + 1, &s);
	T_CHECK(p.off[k + 2] - p.off[k + 1] == 1, "range0_ports");
	T_STREQ(nl_elem_text(&s, p.v[p.off[k + 1]], el, sizeof(el)), "0-65535");
	{
		struct nl_elem x[2];

		T_CHECK(nl_entry_elems(&s, p.v[p.off[k + 1]], x) == 1 && x[0].open &&
				x[0].key_len == 2 && x[0].key[0] == 0 && x[0].key[1] == 0,
			"0-65535: one open start element");
	}
	/* slot 1: 8000-8100, tcp and udp of 10.0.0.1 */
	k = (size_t)nl_slot_set_index(AF_INET, 1, false);
	nl_set_spec_get(MSEG_DIR_INGRESS, k, &s);
	T_CHECK(p.off[k + 1] - p.off[k] == 2, "range1: %zu", p.off[k + 1] - p.off[k]);
	nl_set_spec_get(MSEG_DIR_INGRESS, k + 1, &s);
	T_CHECK(p.off[k + 2] - p.off[k + 1] == 1, "range1_ports: %zu", p.off[k + 2] - p.off[k + 1]);
	if (p.off[k + 2] - p.off[k + 1] == 1) {
		struct nl_elem x[2];

		T_STREQ(nl_elem_text(&s, p.v[p.off[k + 1]], el, sizeof(el)), "8000-8100");
		T_CHECK(nl_entry_elems(&s, p.v[p.off[k + 1]], x) == 2 && x[0].key[0] == 0x1f &&
				x[0].key[1] == 0x40 && x[1].key[0] == 0x1f && x[1].key[1] == 0xa5 &&
				x[1].flags,
			"8000-8100: start 8000, end 8101");
	}
	nl_parts_release(&p);
}

int main(void)
{
	T_RUN(test_assign_random);
	T_RUN(test_assign_stable);
	T_RUN(test_parts_image);
	return t_exit();
}
