/* The netlink parsers without a socket: NFQUEUE packet messages through a
 * detached listener (queue_listener_feed) and read-back dump replies
 * (readback_parse_for_fuzz), with the inputs the fuzz targets found
 * (tests/fuzz/regress_queue/, tests/fuzz/regress_readback/). */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <libnftnl/common.h>

#include "mseg/kernel/readback.h"
#include "mseg/packet/queue.h"
#include "kernel/batch.h"
#include "t.h"
#include "../fuzz/fuzz_plan.h"

/* 10.99.0.7:40000 -> 10.99.0.2:443 SYN */
static const uint8_t syn[] = {
	0x45, 0x00, 0x00, 0x28, 0x00, 0x01, 0x00, 0x00, 0x40, 0x06, 0x00, 0x00,
	10, 99, 0, 7, 10, 99, 0, 2,
	0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x20, 0x00, 0, 0, 0, 0,
};

struct seen {
	unsigned n;
	struct queue_packet last;
};

static int handler(struct queue_listener *l, void *ctx, const struct queue_packet *p, void *data)
{
	struct seen *s = data;

	s->n++;
	s->last = *p;
	return NF_DROP;
}

/* An NFQUEUE packet message as the kernel sends one (egress, uid 1000). */
static size_t packet_msg(char *buf, uint32_t id)
{
	struct nfqnl_msg_packet_hdr ph = { .packet_id = htonl(id), .hw_protocol = htons(0x0800),
					   .hook = NF_INET_LOCAL_OUT };
	struct nlmsghdr *nlh;

	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_PACKET, 0);
	mnl_attr_put(nlh, NFQA_PACKET_HDR, sizeof(ph), &ph);
	mnl_attr_put_u32(nlh, NFQA_UID, htonl(1000));
	mnl_attr_put(nlh, NFQA_PAYLOAD, sizeof(syn), syn);
	return NLMSG_ALIGN(nlh->nlmsg_len);
}

static void test_queue_feed_packet(void)
{
	char buf[512] __attribute__((aligned(8))) = { 0 };
	struct queue_listener *l = NULL;
	struct seen s = { 0 };
	size_t len = packet_msg(buf, 7);

	T_CHECK(queue_listener_new_detached(0, NULL, NULL, &l) == 0, "new");
	T_CHECK(queue_listener_feed(l, buf, len, 0, handler, &s) == 0, "feed");
	T_CHECK(s.n == 1, "handled %u", s.n);
	T_CHECK(s.last.id == 7 && s.last.dir_known && s.last.dir == MSEG_DIR_EGRESS, "id %u dir %d",
		s.last.id, s.last.dir);
	T_CHECK(s.last.has_uid && s.last.uid == 1000, "uid %u", s.last.uid);
	T_CHECK(s.last.parse_status == 0 && s.last.pkt.dport == 443, "parse %d dport %u",
		s.last.parse_status, s.last.pkt.dport);
	T_CHECK(queue_listener_stats(l)->packets == 1 && queue_listener_stats(l)->dropped == 1,
		"stats");
	queue_listener_free(l);
}

/* fuzz_queue's regress_queue/nlmsg-len-over-int-max: a good message, then
 * a header claiming 2.3 GB. The good one is handled; the rest ignored. */
static void test_queue_huge_nlmsg_len(void)
{
	char buf[512] __attribute__((aligned(8))) = { 0 };
	struct queue_listener *l = NULL;
	struct seen s = { 0 };
	size_t len = packet_msg(buf, 9);
	struct nlmsghdr *bad = (struct nlmsghdr *)(buf + len);

	bad->nlmsg_len = 2333163520u;
	bad->nlmsg_type = 0x7ffb;
	len += 33;
	T_CHECK(queue_listener_new_detached(0, NULL, NULL, &l) == 0, "new");
	T_CHECK(queue_listener_feed(l, buf, len, 0, handler, &s) == 0, "feed");
	T_CHECK(s.n == 1 && s.last.id == 9, "handled %u", s.n);
	queue_listener_free(l);
}

/* regress_queue/cap-len-below-caplen: NFQA_CAP_LEN says the packet is
 * shorter than the payload we got; the length is at least the payload. */
static void test_queue_cap_len_below_payload(void)
{
	char buf[512] __attribute__((aligned(8))) = { 0 };
	struct queue_listener *l = NULL;
	struct seen s = { 0 };
	struct nlmsghdr *nlh;
	size_t len = packet_msg(buf, 11);

	nlh = (struct nlmsghdr *)buf;
	mnl_attr_put_u32(nlh, NFQA_CAP_LEN, htonl(20));
	len = NLMSG_ALIGN(nlh->nlmsg_len);
	T_CHECK(queue_listener_new_detached(0, NULL, NULL, &l) == 0, "new");
	T_CHECK(queue_listener_feed(l, buf, len, 0, handler, &s) == 0, "feed");
	T_CHECK(s.n == 1 && s.last.caplen == sizeof(syn) && s.last.len == sizeof(syn),
		"caplen %u len %u", s.last.caplen, s.last.len);
	queue_listener_free(l);
}

/* regress_queue/attr-past-message-end: the kernel ends a packet message
 * with the unpadded payload; a payload attribute claiming 2 bytes more than
 * the message has (libmnl allows up to the next multiple of 4) would be
 * read past the datagram. The message is refused. */
static void test_queue_attr_past_message_end(void)
{
	char buf[512] __attribute__((aligned(8))) = { 0 };
	struct queue_listener *l = NULL;
	struct seen s = { 0 };
	struct nfqnl_msg_packet_hdr ph = { .packet_id = htonl(5), .hook = NF_INET_LOCAL_IN };
	struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_PACKET, 0);
	struct nlattr *pl;

	mnl_attr_put(nlh, NFQA_PACKET_HDR, sizeof(ph), &ph);
	pl = (struct nlattr *)((char *)nlh + NLMSG_ALIGN(nlh->nlmsg_len));
	mnl_attr_put(nlh, NFQA_PAYLOAD, 34, syn);   /* 38 bytes, padded to 40 */
	nlh->nlmsg_len -= 2;                          /* as the kernel sends it */
	pl->nla_len += 2;                             /* reaches 2 bytes past it */
	T_CHECK(queue_listener_new_detached(0, NULL, NULL, &l) == 0, "new");
	T_CHECK(queue_listener_feed(l, buf, nlh->nlmsg_len, 0, handler, &s) == 0, "feed");
	T_CHECK(s.n == 0 && queue_listener_stats(l)->bad_msgs == 1, "handled %u", s.n);
	pl->nla_len -= 2;                             /* the kernel's own: handled */
	T_CHECK(queue_listener_feed(l, buf, nlh->nlmsg_len, 0, handler, &s) == 0, "feed");
	T_CHECK(s.n == 1 && s.last.caplen == 34, "handled %u caplen %u", s.n, s.last.caplen);
	queue_listener_free(l);
}

static void test_nl_msgs_len(void)
{
	char buf[256] __attribute__((aligned(8))) = { 0 };
	struct nlmsghdr *a = (struct nlmsghdr *)buf, *b = (struct nlmsghdr *)(buf + 20);

	a->nlmsg_len = 18;   /* padded to 20 */
	b->nlmsg_len = 16;
	T_CHECK(nl_msgs_len(buf, 36) == 36, "two messages: %zu", nl_msgs_len(buf, 36));
	T_CHECK(nl_msgs_len(buf, 18) == 18, "unpadded last: %zu", nl_msgs_len(buf, 18));
	T_CHECK(nl_msgs_len(buf, 30) == 20, "second cut: %zu", nl_msgs_len(buf, 30));
	b->nlmsg_len = 0x80000000u;
	T_CHECK(nl_msgs_len(buf, 256) == 20, "second above INT_MAX: %zu", nl_msgs_len(buf, 256));
	a->nlmsg_len = 8;
	T_CHECK(nl_msgs_len(buf, 256) == 0, "first shorter than a header");
}

/* fuzz_readback's regress_readback/nlmsg-len-over-int-max, reduced: the
 * generation reply is followed by a header claiming 2 GB; the read ends
 * with what was parsed, and the report says the table is missing. */
static void test_readback_huge_nlmsg_len(void)
{
	char buf[256] __attribute__((aligned(8))) = { 0 };
	struct table_opts opts = { .queue = QUEUE_XT, .rate = TABLE_DEFAULT_RATE,
				   .burst = TABLE_DEFAULT_BURST };
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWGEN, AF_UNSPEC, 0, 1);
	struct readback_msg m = { .kind = READBACK_GEN, .buf = buf };
	struct ep_table_report rep;
	struct fuzz_plan fp;
	struct mseg_err err;
	struct nlmsghdr *bad;

	mnl_attr_put_u32(nlh, NFTA_GEN_ID, htonl(42));
	m.len = NLMSG_ALIGN(nlh->nlmsg_len);
	bad = (struct nlmsghdr *)(buf + m.len);
	bad->nlmsg_len = 0x80000000u;
	m.len += 64;
	T_CHECK(fuzz_plan_build(&fp) == 0, "plan");
	T_CHECK(readback_parse_for_fuzz(&m, 1, &fp.plan->eps[0], &opts, &rep, &err) == 0, "%s",
		err.msg);
	T_CHECK(!rep.in_sync && rep.genid == 42, "in_sync %d genid %u", rep.in_sync, rep.genid);
	T_CHECK(rep.text && strstr(rep.text, "table inet mseg is missing"), "%s", rep.text);
	ep_table_report_release(&rep);
	fuzz_plan_release(&fp);
}

/* regress_readback/rule-expr-without-name: a rule whose expression has
 * no name (libnftnl 1.2.4 dereferences NULL) is skipped like any rule
 * libnftnl cannot parse: the chain then lacks its rules. */
static void test_readback_rule_expr_without_name(void)
{
	char buf[512] __attribute__((aligned(8))) = { 0 };
	struct table_opts opts = { .queue = QUEUE_XT, .rate = TABLE_DEFAULT_RATE,
				   .burst = TABLE_DEFAULT_BURST };
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWRULE, NFPROTO_INET, 0, 1);
	struct readback_msg m = { .kind = READBACK_RULES, .buf = buf };
	struct nlattr *list, *elem;
	struct ep_table_report rep;
	struct fuzz_plan fp;
	struct mseg_err err;

	mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, TABLE_NAME);
	mnl_attr_put_strz(nlh, NFTA_RULE_CHAIN, "ingress");
	list = mnl_attr_nest_start(nlh, NFTA_RULE_EXPRESSIONS);
	elem = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
	mnl_attr_put_u32(nlh, NFTA_EXPR_DATA, 0);
	mnl_attr_nest_end(nlh, elem);
	mnl_attr_nest_end(nlh, list);
	m.len = nlh->nlmsg_len;
	T_CHECK(fuzz_plan_build(&fp) == 0, "plan");
	T_CHECK(readback_parse_for_fuzz(&m, 1, &fp.plan->eps[0], &opts, &rep, &err) == 0, "%s",
		err.msg);
	T_CHECK(!rep.in_sync && strstr(rep.text, "table inet mseg is missing"), "%s", rep.text);
	ep_table_report_release(&rep);
	fuzz_plan_release(&fp);
}

/* regress_readback/rule-without-chain: a rule reply without
 * NFTA_RULE_CHAIN (strcmp with NULL) is not compared. */
static void test_readback_rule_without_chain(void)
{
	char buf[512] __attribute__((aligned(8))) = { 0 };
	struct table_opts opts = { .queue = QUEUE_XT, .rate = TABLE_DEFAULT_RATE,
				   .burst = TABLE_DEFAULT_BURST };
	struct nlmsghdr *c = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWCHAIN, NFPROTO_INET, 0, 1);
	struct readback_msg m[2] = { { .kind = READBACK_CHAINS, .buf = buf } };
	struct nlmsghdr *nlh;
	struct ep_table_report rep;
	struct fuzz_plan fp;
	struct mseg_err err;

	mnl_attr_put_strz(c, NFTA_CHAIN_TABLE, TABLE_NAME);
	mnl_attr_put_strz(c, NFTA_CHAIN_NAME, "ingress");
	m[0].len = NLMSG_ALIGN(c->nlmsg_len);
	nlh = nftnl_nlmsg_build_hdr(buf + 256, NFT_MSG_NEWRULE, NFPROTO_INET, 0, 2);
	mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, TABLE_NAME);
	m[1] = (struct readback_msg){ .kind = READBACK_RULES, .buf = nlh, .len = nlh->nlmsg_len };
	T_CHECK(fuzz_plan_build(&fp) == 0, "plan");
	T_CHECK(readback_parse_for_fuzz(m, 2, &fp.plan->eps[0], &opts, &rep, &err) == 0, "%s",
		err.msg);
	T_CHECK(!rep.in_sync, "drifted");
	ep_table_report_release(&rep);
	fuzz_plan_release(&fp);
}

/* regress_readback/nlmsg-error-int-min: an error reply carrying INT_MIN
 * (-INT_MIN overflows) ends the read with an I/O error. */
static void test_readback_error_int_min(void)
{
	char buf[256] __attribute__((aligned(8))) = { 0 };
	struct table_opts opts = { .queue = QUEUE_XT };
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nlmsgerr *e;
	struct readback_msg m = { .kind = READBACK_TABLE, .buf = buf };
	struct ep_table_report rep;
	struct fuzz_plan fp;
	struct mseg_err err;
	int r;

	nlh->nlmsg_type = NLMSG_ERROR;
	e = mnl_nlmsg_put_extra_header(nlh, sizeof(*e));
	e->error = INT32_MIN;
	m.len = nlh->nlmsg_len;
	T_CHECK(fuzz_plan_build(&fp) == 0, "plan");
	r = readback_parse_for_fuzz(&m, 1, &fp.plan->eps[0], &opts, &rep, &err);
	T_CHECK(r == -EIO && strstr(err.msg, "reading the table back"), "%d %s", r, err.msg);
	errno = EINTR;
	T_CHECK(nl_cb_errno() == -EINTR, "EINTR");
	errno = 0;
	T_CHECK(nl_cb_errno() == -EIO, "0");
	fuzz_plan_release(&fp);
}

/* regress_readback/set-name-without-nul: libnftnl strdup()s a set's name
 * past the end of an attribute without a NUL; such a set is not read. */
static void test_readback_name_without_nul(void)
{
	char buf[256] __attribute__((aligned(8))) = { 0 };
	struct table_opts opts = { .queue = QUEUE_XT, .rate = TABLE_DEFAULT_RATE,
				   .burst = TABLE_DEFAULT_BURST };
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWSET, NFPROTO_INET, 0, 1);
	struct readback_msg m = { .kind = READBACK_SETS, .buf = buf };
	struct ep_table_report rep;
	struct fuzz_plan fp;
	struct mseg_err err;

	mnl_attr_put_strz(nlh, NFTA_SET_TABLE, TABLE_NAME);
	mnl_attr_put(nlh, NFTA_SET_NAME, 8, "in4_port");   /* no NUL */
	m.len = nlh->nlmsg_len;
	T_CHECK(fuzz_plan_build(&fp) == 0, "plan");
	T_CHECK(readback_parse_for_fuzz(&m, 1, &fp.plan->eps[0], &opts, &rep, &err) == 0, "%s",
		err.msg);
	T_CHECK(!rep.in_sync, "drifted");
	ep_table_report_release(&rep);
	fuzz_plan_release(&fp);
}

/* regress_readback/set-expr-without-name: the same libnftnl NULL
 * dereference through a set's expression; such a set is not read. */
static void test_readback_set_expr_without_name(void)
{
	char buf[256] __attribute__((aligned(8))) = { 0 };
	struct table_opts opts = { .queue = QUEUE_XT, .rate = TABLE_DEFAULT_RATE,
				   .burst = TABLE_DEFAULT_BURST };
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWSET, NFPROTO_INET, 0, 1);
	struct readback_msg m = { .kind = READBACK_SETS, .buf = buf };
	struct ep_table_report rep;
	struct fuzz_plan fp;
	struct mseg_err err;
	struct nlattr *x;

	mnl_attr_put_strz(nlh, NFTA_SET_TABLE, TABLE_NAME);
	mnl_attr_put_strz(nlh, NFTA_SET_NAME, "in4_port");
	x = mnl_attr_nest_start(nlh, NFTA_SET_EXPR);
	mnl_attr_put_u32(nlh, NFTA_EXPR_DATA, 0);
	mnl_attr_nest_end(nlh, x);
	m.len = nlh->nlmsg_len;
	T_CHECK(fuzz_plan_build(&fp) == 0, "plan");
	T_CHECK(readback_parse_for_fuzz(&m, 1, &fp.plan->eps[0], &opts, &rep, &err) == 0, "%s",
		err.msg);
	T_CHECK(!rep.in_sync, "drifted");
	ep_table_report_release(&rep);
	fuzz_plan_release(&fp);
}

/* regress_readback/set-concat-200-fields: libnftnl 1.2.4 writes every
 * concatenated field length of a set into an array of 16 (heap overrun);
 * a set with more is not read. */
static void test_readback_set_too_many_fields(void)
{
	static char buf[4096] __attribute__((aligned(8)));
	struct table_opts opts = { .queue = QUEUE_XT, .rate = TABLE_DEFAULT_RATE,
				   .burst = TABLE_DEFAULT_BURST };
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWSET, NFPROTO_INET, 0, 1);
	struct readback_msg m = { .kind = READBACK_SETS, .buf = buf };
	struct nlattr *desc, *concat, *el;
	struct ep_table_report rep;
	struct fuzz_plan fp;
	struct mseg_err err;

	mnl_attr_put_strz(nlh, NFTA_SET_TABLE, TABLE_NAME);
	mnl_attr_put_strz(nlh, NFTA_SET_NAME, "in4_port");
	desc = mnl_attr_nest_start(nlh, NFTA_SET_DESC);
	concat = mnl_attr_nest_start(nlh, NFTA_SET_DESC_CONCAT);
	el = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
	for (int i = 0; i < 200; i++)
		mnl_attr_put_u32(nlh, NFTA_SET_FIELD_LEN, htonl(4));
	mnl_attr_nest_end(nlh, el);
	mnl_attr_nest_end(nlh, concat);
	mnl_attr_nest_end(nlh, desc);
	m.len = nlh->nlmsg_len;
	T_CHECK(fuzz_plan_build(&fp) == 0, "plan");
	T_CHECK(readback_parse_for_fuzz(&m, 1, &fp.plan->eps[0], &opts, &rep, &err) == 0, "%s",
		err.msg);
	T_CHECK(!rep.in_sync, "drifted");
	ep_table_report_release(&rep);
	fuzz_plan_release(&fp);
}

/* regress_readback/elem-attr-type-over-max: an element attribute of a
 * type above NFTA_SET_ELEM_MAX (libnftnl 1.2.4 stores it past its stack
 * array: stack smashing) makes the element reply unread. */
static void test_readback_elem_attr_over_max(void)
{
	char buf[512] __attribute__((aligned(8))) = { 0 };
	struct table_opts opts = { .queue = QUEUE_XT, .rate = TABLE_DEFAULT_RATE,
				   .burst = TABLE_DEFAULT_BURST };
	struct nlmsghdr *s = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWSET, NFPROTO_INET, 0, 1);
	struct readback_msg m[2] = { { .kind = READBACK_SETS, .buf = buf } };
	struct nlmsghdr *nlh;
	struct nlattr *list, *el;
	struct ep_table_report rep;
	struct fuzz_plan fp;
	struct mseg_err err;

	mnl_attr_put_strz(s, NFTA_SET_TABLE, TABLE_NAME);
	mnl_attr_put_strz(s, NFTA_SET_NAME, "in4_port");
	m[0].len = NLMSG_ALIGN(s->nlmsg_len);
	nlh = nftnl_nlmsg_build_hdr(buf + 256, NFT_MSG_NEWSETELEM, NFPROTO_INET, 0, 2);
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, TABLE_NAME);
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, "in4_port");
	list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
	el = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
	for (uint16_t t = NFTA_SET_ELEM_MAX + 1; t < NFTA_SET_ELEM_MAX + 12; t++)
		mnl_attr_put_u32(nlh, t, 0xffffffff);
	mnl_attr_nest_end(nlh, el);
	mnl_attr_nest_end(nlh, list);
	m[1] = (struct readback_msg){ .kind = READBACK_ELEMS, .buf = nlh, .len = nlh->nlmsg_len };
	T_CHECK(fuzz_plan_build(&fp) == 0, "plan");
	T_CHECK(readback_parse_for_fuzz(m, 2, &fp.plan->eps[0], &opts, &rep, &err) == 0, "%s",
		err.msg);
	T_CHECK(!rep.in_sync, "drifted");
	ep_table_report_release(&rep);
	fuzz_plan_release(&fp);
}

int main(void)
{
	T_RUN(test_queue_feed_packet);
	T_RUN(test_queue_huge_nlmsg_len);
	T_RUN(test_queue_cap_len_below_payload);
	T_RUN(test_queue_attr_past_message_end);
	T_RUN(test_nl_msgs_len);
	T_RUN(test_readback_huge_nlmsg_len);
	T_RUN(test_readback_rule_expr_without_name);
	T_RUN(test_readback_rule_without_chain);
	T_RUN(test_readback_error_int_min);
	T_RUN(test_readback_name_without_nul);
	T_RUN(test_readback_set_expr_without_name);
	T_RUN(test_readback_set_too_many_fields);
	T_RUN(test_readback_elem_attr_over_max);
	return t_exit();
}
