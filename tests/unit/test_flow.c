/* Flow records: aggregation, windows, the ring and its hash (against a
 * naive model), filters and follow, JSON, the log file with rotation, and
 * reloading the ring from the log after a restart. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mseg/packet/flow.h"
#include "t.h"

#define SEC 1000000000ull
#define T0 (1714564800ull * SEC)   /* 2024-05-01T12:00:00Z */

static struct pkt_info mkpkt4(uint8_t proto, uint8_t src_last, uint16_t sport, uint16_t dport)
{
	struct pkt_info p;

	memset(&p, 0, sizeof(p));
	p.family = AF_INET;
	p.src.family = p.dst.family = AF_INET;
	p.src.bytes[0] = 10, p.src.bytes[3] = src_last;
	p.dst.bytes[0] = 10, p.dst.bytes[3] = 2;
	p.proto = proto;
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		p.flags = PKT_F_L4 | PKT_F_PORTS;
		p.sport = sport;
		p.dport = dport;
	} else if (proto == IPPROTO_ICMP) {
		p.flags = PKT_F_L4 | PKT_F_ICMP;
		p.icmp_type = (uint8_t)(dport >> 8);
		p.icmp_code = (uint8_t)dport;
	}
	return p;
}

static struct flow_event mkev(struct flow_ep *ep, const struct pkt_info *p, uint64_t t)
{
	struct flow_event ev = { .ep = ep, .dir = MSEG_DIR_INGRESS, .verdict = FLOW_DROPPED,
				 .pkt = p, .time_ns = t };
	return ev;
}

/* sink recorder */
struct sink_log {
	unsigned n_new, n_final;
	uint64_t last_final_id, last_final_count;
};

static void sink_rec(const struct flow_record *r, enum flow_change what, void *data)
{
	struct sink_log *s = data;

	if (what == FLOW_CHANGE_NEW) {
		s->n_new++;
	} else {
		s->n_final++;
		s->last_final_id = r->id;
		s->last_final_count = r->count;
	}
}

static int collect(const struct flow_record *r, void *data)
{
	const struct flow_record **arr = data;
	size_t i = 0;

	while (arr[i])
		i++;
	arr[i] = r;
	return 0;
}

static size_t query(struct flow_ring *ring, const struct flow_filter *f,
		    const struct flow_record **out, size_t max)
{
	size_t n = 0;

	memset(out, 0, max * sizeof(*out));
	flow_ring_query(ring, f, collect, out);
	while (n < max && out[n])
		n++;
	return n;
}

static void test_aggregation(void)
{
	struct flow_ring *ring = flow_ring_new(100, 60000);
	struct flow_ep *ep = flow_ep_new("db-1", "db", "shop");
	struct flow_ep *ep_same = flow_ep_new("db-1", "db", "shop");
	struct flow_ep *ep_other = flow_ep_new("web-1", "web", "shop");
	struct pkt_info syn = mkpkt4(IPPROTO_TCP, 9, 40000, 5432);
	struct pkt_info syn2 = mkpkt4(IPPROTO_TCP, 9, 40001, 5432);  /* new source port */
	struct pkt_info other_port = mkpkt4(IPPROTO_TCP, 9, 40000, 5433);
	const struct flow_record *rec = NULL, *rec2;
	struct flow_event ev;
	struct flow_ring_stats st;
	uint64_t seq;

	ev = mkev(ep, &syn, T0);
	T_CHECK(flow_ring_add(ring, &ev, &rec) == 1, "first is new");
	T_CHECK(rec && rec->count == 1 && rec->id == 1, "record");
	seq = rec->seq;
	ev = mkev(ep, &syn, T0 + 1 * SEC);
	T_CHECK(flow_ring_add(ring, &ev, &rec2) == 0 && rec2 == rec, "retransmit aggregates");
	ev = mkev(ep_same, &syn2, T0 + 3 * SEC);   /* same id, other object, other sport */
	T_CHECK(flow_ring_add(ring, &ev, &rec2) == 0 && rec2 == rec, "same key aggregates");
	T_CHECK(rec->count == 3, "count %llu", (unsigned long long)rec->count);
	T_CHECK(rec->first_ns == T0 && rec->last_ns == T0 + 3 * SEC, "first/last seen");
	T_CHECK(rec->sport == 40000, "the first packet's source port stays");
	T_CHECK(rec->sports == 2, "two source ports seen: %u", rec->sports);
	{
		/* the JSON does not pass the first port off as the only one */
		json_t *o = flow_record_to_json(rec);
		struct flow_record back = { 0 };

		T_CHECK(o && json_integer_value(json_object_get(o, "sports")) == 2 &&
			json_integer_value(json_object_get(o, "sport")) == 40000, "sports in JSON");
		T_CHECK(o && flow_record_from_json(o, &back) == 0 && back.sports == 2,
			"sports read back from the log");
		if (back.ep)
			flow_record_release(&back);
		json_decref(o);
	}
	T_CHECK(rec->seq > seq && rec->seq == flow_ring_seq(ring), "seq moves on update");
	/* an older timestamp (clock step) does not move last_seen back */
	ev = mkev(ep, &syn, T0 + 2 * SEC);
	flow_ring_add(ring, &ev, NULL);
	T_CHECK(rec->last_ns == T0 + 3 * SEC && rec->count == 4, "last_seen monotonic");

	ev = mkev(ep, &other_port, T0 + 4 * SEC);
	T_CHECK(flow_ring_add(ring, &ev, NULL) == 1, "other port: new record");
	ev = mkev(ep_other, &syn, T0 + 4 * SEC);
	T_CHECK(flow_ring_add(ring, &ev, NULL) == 1, "other endpoint: new record");
	ev = mkev(ep, &syn, T0 + 4 * SEC);
	ev.verdict = FLOW_AUDITED;
	T_CHECK(flow_ring_add(ring, &ev, NULL) == 1, "other verdict: new record");
	ev = mkev(ep, &syn, T0 + 4 * SEC);
	ev.dir = MSEG_DIR_EGRESS;
	T_CHECK(flow_ring_add(ring, &ev, NULL) == 1, "other direction: new record");
	{
		struct pkt_info cut = syn;

		cut.err = PKT_E_L4_TRUNC;    /* a malformed packet to the same port */
		ev = mkev(ep, &cut, T0 + 4 * SEC);
		T_CHECK(flow_ring_add(ring, &ev, NULL) == 1, "malformed: a record of its own");
		T_CHECK(flow_ring_add(ring, &ev, NULL) == 0, "malformed alike: aggregates");
	}
	T_CHECK(flow_ring_count(ring) == 6, "6 records, got %zu", flow_ring_count(ring));

	flow_ring_stats_get(ring, &st);
	T_CHECK(st.packets == 10 && st.created == 6 && st.aggregated == 4 && st.open == 6,
		"stats %llu %llu %llu %llu", (unsigned long long)st.packets,
		(unsigned long long)st.created, (unsigned long long)st.aggregated,
		(unsigned long long)st.open);

	/* ICMP aggregates on type/code */
	{
		struct pkt_info echo = mkpkt4(IPPROTO_ICMP, 9, 0, 8 << 8);
		struct pkt_info unreach = mkpkt4(IPPROTO_ICMP, 9, 0, 3 << 8 | 1);

		ev = mkev(ep, &echo, T0);
		T_CHECK(flow_ring_add(ring, &ev, NULL) == 1, "echo");
		T_CHECK(flow_ring_add(ring, &ev, NULL) == 0, "echo again");
		ev = mkev(ep, &unreach, T0);
		T_CHECK(flow_ring_add(ring, &ev, NULL) == 1, "unreachable is another record");
	}
	/* nothing parsed: no record */
	{
		struct pkt_info none = { 0 };

		ev = mkev(ep, &none, T0);
		T_CHECK(flow_ring_add(ring, &ev, NULL) == -EINVAL, "no addresses");
	}
	flow_ring_free(ring);
	flow_ep_unref(ep);
	flow_ep_unref(ep_same);
	flow_ep_unref(ep_other);
}

static void test_window(void)
{
	struct flow_ring *ring = flow_ring_new(100, 10000);
	struct flow_ep *ep = flow_ep_new("db-1", NULL, NULL);
	struct pkt_info syn = mkpkt4(IPPROTO_TCP, 9, 40000, 5432);
	struct pkt_info udp = mkpkt4(IPPROTO_UDP, 9, 40000, 53);
	struct sink_log s = { 0 };
	const struct flow_record *a, *b;
	struct flow_event ev;

	flow_ring_set_sink(ring, sink_rec, &s);
	ev = mkev(ep, &syn, T0);
	flow_ring_add(ring, &ev, &a);
	ev.time_ns = T0 + 9 * SEC;
	flow_ring_add(ring, &ev, NULL);
	T_CHECK(s.n_new == 1 && s.n_final == 0, "sink new %u final %u", s.n_new, s.n_final);
	/* 10 s after the first packet the window is over: a new record, and
	 * the old one's final state goes to the sink */
	ev.time_ns = T0 + 10 * SEC;
	T_CHECK(flow_ring_add(ring, &ev, &b) == 1, "window over: new record");
	T_CHECK(b->id == 2 && b->first_ns == T0 + 10 * SEC && b->count == 1, "new record");
	T_CHECK(s.n_new == 2 && s.n_final == 1 && s.last_final_id == 1 && s.last_final_count == 2,
		"final of the old one: %u %llu", s.n_final, (unsigned long long)s.last_final_count);
	a = NULL;
	{
		const struct flow_record *out[4];

		T_CHECK(query(ring, NULL, out, 4) == 2, "two records");
		T_CHECK(out[0]->count == 2 && out[0]->last_ns == T0 + 9 * SEC, "old record kept");
	}

	/* flow_ring_expire closes windows on a timer; a single-packet record
	 * closes without a second log line */
	ev = mkev(ep, &udp, T0 + 11 * SEC);
	flow_ring_add(ring, &ev, NULL);
	flow_ring_expire(ring, T0 + 19 * SEC);
	T_CHECK(s.n_final == 1, "nothing expired yet");
	ev.time_ns = T0 + 12 * SEC;
	ev.pkt = &syn;
	flow_ring_add(ring, &ev, NULL);     /* record 2 count 2 */
	flow_ring_expire(ring, T0 + 20 * SEC);
	T_CHECK(s.n_final == 2 && s.last_final_id == 2 && s.last_final_count == 2, "expired 2");
	flow_ring_expire(ring, T0 + 21 * SEC);
	T_CHECK(s.n_final == 2, "udp record (count 1): no final line");
	{
		struct flow_ring_stats st;

		flow_ring_stats_get(ring, &st);
		T_CHECK(st.open == 0 && st.closed == 3, "open %llu closed %llu",
			(unsigned long long)st.open, (unsigned long long)st.closed);
	}
	ev.time_ns = T0 + 21 * SEC;
	T_CHECK(flow_ring_add(ring, &ev, NULL) == 1, "after expiry: new");
	ev.time_ns = T0 + 22 * SEC;
	flow_ring_add(ring, &ev, NULL);
	flow_ring_close_all(ring);
	T_CHECK(s.n_final == 3, "close_all finalizes");

	/* window 0: no aggregation */
	flow_ring_free(ring);
	ring = flow_ring_new(10, 0);
	ev = mkev(ep, &syn, T0);
	T_CHECK(flow_ring_add(ring, &ev, NULL) == 1 && flow_ring_add(ring, &ev, NULL) == 1,
		"no window: every packet a record");
	flow_ring_free(ring);
	flow_ep_unref(ep);
}

static void test_overwrite(void)
{
	struct flow_ring *ring = flow_ring_new(4, 60000);
	struct flow_ep *ep = flow_ep_new("db-1", NULL, NULL);
	struct sink_log s = { 0 };
	struct pkt_info p[10];
	const struct flow_record *out[8];
	struct flow_event ev;
	struct flow_ring_stats st;

	flow_ring_set_sink(ring, sink_rec, &s);
	for (int i = 0; i < 10; i++) {
		p[i] = mkpkt4(IPPROTO_TCP, 9, 1000, (uint16_t)(100 + i));
		ev = mkev(ep, &p[i], T0 + (uint64_t)i);
		T_CHECK(flow_ring_add(ring, &ev, NULL) == 1, "new %d", i);
		if (i == 6)      /* record 7 gets a second packet before it is pushed out */
			flow_ring_add(ring, &ev, NULL);
	}
	T_CHECK(flow_ring_count(ring) == 4, "count %zu", flow_ring_count(ring));
	T_CHECK(query(ring, NULL, out, 8) == 4, "four in the ring");
	T_CHECK(out[0]->dport == 106 && out[3]->dport == 109, "the newest four, oldest first");
	flow_ring_stats_get(ring, &st);
	T_CHECK(st.overwritten == 6 && st.open == 4, "overwritten %llu open %llu",
		(unsigned long long)st.overwritten, (unsigned long long)st.open);
	/* in the ring: aggregates; pushed out: a new record (the hash lost it) */
	ev = mkev(ep, &p[9], T0 + 20);
	T_CHECK(flow_ring_add(ring, &ev, NULL) == 0, "kept key aggregates");
	ev = mkev(ep, &p[0], T0 + 20);
	T_CHECK(flow_ring_add(ring, &ev, NULL) == 1, "overwritten key is new");
	/* that pushed out record 7 (dport 106, count 2): its final line */
	T_CHECK(s.n_final == 1 && s.last_final_count == 2, "final on overwrite: %u", s.n_final);
	flow_ring_free(ring);
	flow_ep_unref(ep);
}

/* A resumable query sees every match exactly once and in order, however
 * often it stops; records updated after the round's upper sequence wait
 * for the next round; a position that fell out of the ring is skipped. */
struct piece {
	uint64_t ids[64];
	size_t n, every;
};

static int take_some(const struct flow_record *r, void *data)
{
	struct piece *pc = data;

	pc->ids[pc->n++] = r->id;
	return pc->n % pc->every == 0 ? 1 : 0;
}

static void test_query_resume(void)
{
	struct flow_ring *ring = flow_ring_new(16, 60000);
	struct flow_ep *ep = flow_ep_new("db-1", NULL, NULL);
	struct flow_filter f;
	struct pkt_info p;
	struct flow_event ev;
	const struct flow_record *all[17];
	struct piece pc = { .every = 3 };
	uint64_t pos = 0, upto;
	size_t n_all, calls = 0;
	int r;

	for (int i = 0; i < 10; i++) {
		p = mkpkt4(IPPROTO_TCP, 9, 1000, (uint16_t)(100 + i));
		ev = mkev(ep, &p, T0 + (uint64_t)i);
		flow_ring_add(ring, &ev, NULL);
	}
	n_all = query(ring, NULL, all, 17);
	flow_filter_init(&f);
	upto = flow_ring_seq(ring);
	f.upto_seq = upto;
	do {
		r = flow_ring_query_from(ring, &f, &pos, take_some, &pc);
		calls++;
		/* between pieces: record 0 is updated (seq moves past upto) */
		if (calls == 1) {
			p = mkpkt4(IPPROTO_TCP, 9, 1000, 100);
			ev = mkev(ep, &p, T0 + 20);
			flow_ring_add(ring, &ev, NULL);
		}
	} while (r == 1 && calls < 100);
	T_CHECK(r == 0, "finished");
	T_CHECK(n_all == 10 && pc.n == 10, "every record once: %zu of %zu", pc.n, n_all);
	for (size_t i = 0; i < pc.n && i < n_all; i++)
		T_CHECK(pc.ids[i] == all[i]->id, "order at %zu", i);
	T_CHECK(calls == 4, "pieces of 3: %zu calls", calls);
	/* the next round: only what changed after upto (record 0's update) */
	f.after_seq = upto;
	f.upto_seq = 0;
	pc.n = 0;
	pos = 0;
	T_CHECK(flow_ring_query_from(ring, &f, &pos, take_some, &pc) == 0 && pc.n == 1 &&
		pc.ids[0] == all[0]->id, "next round has the update: %zu", pc.n);
	/* a resume position whose records were pushed out of the ring */
	for (int i = 0; i < 30; i++) {
		p = mkpkt4(IPPROTO_TCP, 9, 1000, (uint16_t)(200 + i));
		ev = mkev(ep, &p, T0 + 30 + (uint64_t)i);
		flow_ring_add(ring, &ev, NULL);
	}
	flow_filter_init(&f);
	pos = 1;
	pc.n = 0;
	pc.every = 1000;
	T_CHECK(flow_ring_query_from(ring, &f, &pos, take_some, &pc) == 0 && pc.n == 16,
		"old position: the ring's 16 records, %zu", pc.n);
	flow_ring_free(ring);
	flow_ep_unref(ep);
}

/* The ring against a naive model: the last `cap` records, an open record
 * per key found by linear search. */
struct model_rec {
	int key;
	uint64_t first, last, count;
	bool open;
};

static void test_ring_model(void)
{
	enum { CAP = 37, KEYS = 60, OPS = 100000 };
	const uint64_t window = 50;   /* ms */
	struct flow_ring *ring = flow_ring_new(CAP, window);
	struct flow_ep *eps[3] = { flow_ep_new("a", NULL, NULL), flow_ep_new("b", NULL, NULL),
				   flow_ep_new("c", NULL, NULL) };
	struct model_rec *m = calloc(OPS, sizeof(*m));
	const struct flow_record **out = calloc(CAP + 1, sizeof(*out));
	size_t nm = 0;
	uint64_t t = T0;
	uint32_t x = 99;
	int bad = 0;

	for (int op = 0; op < OPS && !bad; op++) {
		int key;
		struct pkt_info p;
		struct flow_event ev;
		size_t start = nm > CAP ? nm - CAP : 0, found = SIZE_MAX;
		int r;

		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		key = (int)(x % KEYS);
		t += (x >> 8) % 3000000;   /* up to 3 ms */
		if ((x >> 20) % 500 == 0) {
			flow_ring_expire(ring, t);
			for (size_t i = start; i < nm; i++)
				if (m[i].open && t - m[i].first >= window * 1000000)
					m[i].open = false;
		}
		p = mkpkt4(key % 2 ? IPPROTO_UDP : IPPROTO_TCP, (uint8_t)(key / 6), 1,
			   (uint16_t)(key % 3));
		ev = mkev(eps[key % 3], &p, t);
		r = flow_ring_add(ring, &ev, NULL);
		for (size_t i = start; i < nm; i++)
			if (m[i].open && m[i].key == key) {
				if (t - m[i].first >= window * 1000000)
					m[i].open = false;
				else
					found = i;
			}
		if (found != SIZE_MAX) {
			m[found].count++;
			m[found].last = t;
		} else {
			m[nm++] = (struct model_rec){ key, t, t, 1, true };
		}
		if (r != (found == SIZE_MAX ? 1 : 0)) {
			T_CHECK(0, "op %d: ring says %d", op, r);
			bad = 1;
		}
		if (op % 997 == 0 || bad) {
			size_t n = query(ring, NULL, out, CAP + 1);

			start = nm > CAP ? nm - CAP : 0;
			T_CHECK(n == nm - start, "op %d: %zu records, model %zu", op, n, nm - start);
			for (size_t i = 0; i < n && i + start < nm; i++)
				if (out[i]->count != m[start + i].count ||
				    out[i]->first_ns != m[start + i].first ||
				    out[i]->last_ns != m[start + i].last) {
					T_CHECK(0, "op %d record %zu differs", op, i);
					bad = 1;
					break;
				}
		}
	}
	free(m);
	free(out);
	for (int i = 0; i < 3; i++)
		flow_ep_unref(eps[i]);
	flow_ring_free(ring);
}

static void test_filters(void)
{
	struct flow_ring *ring = flow_ring_new(100, 60000);
	struct flow_ep *db = flow_ep_new("db-1", "db", "shop");
	struct flow_ep *web = flow_ep_new("web-1", "web", "front");
	struct pkt_info tcp = mkpkt4(IPPROTO_TCP, 9, 40000, 5432);
	struct pkt_info udp = mkpkt4(IPPROTO_UDP, 9, 40000, 53);
	struct pkt_info icmp = mkpkt4(IPPROTO_ICMP, 9, 0, 8 << 8);
	const struct flow_record *out[16];
	struct flow_filter f;
	struct flow_event ev;
	uint64_t seq;

	ev = mkev(db, &tcp, T0);                       /* 1 db ingress tcp dropped */
	flow_ring_add(ring, &ev, NULL);
	ev = mkev(db, &udp, T0 + SEC);                 /* 2 db ingress udp dropped */
	flow_ring_add(ring, &ev, NULL);
	ev = mkev(web, &tcp, T0 + 2 * SEC);            /* 3 web egress tcp audited */
	ev.dir = MSEG_DIR_EGRESS;
	ev.verdict = FLOW_AUDITED;
	flow_ring_add(ring, &ev, NULL);
	ev = mkev(web, &icmp, T0 + 3 * SEC);           /* 4 web ingress icmp */
	flow_ring_add(ring, &ev, NULL);

	flow_filter_init(&f);
	T_CHECK(query(ring, &f, out, 16) == 4, "all");
	f.endpoint = "db-1";
	T_CHECK(query(ring, &f, out, 16) == 2 && out[0]->id == 1 && out[1]->id == 2, "endpoint");
	flow_filter_init(&f);
	f.ns = "front";
	T_CHECK(query(ring, &f, out, 16) == 2 && out[0]->id == 3, "namespace");
	flow_filter_init(&f);
	f.dir = MSEG_DIR_EGRESS;
	T_CHECK(query(ring, &f, out, 16) == 1 && out[0]->id == 3, "direction");
	flow_filter_init(&f);
	f.verdict = FLOW_DROPPED;
	T_CHECK(query(ring, &f, out, 16) == 3, "verdict");
	flow_filter_init(&f);
	f.proto = IPPROTO_TCP;
	T_CHECK(query(ring, &f, out, 16) == 2, "proto");
	flow_filter_init(&f);
	f.port = 5432;
	T_CHECK(query(ring, &f, out, 16) == 2, "port");
	f.port = 0;
	T_CHECK(query(ring, &f, out, 16) == 0, "port 0 matches no icmp");
	flow_filter_init(&f);
	f.since_ns = T0 + 2 * SEC;
	T_CHECK(query(ring, &f, out, 16) == 2 && out[0]->id == 3, "since");
	flow_filter_init(&f);
	f.limit = 3;
	T_CHECK(query(ring, &f, out, 16) == 3 && out[0]->id == 2 && out[2]->id == 4,
		"limit: newest 3, newest last");
	f.limit = 1;
	f.endpoint = "db-1";
	T_CHECK(query(ring, &f, out, 16) == 1 && out[0]->id == 2, "limit with filter");
	f.endpoint = "nobody";
	T_CHECK(query(ring, &f, out, 16) == 0, "no match");

	/* follow: what changed after a sequence number, updates included */
	seq = flow_ring_seq(ring);
	flow_filter_init(&f);
	f.after_seq = seq;
	T_CHECK(query(ring, &f, out, 16) == 0, "nothing new");
	ev = mkev(db, &tcp, T0 + 5 * SEC);             /* update of 1 */
	flow_ring_add(ring, &ev, NULL);
	ev = mkev(db, &udp, T0 + 5 * SEC);
	ev.dir = MSEG_DIR_EGRESS;                      /* new 5 */
	flow_ring_add(ring, &ev, NULL);
	T_CHECK(query(ring, &f, out, 16) == 2 && out[0]->id == 1 && out[0]->count == 2 &&
			out[1]->id == 5, "changed since seq");
	f.after_seq = flow_ring_seq(ring);
	T_CHECK(query(ring, &f, out, 16) == 0, "caught up");

	flow_ring_free(ring);
	flow_ep_unref(db);
	flow_ep_unref(web);
}

static void test_time(void)
{
	char buf[FLOW_TIME_MAX];
	uint64_t ns;

	T_STREQ(flow_time_format(T0 + 250000000ull + 999999, buf, sizeof(buf)),
		"2024-05-01T12:00:00.250Z");
	T_STREQ(flow_time_format(0, buf, sizeof(buf)), "1970-01-01T00:00:00.000Z");
	T_CHECK(flow_time_parse("2024-05-01T12:00:00.250Z", &ns) == 0 &&
			ns == T0 + 250000000ull, "parse ms");
	T_CHECK(flow_time_parse("2024-05-01T12:00:00Z", &ns) == 0 && ns == T0, "no fraction");
	T_CHECK(flow_time_parse("2024-05-01T14:00:00.5+02:00", &ns) == 0 &&
			ns == T0 + 500000000ull, "offset");
	T_CHECK(flow_time_parse("2024-05-01T12:00:00.123456789Z", &ns) == 0 &&
			ns == T0 + 123456789ull, "ns");
	T_CHECK(flow_time_parse("2024-05-01T12:00:00", &ns) == -EINVAL, "no zone");
	T_CHECK(flow_time_parse("2024-05-01", &ns) == -EINVAL, "date only");
	T_CHECK(flow_time_parse("2024-13-01T12:00:00Z", &ns) == -EINVAL, "month 13");
	T_CHECK(flow_time_parse("2024-05-01T12:00:00.Z", &ns) == -EINVAL, "empty fraction");
	T_CHECK(flow_time_parse("2024-05-01T12:00:00Zx", &ns) == -EINVAL, "trailing");
	T_CHECK(flow_time_parse("", &ns) == -EINVAL, "empty");
}

static void test_json(void)
{
	struct flow_ring *ring = flow_ring_new(10, 60000);
	struct flow_ep *ep = flow_ep_new("db-1", "db", "shop");
	struct pkt_info tcp = mkpkt4(IPPROTO_TCP, 9, 40312, 5432);
	struct pkt_info icmp = mkpkt4(IPPROTO_ICMP, 9, 0, 8 << 8);
	struct pkt_info gre = mkpkt4(47, 9, 0, 0);
	struct pkt_info v6 = { 0 };
	const struct flow_record *rec;
	struct flow_record back;
	struct flow_event ev;
	char *s;
	json_t *o;

	ev = mkev(ep, &tcp, T0 + 250000000ull);
	ev.dir = MSEG_DIR_EGRESS;
	ev.has_uid = ev.has_gid = true;
	ev.uid = 70;
	ev.gid = 71;
	flow_ring_add(ring, &ev, NULL);
	ev.time_ns = T0 + 3250000000ull;
	flow_ring_add(ring, &ev, &rec);
	o = flow_record_to_json(rec);
	s = json_dumps(o, JSON_COMPACT);
	T_STREQ(s, "{\"id\":1,\"time\":\"2024-05-01T12:00:03.250Z\","
		   "\"endpoint\":{\"id\":\"db-1\",\"name\":\"db\",\"namespace\":\"shop\"},"
		   "\"direction\":\"egress\",\"src\":\"10.0.0.9\",\"sport\":40312,"
		   "\"dst\":\"10.0.0.2\",\"dport\":5432,\"proto\":\"tcp\",\"verdict\":\"dropped\","
		   "\"uid\":70,\"gid\":71,\"count\":2,"
		   "\"first_seen\":\"2024-05-01T12:00:00.250Z\","
		   "\"last_seen\":\"2024-05-01T12:00:03.250Z\"}");
	T_CHECK(flow_record_from_json(o, &back) == 0, "from json");
	T_CHECK(back.id == 1 && back.count == 2 && back.uid == 70 && back.gid == 71 &&
			back.dport == 5432 && back.sport == 40312 && back.proto == IPPROTO_TCP &&
			back.dir == MSEG_DIR_EGRESS && back.verdict == FLOW_DROPPED &&
			back.first_ns == T0 + 250000000ull && back.last_ns == T0 + 3250000000ull &&
			(back.flags & (FLOW_F_UID | FLOW_F_GID | FLOW_F_PORTS)) ==
				(FLOW_F_UID | FLOW_F_GID | FLOW_F_PORTS) &&
			memcmp(&back.src, &rec->src, sizeof(back.src)) == 0 &&
			strcmp(back.ep->id, "db-1") == 0 && strcmp(back.ep->ns, "shop") == 0,
		"round trip");
	flow_record_release(&back);
	free(s);
	json_decref(o);

	/* ICMP: type and code, no ports; audited; no uid */
	ev = mkev(ep, &icmp, T0);
	ev.verdict = FLOW_AUDITED;
	flow_ring_add(ring, &ev, &rec);
	o = flow_record_to_json(rec);
	T_CHECK(json_integer_value(json_object_get(o, "icmp_type")) == 8 &&
			json_object_get(o, "icmp_code") && !json_object_get(o, "sport") &&
			!json_object_get(o, "dport") && !json_object_get(o, "uid"),
		"icmp fields");
	T_STREQ(json_string_value(json_object_get(o, "proto")), "icmp");
	T_STREQ(json_string_value(json_object_get(o, "verdict")), "audited");
	json_decref(o);

	/* unknown protocol by number; a malformed packet says why */
	gre.err = PKT_E_L4_TRUNC;
	ev = mkev(ep, &gre, T0);
	flow_ring_add(ring, &ev, &rec);
	o = flow_record_to_json(rec);
	T_CHECK(json_is_integer(json_object_get(o, "proto")) &&
			json_integer_value(json_object_get(o, "proto")) == 47, "proto number");
	T_STREQ(json_string_value(json_object_get(o, "error")), "truncated l4 header");
	T_CHECK(flow_record_from_json(o, &back) == 0 && back.proto == 47 &&
			back.err == PKT_E_L4_TRUNC, "round trip 47");
	flow_record_release(&back);
	json_decref(o);

	/* IPv6 addresses */
	v6.family = AF_INET6;
	v6.src.family = v6.dst.family = AF_INET6;
	v6.src.bytes[0] = 0xfd, v6.src.bytes[15] = 1;
	v6.dst.bytes[0] = 0xfd, v6.dst.bytes[15] = 2;
	v6.proto = IPPROTO_ICMPV6;
	v6.flags = PKT_F_ICMP;
	v6.icmp_type = 128;
	ev = mkev(ep, &v6, T0);
	flow_ring_add(ring, &ev, &rec);
	o = flow_record_to_json(rec);
	T_STREQ(json_string_value(json_object_get(o, "src")), "fd00::1");
	T_STREQ(json_string_value(json_object_get(o, "proto")), "icmpv6");
	json_decref(o);

	/* bad documents */
	{
		static const char *const bad[] = {
			"[]",
			"{}",
			"{\"id\":1,\"endpoint\":{\"id\":\"x\"},\"direction\":\"in\",\"src\":\"10.0.0.1\","
			"\"dst\":\"10.0.0.2\",\"proto\":\"tcp\",\"verdict\":\"dropped\",\"count\":1,"
			"\"first_seen\":\"2024-05-01T12:00:00Z\",\"last_seen\":\"2024-05-01T12:00:00Z\"}",
			"{\"id\":1,\"endpoint\":{\"id\":\"x\"},\"direction\":\"ingress\",\"src\":\"10.0.0.1\","
			"\"dst\":\"fd00::2\",\"proto\":\"tcp\",\"verdict\":\"dropped\",\"count\":1,"
			"\"first_seen\":\"2024-05-01T12:00:00Z\",\"last_seen\":\"2024-05-01T12:00:00Z\"}",
			"{\"id\":1,\"endpoint\":{\"id\":\"x\"},\"direction\":\"ingress\",\"src\":\"10.0.0.1\","
			"\"dst\":\"10.0.0.2\",\"proto\":300,\"verdict\":\"dropped\",\"count\":1,"
			"\"first_seen\":\"2024-05-01T12:00:00Z\",\"last_seen\":\"2024-05-01T12:00:00Z\"}",
			"{\"id\":1,\"endpoint\":{\"id\":\"x\"},\"direction\":\"ingress\",\"src\":\"10.0.0.1\","
			"\"dst\":\"10.0.0.2\",\"proto\":\"tcp\",\"sport\":1,\"verdict\":\"dropped\","
			"\"count\":1,\"first_seen\":\"2024-05-01T12:00:00Z\","
			"\"last_seen\":\"2024-05-01T12:00:00Z\"}",
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			o = json_loads(bad[i], 0, NULL);
			T_CHECK(o && flow_record_from_json(o, &back) == -EINVAL, "bad %zu", i);
			json_decref(o);
		}
	}
	flow_ring_free(ring);
	flow_ep_unref(ep);
}

/* ---- log files ---- */

static char tmpdir[64];

static void rm_tmpdir(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char p[sizeof(tmpdir) + sizeof(e->d_name) + 2];

	if (!d)
		return;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
			unlink(p);
		}
	closedir(d);
	rmdir(tmpdir);
}

static long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) < 0 ? -1 : (long)st.st_size;
}

/* Lines of @path that parse as records; -1 when a line does not. */
static int count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		json_t *o = json_loads(line, 0, NULL);
		struct flow_record r;

		if (!o || flow_record_from_json(o, &r) < 0)
			n = -1000;
		else
			flow_record_release(&r);
		json_decref(o);
		n++;
	}
	fclose(f);
	return n;
}

static void test_log_rotation(void)
{
	char path[128], p1[140], p2[140], p3[140];
	struct flow_log_opts lo;
	struct flow_log *log = NULL;
	struct flow_log_stats ls;
	struct flow_ring *ring = flow_ring_new(1000, 60000);
	struct flow_ep *ep = flow_ep_new("db-1", "db", "shop");
	struct flow_event ev;
	int total;

	snprintf(path, sizeof(path), "%s/flows.jsonl", tmpdir);
	snprintf(p1, sizeof(p1), "%s.1", path);
	snprintf(p2, sizeof(p2), "%s.2", path);
	snprintf(p3, sizeof(p3), "%s.3", path);
	flow_log_opts_init(&lo, path);
	lo.max_size = 2000;
	lo.max_files = 2;
	lo.buffer_size = 700;
	T_CHECK(flow_log_open(&lo, &log) == 0, "open");
	if (!log)
		goto out;
	flow_ring_set_sink(ring, flow_log_sink, log);
	for (int i = 0; i < 30; i++) {
		struct pkt_info p = mkpkt4(IPPROTO_TCP, 9, 1, (uint16_t)(1000 + i));

		ev = mkev(ep, &p, T0 + (uint64_t)i * SEC);
		flow_ring_add(ring, &ev, NULL);
	}
	T_CHECK(flow_log_flush(log) == 0, "flush");
	flow_log_stats_get(log, &ls);
	T_CHECK(ls.lines == 30 && ls.rotations > 0 && ls.write_errors == 0,
		"lines %llu rotations %llu", (unsigned long long)ls.lines,
		(unsigned long long)ls.rotations);
	T_CHECK(file_size(path) > 0 && file_size(path) <= 2000, "size %ld", file_size(path));
	T_CHECK(file_size(p1) > 1500 && file_size(p1) <= 2000, "size .1 %ld", file_size(p1));
	T_CHECK(file_size(p2) > 1500 && file_size(p2) <= 2000, "size .2 %ld", file_size(p2));
	T_CHECK(file_size(p3) < 0, ".3 does not exist");
	total = count_lines(path) + count_lines(p1) + count_lines(p2);
	T_CHECK(total > 10 && total < 30, "whole lines, oldest rotated away: %d", total);
	{
		long before = file_size(path);

		/* restart: reopen appends and counts the existing size */
		log = flow_log_free(log);
		T_CHECK(file_size(path) == before, "free flushed nothing new");
		T_CHECK(flow_log_open(&lo, &log) == 0, "reopen");
		flow_log_stats_get(log, &ls);
		T_CHECK(ls.size == (uint64_t)before, "size continues: %llu",
			(unsigned long long)ls.size);
	}
	flow_ring_set_sink(ring, flow_log_sink, log);
	for (int i = 30; i < 60; i++) {
		struct pkt_info p = mkpkt4(IPPROTO_TCP, 9, 1, (uint16_t)(1000 + i));

		ev = mkev(ep, &p, T0 + (uint64_t)i * SEC);
		flow_ring_add(ring, &ev, NULL);
	}
	flow_log_flush(log);
	T_CHECK(file_size(path) <= 2000 && file_size(p1) <= 2000 && file_size(p3) < 0,
		"rotation goes on after a restart");
	T_CHECK(count_lines(path) > 0 && count_lines(p1) > 0 && count_lines(p2) > 0,
		"every file holds whole records");

	/* max_files 0: the file is started over */
	log = flow_log_free(log);
	lo.max_files = 0;
	unlink(p1);
	unlink(p2);
	T_CHECK(flow_log_open(&lo, &log) == 0, "open");
	flow_ring_set_sink(ring, flow_log_sink, log);
	for (int i = 60; i < 100; i++) {
		struct pkt_info p = mkpkt4(IPPROTO_TCP, 9, 1, (uint16_t)(1000 + i));

		ev = mkev(ep, &p, T0 + (uint64_t)i * SEC);
		flow_ring_add(ring, &ev, NULL);
	}
	flow_log_flush(log);
	T_CHECK(file_size(path) <= 2000 && file_size(p1) < 0, "no rotated files");
	unlink(path);
out:
	flow_log_free(log);
	flow_ring_free(ring);
	flow_ep_unref(ep);
}

/* "junk" as the first line of the oldest rotated file of @path */
static int prepend_junk(const char *path)
{
	char name[160], *buf;
	FILE *f;
	long n;
	int i;

	for (i = 9; i > 0; i--) {
		snprintf(name, sizeof(name), "%s.%d", path, i);
		if (access(name, F_OK) == 0)
			break;
	}
	if (i == 0 || !(f = fopen(name, "r")))
		return -1;
	buf = malloc(1 << 20);
	n = (long)fread(buf, 1, 1 << 20, f);
	fclose(f);
	f = fopen(name, "w");
	if (!f) {
		free(buf);
		return -1;
	}
	fputs("junk\n", f);
	fwrite(buf, 1, (size_t)n, f);
	fclose(f);
	free(buf);
	return 0;
}

static void test_log_reload(void)
{
	char path[128], p1[140];
	struct flow_log_opts lo;
	struct flow_log *log = NULL;
	struct flow_ring *ring = flow_ring_new(100, 10000), *ring2 = NULL, *ring3 = NULL;
	struct flow_ep *ep = flow_ep_new("db-1", "db", "shop");
	const struct flow_record *a[128], *b[128];
	struct flow_event ev;
	size_t na, nb, loaded = 0, skipped = 0;
	const struct flow_record *rec;
	int fd;

	snprintf(path, sizeof(path), "%s/reload.jsonl", tmpdir);
	snprintf(p1, sizeof(p1), "%s.1", path);
	flow_log_opts_init(&lo, path);
	lo.max_size = 12000;      /* two rotations */
	lo.max_files = 3;
	T_CHECK(flow_log_open(&lo, &log) == 0, "open");
	if (!log)
		goto out;
	flow_ring_set_sink(ring, flow_log_sink, log);
	/* 80 records; some get more packets; time moves so windows close */
	for (int i = 0; i < 80; i++) {
		struct pkt_info p = mkpkt4(i % 2 ? IPPROTO_UDP : IPPROTO_TCP, (uint8_t)(i % 7), 1,
					   (uint16_t)(2000 + i));
		uint64_t t = T0 + (uint64_t)i * SEC;

		ev = mkev(ep, &p, t);
		ev.has_uid = i % 3 == 0;
		ev.uid = (uint32_t)i;
		flow_ring_add(ring, &ev, NULL);
		if (i % 4 == 0) {
			ev.time_ns = t + SEC / 2;
			flow_ring_add(ring, &ev, NULL);
			flow_ring_add(ring, &ev, NULL);
		}
		flow_ring_expire(ring, t);
	}
	flow_ring_close_all(ring);   /* shutdown: the open windows' final lines */
	T_CHECK(flow_log_flush(log) == 0, "flush");
	log = flow_log_free(log);
	na = query(ring, NULL, a, 128);
	T_CHECK(na == 80, "80 records");

	/* a bad line at the start of the oldest file: a ring of 50 is filled
	 * before reading that far (the read stops early), a big ring reads it */
	T_CHECK(prepend_junk(path) == 0, "junk");

	/* restart with a smaller ring: the newest 50, the final counts */
	ring2 = flow_ring_new(50, 10000);
	T_CHECK(flow_log_load_tail(path, 3, ring2, &loaded, &skipped) == 0, "load");
	T_CHECK(loaded == 50 && skipped == 0, "loaded %zu skipped %zu", loaded, skipped);
	nb = query(ring2, NULL, b, 128);
	T_CHECK(nb == 50, "ring2 has %zu", nb);
	for (size_t i = 0; i < nb && i + 30 < na; i++) {
		const struct flow_record *x = a[i + 30], *y = b[i];

		if (x->id != y->id || x->count != y->count || x->dport != y->dport ||
		    x->proto != y->proto || x->uid != y->uid || x->flags != y->flags ||
		    x->first_ns / 1000000 != y->first_ns / 1000000 ||
		    x->last_ns / 1000000 != y->last_ns / 1000000 || strcmp(y->ep->id, "db-1") != 0) {
			T_CHECK(0, "record %zu differs: id %llu/%llu count %llu/%llu", i,
				(unsigned long long)x->id, (unsigned long long)y->id,
				(unsigned long long)x->count, (unsigned long long)y->count);
			break;
		}
	}
	/* new records continue the ids */
	{
		struct pkt_info p = mkpkt4(IPPROTO_TCP, 1, 1, 9);

		ev = mkev(ep, &p, T0 + 100 * SEC);
		flow_ring_add(ring2, &ev, &rec);
		T_CHECK(rec->id == 81, "next id %llu", (unsigned long long)rec->id);
	}
	T_CHECK(flow_log_load_tail(path, 3, ring2, NULL, NULL) == -EBUSY, "not on a full ring");

	/* a corrupt line, an overlong one and a torn last line are skipped */
	fd = open(path, O_WRONLY | O_APPEND);
	if (fd >= 0) {
		char *big = malloc(FLOW_LOG_MAX_LINE + 100);

		memset(big, 'x', FLOW_LOG_MAX_LINE + 99);
		big[FLOW_LOG_MAX_LINE + 99] = '\n';
		T_CHECK(write(fd, "{not json}\n", 11) == 11, "write");
		T_CHECK(write(fd, big, FLOW_LOG_MAX_LINE + 100) == FLOW_LOG_MAX_LINE + 100, "write");
		T_CHECK(write(fd, "\n\n{\"id\":", 8) == 8, "write");
		free(big);
		close(fd);
	}
	ring3 = flow_ring_new(200, 10000);
	T_CHECK(flow_log_load_tail(path, 3, ring3, &loaded, &skipped) == 0, "load again");
	T_CHECK(skipped == 4, "skipped %zu", skipped);
	/* the ring is bigger than what the files hold: every record the
	 * rotation kept, in id order */
	nb = query(ring3, NULL, b, 128);
	T_CHECK(loaded == nb && nb > 50 && nb <= 80, "loaded %zu", loaded);
	for (size_t i = 1; i < nb; i++)
		T_CHECK(b[i]->id > b[i - 1]->id, "id order");
	T_CHECK(nb > 0 && b[nb - 1]->id == 80, "newest is 80");

	/* missing files are no error */
	flow_ring_free(ring3);
	ring3 = flow_ring_new(10, 10000);
	T_CHECK(flow_log_load_tail("/nonexistent/flows", 3, ring3, &loaded, NULL) == 0 &&
			loaded == 0, "missing");
	unlink(path);
	unlink(p1);
	for (int i = 2; i <= 3; i++) {
		char pn[160];

		snprintf(pn, sizeof(pn), "%s.%d", path, i);
		unlink(pn);
	}
out:
	flow_log_free(log);
	flow_ring_free(ring);
	flow_ring_free(ring2);
	flow_ring_free(ring3);
	flow_ep_unref(ep);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/mseg-flow-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	T_RUN(test_aggregation);
	T_RUN(test_window);
	T_RUN(test_overwrite);
	T_RUN(test_query_resume);
	T_RUN(test_ring_model);
	T_RUN(test_filters);
	T_RUN(test_time);
	T_RUN(test_json);
	T_RUN(test_log_rotation);
	T_RUN(test_log_reload);
	rm_tmpdir();
	return t_exit();
}
