/* Pure tests of the netlink renderer: set layout, element key bytes,
 * interval elements, rule expressions, batch splitting. No kernel needed. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/netfilter/nf_tables.h>
#include <libnftnl/rule.h>

#include "mseg/kernel/nft.h"
#include "mseg/compile/render_text.h"
#include "kernel/batch.h"
#include "kernel/render_nl.h"
#include "t.h"

static struct mseg_addr A(const char *s)
{
	struct mseg_addr a = { 0 };

	if (inet_pton(AF_INET, s, a.bytes) == 1)
		a.family = AF_INET;
	else if (inet_pton(AF_INET6, s, a.bytes) == 1)
		a.family = AF_INET6;
	return a;
}

static struct mseg_entry E(const char *lo, const char *hi, uint8_t proto, uint16_t plo,
			   uint16_t phi)
{
	struct mseg_entry e = { .lo = A(lo), .hi = A(hi), .proto = proto, .port_lo = plo,
				.port_hi = phi };

	return e;
}

static const char *hex(const uint8_t *p, size_t n, char *buf)
{
	for (size_t i = 0; i < n; i++)
		sprintf(buf + 2 * i, "%02x", p[i]);
	buf[2 * n] = '\0';
	return buf;
}

static void set_spec(struct nl_set_spec *s, enum mseg_dir dir, int family, enum entry_shape shape)
{
	int i = nl_set_index(family, shape);

	memset(s, 0, sizeof(*s));
	if (i >= 0)
		nl_set_spec_get(dir, (size_t)i, s);
}

static void test_set_names_match_text_renderer(void)
{
	static const enum entry_shape shapes[] = { SHAPE_PORT, SHAPE_PORT_IV, SHAPE_PROTO,
						   SHAPE_PROTO_IV, SHAPE_ANY, SHAPE_ANY_IV };
	char name[RENDER_TEXT_SET_NAME_MAX];
	struct nl_set_spec s, f;

	for (int d = 0; d < MSEG_DIR_COUNT; d++)
		for (int fam = 0; fam < 2; fam++)
			for (size_t k = 0; k < 6; k++) {
				int family = fam ? AF_INET6 : AF_INET;

				set_spec(&s, (enum mseg_dir)d, family, shapes[k]);
				render_text_set_name(name, sizeof(name), (enum mseg_dir)d, family,
						     shapes[k]);
				T_STREQ(s.name, name);
				T_CHECK(s.family == family && s.shape == shapes[k] && (int)s.dir == d,
					"%s", name);
				T_CHECK(nl_set_spec_find(name, &f) && f.dir == s.dir &&
						f.shape == s.shape && f.family == s.family,
					"find %s", name);
			}
	T_CHECK(!nl_set_spec_find("in4_nope", &f), "unknown name found");
	/* the port-range slots: an address set and a port set each, right
	 * after port_iv */
	T_CHECK(nl_set_spec_find("out6_range1_ports", &f) && f.dir == MSEG_DIR_EGRESS &&
			f.family == AF_INET6 && f.kind == NL_SET_SLOT_PORTS && f.slot == 1 &&
			f.rbtree && f.key_len == 2,
		"out6_range1_ports");
	T_CHECK(nl_set_spec_find("in4_range0", &f) && f.kind == NL_SET_SLOT_ADDR && f.slot == 0 &&
			f.key_len == 8 && !f.flags,
		"in4_range0");
	T_CHECK(nl_slot_set_index(AF_INET, 0, false) == nl_set_index(AF_INET, SHAPE_PORT_IV) + 1 &&
			nl_slot_set_index(AF_INET6, 1, true) + 1 ==
				nl_set_index(AF_INET6, SHAPE_PROTO),
		"slot set order");
}

static void test_set_types(void)
{
	struct nl_set_spec s;

	/* ipv4_addr . inet_proto . inet_service: ((7 << 6 | 12) << 6) | 13 */
	set_spec(&s, MSEG_DIR_INGRESS, AF_INET, SHAPE_PORT);
	T_CHECK(s.key_type == 0x730d && s.key_len == 12 && s.flags == 0 && s.n_fields == 3,
		"in4_port type 0x%x len %u flags 0x%x", s.key_type, s.key_len, s.flags);
	set_spec(&s, MSEG_DIR_INGRESS, AF_INET, SHAPE_PORT_IV);
	T_CHECK(s.flags == (NFT_SET_INTERVAL | NFT_SET_CONCAT) && !s.rbtree &&
			s.field_len[0] == 4 && s.field_len[1] == 1 && s.field_len[2] == 2,
		"in4_port_iv flags 0x%x", s.flags);
	set_spec(&s, MSEG_DIR_EGRESS, AF_INET6, SHAPE_PORT_IV);
	T_CHECK(s.key_type == ((8u << 6 | 12) << 6 | 13) && s.key_len == 24 &&
			s.field_len[0] == 16,
		"out6_port_iv type 0x%x len %u", s.key_type, s.key_len);
	set_spec(&s, MSEG_DIR_INGRESS, AF_INET6, SHAPE_PROTO);
	T_CHECK(s.key_type == (8u << 6 | 12) && s.key_len == 20 && s.n_fields == 2,
		"in6_proto type 0x%x len %u", s.key_type, s.key_len);
	set_spec(&s, MSEG_DIR_INGRESS, AF_INET, SHAPE_ANY_IV);
	T_CHECK(s.key_type == 7 && s.key_len == 4 && s.flags == NFT_SET_INTERVAL && s.rbtree &&
			s.key_byteorder == NFT_BYTEORDER_BIG_ENDIAN,
		"in4_any_iv type %u flags 0x%x", s.key_type, s.flags);
	set_spec(&s, MSEG_DIR_INGRESS, AF_INET6, SHAPE_ANY);
	T_CHECK(s.key_type == 8 && s.key_len == 16 && s.flags == 0, "in6_any");
}

static void test_key_layout(void)
{
	struct nl_set_spec s;
	struct mseg_entry e;
	uint8_t key[NL_KEY_MAX];
	char h[2 * NL_KEY_MAX + 1];

	/* 10.0.0.1 . tcp . 80: address, protocol + 3 zero bytes, port big-endian + 2 */
	set_spec(&s, MSEG_DIR_INGRESS, AF_INET, SHAPE_PORT);
	e = E("10.0.0.1", "10.0.0.1", IPPROTO_TCP, 80, 80);
	T_CHECK(nl_entry_key(&s, &e, false, key) == 12, "len");
	T_STREQ(hex(key, 12, h), "0a000001" "06000000" "00500000");

	/* 10.0.0.0/24 . udp . 5353-5360, high end */
	set_spec(&s, MSEG_DIR_INGRESS, AF_INET, SHAPE_PORT_IV);
	e = E("10.0.0.0", "10.0.0.255", IPPROTO_UDP, 5353, 5360);
	nl_entry_key(&s, &e, true, key);
	T_STREQ(hex(key, 12, h), "0a0000ff" "11000000" "14f00000");

	/* fd00::1 . ipv6-icmp */
	set_spec(&s, MSEG_DIR_INGRESS, AF_INET6, SHAPE_PROTO);
	e = E("fd00::1", "fd00::1", IPPROTO_ICMPV6, 0, 0);
	T_CHECK(nl_entry_key(&s, &e, false, key) == 20, "len");
	T_STREQ(hex(key, 20, h), "fd000000000000000000000000000001" "3a000000");

	/* fd00::2 . tcp . 443 */
	set_spec(&s, MSEG_DIR_EGRESS, AF_INET6, SHAPE_PORT);
	e = E("fd00::2", "fd00::2", IPPROTO_TCP, 443, 443);
	T_CHECK(nl_entry_key(&s, &e, false, key) == 24, "len");
	T_STREQ(hex(key, 24, h), "fd000000000000000000000000000002" "06000000" "01bb0000");
}

static void test_elems(void)
{
	struct nl_set_spec s;
	struct nl_elem x[2];
	struct mseg_entry e;
	char h[2 * NL_KEY_MAX + 1];

	/* hash: one element, key only */
	set_spec(&s, MSEG_DIR_INGRESS, AF_INET, SHAPE_ANY);
	e = E("10.0.0.1", "10.0.0.1", 0, 0, 0);
	T_CHECK(nl_entry_elems(&s, &e, x) == 1 && !x[0].has_key_end && !x[0].flags, "hash");

	/* concatenated interval: KEY and KEY_END */
	set_spec(&s, MSEG_DIR_INGRESS, AF_INET, SHAPE_PROTO_IV);
	e = E("10.99.0.0", "10.99.255.255", IPPROTO_ICMP, 0, 0);
	T_CHECK(nl_entry_elems(&s, &e, x) == 1 && x[0].has_key_end, "pipapo");
	T_STREQ(hex(x[0].key, 8, h), "0a630000" "01000000");
	T_STREQ(hex(x[0].key_end, 8, h), "0a63ffff" "01000000");

	/* plain interval: a start and an end element at hi + 1 */
	set_spec(&s, MSEG_DIR_INGRESS, AF_INET, SHAPE_ANY_IV);
	e = E("10.97.0.0", "10.97.0.255", 0, 0, 0);
	T_CHECK(nl_entry_elems(&s, &e, x) == 2, "rbtree");
	T_STREQ(hex(x[0].key, 4, h), "0a610000");
	T_CHECK(x[0].flags == 0 && !x[0].open, "start");
	T_STREQ(hex(x[1].key, 4, h), "0a610100");
	T_CHECK(x[1].flags == NFT_SET_ELEM_INTERVAL_END, "end flag");

	/* an interval to the top address has no end element: open */
	e = E("240.0.0.0", "255.255.255.255", 0, 0, 0);
	T_CHECK(nl_entry_elems(&s, &e, x) == 1 && x[0].open, "open v4");
	set_spec(&s, MSEG_DIR_EGRESS, AF_INET6, SHAPE_ANY_IV);
	e = E("ffff::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0, 0, 0);
	T_CHECK(nl_entry_elems(&s, &e, x) == 1 && x[0].open, "open v6");
	/* carry across bytes */
	e = E("fd00::", "fd00::ffff:ffff", 0, 0, 0);
	T_CHECK(nl_entry_elems(&s, &e, x) == 2, "v6 range");
	T_STREQ(hex(x[1].key, 16, h), "fd000000000000000000000100000000");

	/* an entry of another set belongs nowhere here */
	e = E("10.0.0.1", "10.0.0.1", IPPROTO_TCP, 80, 80);
	T_CHECK(nl_entry_elems(&s, &e, x) == 0, "wrong family/shape");
}

static void rule_texts(enum mseg_dir dir, enum mseg_mode mode, const struct table_opts *o,
		       char texts[NL_RULES_PER_CHAIN][1024])
{
	struct nftnl_rule *rules[NL_RULES_PER_CHAIN];
	int r = render_nl_chain_rules(dir, mode, o, rules);

	T_CHECK(r == 0, "render rules: %d", r);
	for (size_t i = 0; i < NL_RULES_PER_CHAIN; i++) {
		texts[i][0] = '\0';
		if (r == 0) {
			render_nl_rule_text(rules[i], texts[i], 1024);
			nftnl_rule_free(rules[i]);
		}
	}
}

static void test_rules(void)
{
	static char t[NL_RULES_PER_CHAIN][1024];
	struct table_opts o = { .queue = QUEUE_XT, .queue_num = 3 };

	rule_texts(MSEG_DIR_INGRESS, MSEG_MODE_ENFORCE, &o, t);
	T_CHECK(strstr(t[0], "[ ct load state => reg 1 ] [ bitwise reg 1 = ( reg 1 & 0x00000006 )") != NULL,
		"%s", t[0]);
	T_CHECK(strstr(t[1], "0x00000001") && strstr(t[1], "drop"), "%s", t[1]);
	T_CHECK(strstr(t[2], "meta load iif") != NULL, "%s", t[2]);
	T_CHECK(strstr(t[3], "set __set%d") && strstr(t[3], "0x0000003a"), "%s", t[3]);
	/* ip saddr . meta l4proto . th dport @in4_port goto in4_seen */
	T_STREQ(t[4], "[ meta load nfproto => reg 1 ] [ cmp eq reg 1 0x00000002 ] "
		      "[ payload load 4b @ network header + 12 => reg 1 ] "
		      "[ meta load l4proto => reg 9 ] "
		      "[ payload load 2b @ transport header + 2 => reg 10 ] "
		      "[ lookup reg 1 set in4_port 0x0 ] [ immediate reg 0 goto -> in4_seen ]");
	/* ip saddr . meta l4proto @in4_range0 th dport @in4_range0_ports goto in4_seen */
	T_STREQ(t[6], "[ meta load nfproto => reg 1 ] [ cmp eq reg 1 0x00000002 ] "
		      "[ payload load 4b @ network header + 12 => reg 1 ] "
		      "[ meta load l4proto => reg 9 ] [ lookup reg 1 set in4_range0 0x0 ] "
		      "[ payload load 2b @ transport header + 2 => reg 1 ] "
		      "[ lookup reg 1 set in4_range0_ports 0x0 ] "
		      "[ immediate reg 0 goto -> in4_seen ]");
	T_CHECK(strstr(t[7], "set in4_range1 ") && strstr(t[7], "set in4_range1_ports "), "%s",
		t[7]);
	T_CHECK(strstr(t[8], "set in4_proto ") != NULL, "%s", t[8]);
	/* ip6 saddr . meta l4proto . th dport @in6_port: registers 1, 2, 13 */
	T_STREQ(t[12], "[ meta load nfproto => reg 1 ] [ cmp eq reg 1 0x0000000a ] "
		       "[ payload load 16b @ network header + 8 => reg 1 ] "
		       "[ meta load l4proto => reg 2 ] "
		       "[ payload load 2b @ transport header + 2 => reg 13 ] "
		       "[ lookup reg 1 set in6_port 0x0 ] [ immediate reg 0 goto -> in6_seen ]");
	T_CHECK(strstr(t[20], "name flood") && strstr(t[20], "name in_overlimit") &&
			strstr(t[20], "drop"),
		"%s", t[20]);
	/* NFQUEUE v3: queuenum 3, queues_total 1, flags 0, padded to 8 */
	T_CHECK(strstr(t[21], "target name NFQUEUE rev 3") && strstr(t[21], "0300010000000000"),
		"%s", t[21]);

	rule_texts(MSEG_DIR_EGRESS, MSEG_MODE_AUDIT, &o, t);
	T_CHECK(strstr(t[2], "meta load oif") != NULL, "%s", t[2]);
	T_CHECK(strstr(t[4], "network header + 16") && strstr(t[4], "out4_port"), "%s", t[4]);
	/* ip daddr . meta l4proto @out4_range0 th dport @out4_range0_ports goto out4_seen */
	T_CHECK(strstr(t[6], "network header + 16") && strstr(t[6], "set out4_range0 ") &&
			strstr(t[6], "transport header + 2 => reg 1 ] [ lookup reg 1 set out4_range0_ports") &&
			strstr(t[6], "goto -> out4_seen"),
		"%s", t[6]);
	/* ip6 daddr . meta l4proto @out6_range1 ...: the protocol after 16 bytes */
	T_CHECK(strstr(t[15], "network header + 24") &&
			strstr(t[15], "l4proto => reg 2 ] [ lookup reg 1 set out6_range1 ") &&
			strstr(t[15], "set out6_range1_ports"),
		"%s", t[15]);
	T_CHECK(strstr(t[20], "out_overlimit") && strstr(t[20], "accept"), "%s", t[20]);
	T_CHECK(strstr(t[21], "0300010001000000") != NULL, "audit bypass: %s", t[21]);

	o.queue = QUEUE_NFLOG;
	rule_texts(MSEG_DIR_INGRESS, MSEG_MODE_ENFORCE, &o, t);
	T_CHECK(strstr(t[21], "[ log group 3") && strstr(t[21], "drop"), "%s", t[21]);
	o.queue = QUEUE_NATIVE;
	rule_texts(MSEG_DIR_INGRESS, MSEG_MODE_AUDIT, &o, t);
	T_CHECK(strstr(t[21], "[ queue num 3") && strstr(t[21], "bypass"), "%s", t[21]);
}

/* The chain the lookups go to: record the new connection, then accept
 * (also when the seen set is full and the update fails). */
static void test_seen_chain(void)
{
	struct nftnl_rule *rules[NL_RULES_PER_SEEN_CHAIN];
	char t[NL_RULES_PER_SEEN_CHAIN][1024];
	int r;

	r = render_nl_seen_chain_rules(MSEG_DIR_INGRESS, AF_INET, rules);
	T_CHECK(r == 0, "render: %d", r);
	if (r)
		return;
	for (size_t i = 0; i < NL_RULES_PER_SEEN_CHAIN; i++) {
		render_nl_rule_text(rules[i], t[i], sizeof(t[i]));
		nftnl_rule_free(rules[i]);
	}
	/* meta l4proto { tcp, udp, sctp, udplite } update @in4_seen_port
	 *	{ ip saddr . meta l4proto . th dport } */
	T_STREQ(t[0], "[ meta load nfproto => reg 1 ] [ cmp eq reg 1 0x00000002 ] "
		      "[ meta load l4proto => reg 1 ] [ lookup reg 1 set __set%d 0x0 ] "
		      "[ payload load 4b @ network header + 12 => reg 1 ] "
		      "[ meta load l4proto => reg 9 ] "
		      "[ payload load 2b @ transport header + 2 => reg 10 ] "
		      "[ dynset update reg_key 1 set in4_seen_port timeout 0ms ]");
	/* meta l4proto != { ... } update @in4_seen_proto { ip saddr . meta l4proto } */
	T_STREQ(t[1], "[ meta load nfproto => reg 1 ] [ cmp eq reg 1 0x00000002 ] "
		      "[ meta load l4proto => reg 1 ] [ lookup reg 1 set __set%d 0x1 ] "
		      "[ payload load 4b @ network header + 12 => reg 1 ] "
		      "[ meta load l4proto => reg 9 ] "
		      "[ dynset update reg_key 1 set in4_seen_proto timeout 0ms ]");
	T_STREQ(t[2], "[ immediate reg 0 accept ]");

	r = render_nl_seen_chain_rules(MSEG_DIR_EGRESS, AF_INET6, rules);
	T_CHECK(r == 0, "render: %d", r);
	if (r)
		return;
	for (size_t i = 0; i < NL_RULES_PER_SEEN_CHAIN; i++) {
		render_nl_rule_text(rules[i], t[i], sizeof(t[i]));
		nftnl_rule_free(rules[i]);
	}
	/* egress IPv6: ip6 daddr at 24, fields in registers 1, 2, 13 */
	T_CHECK(strstr(t[0], "16b @ network header + 24 => reg 1") &&
			strstr(t[0], "reg 13") && strstr(t[0], "set out6_seen_port"),
		"%s", t[0]);
	T_CHECK(strstr(t[1], "set out6_seen_proto"), "%s", t[1]);
	T_STREQ(nl_seen_chain_name(MSEG_DIR_EGRESS, AF_INET6), "out6_seen");
}

static void test_opts_and_structure(void)
{
	struct table_opts o, in = { .queue = QUEUE_XT };
	struct mseg_ep_plan a = { 0 }, b = { 0 };

	table_opts_normalize(&o, NULL);
	T_CHECK(o.rate == TABLE_DEFAULT_RATE && o.burst == TABLE_DEFAULT_BURST &&
			o.queue == QUEUE_NATIVE,
		"defaults");
	table_opts_normalize(&o, &in);
	T_CHECK(o.rate == TABLE_DEFAULT_RATE && o.queue == QUEUE_XT, "zero rate -> default");

	T_CHECK(!ep_plan_has_table(&a) && !ep_plan_has_table(NULL), "no table");
	T_CHECK(ep_plan_same_structure(&a, &b), "both empty");
	a.dir[MSEG_DIR_EGRESS].isolated = true;
	T_CHECK(ep_plan_has_table(&a), "table");
	T_CHECK(!ep_plan_same_structure(&a, &b), "isolation differs");
	b.dir[MSEG_DIR_EGRESS].isolated = true;
	b.dir[MSEG_DIR_EGRESS].mode = MSEG_MODE_AUDIT;
	T_CHECK(!ep_plan_same_structure(&a, &b), "mode differs");
	b.dir[MSEG_DIR_EGRESS].mode = MSEG_MODE_ENFORCE;
	b.dir[MSEG_DIR_INGRESS].mode = MSEG_MODE_AUDIT;   /* not isolated: irrelevant */
	T_CHECK(ep_plan_same_structure(&a, &b), "same");
}

static void test_origin_text(void)
{
	static const char *const names[] = { "shop/web", "shop/db" };
	struct mseg_entry e = { .policy = 1, .rule = 3 };
	char buf[128];

	T_STREQ(nl_entry_origin(&e, names, 2, buf, sizeof(buf)), "policy shop/db rule 3");
	e.policy = 7;
	T_STREQ(nl_entry_origin(&e, names, 2, buf, sizeof(buf)), "policy #7 rule 3");
	T_STREQ(nl_entry_origin(&e, NULL, 0, buf, sizeof(buf)), "policy #7 rule 3");
}

/* A replace batch for a plan: message counts, and a large set split into
 * element messages that each fit the 16-bit attribute length. */
static void test_batch_counts(void)
{
	enum { N = 20000 };
	struct mseg_entry *ents = calloc(N + 2, sizeof(*ents));
	struct mseg_ep_plan plan = { 0 };
	struct netns *ns = NULL;
	struct nl_batch *b;
	int r;

	T_CHECK(ents != NULL, "alloc");
	if (!ents)
		return;
	for (size_t i = 0; i < N; i++) {
		ents[i] = E("10.128.0.0", "10.128.0.0", IPPROTO_TCP, 443, 443);
		ents[i].lo.bytes[2] = ents[i].hi.bytes[2] = (uint8_t)(i >> 8);
		ents[i].lo.bytes[3] = ents[i].hi.bytes[3] = (uint8_t)i;
		ents[i].lo.bytes[1] = ents[i].hi.bytes[1] = (uint8_t)(128 + (i >> 16));
	}
	ents[N] = E("10.97.0.0", "10.97.0.255", 0, 0, 0);          /* rbtree: 2 elements */
	ents[N + 1] = E("fd00::", "fd00::ffff", IPPROTO_ICMPV6, 0, 0);
	plan.dir[MSEG_DIR_INGRESS].isolated = true;
	plan.dir[MSEG_DIR_INGRESS].entries = ents;
	plan.dir[MSEG_DIR_INGRESS].n_entries = N + 2;

	r = netns_open(NULL, &ns);
	T_CHECK(r == 0, "netns_open(NULL): %d", r);
	if (r < 0) {
		free(ents);
		return;
	}
	b = nl_batch_new(ns);
	T_CHECK(b != NULL, "batch");
	r = render_nl_table_replace(b, &plan, NULL);
	T_CHECK(r == 0, "replace: %d", r);
	/* 3 table + limit + 1 counter + 20 sets + chain + anon set + its
	 * elements + 22 rules + element messages: in4_port needs several
	 * (each element 24 bytes, a message < 64 KiB), the two others one */
	{
		size_t n = nl_batch_msg_count(b), fixed = 3 + 1 + 1 + 20 + 1 + 1 + 1 + 22;
		size_t per_msg_max = UINT16_MAX / 24;   /* nest 4 + key nest 4 + value 4 + 12 */

		T_CHECK(n >= fixed + 2 + (N + per_msg_max - 1) / per_msg_max && n <= fixed + 2 + 40,
			"messages: %zu", n);
	}
	nl_batch_free(b);

	/* no isolation: add + delete table only */
	b = nl_batch_new(ns);
	r = render_nl_table_remove(b);
	T_CHECK(r == 0 && nl_batch_msg_count(b) == 2, "remove: %zu", nl_batch_msg_count(b));
	nl_batch_free(b);
	netns_free(ns);
	free(ents);
}

int main(void)
{
	T_RUN(test_set_names_match_text_renderer);
	T_RUN(test_set_types);
	T_RUN(test_key_layout);
	T_RUN(test_elems);
	T_RUN(test_rules);
	T_RUN(test_seen_chain);
	T_RUN(test_opts_and_structure);
	T_RUN(test_origin_text);
	T_RUN(test_batch_counts);
	return t_exit();
}
