/* nlcapture: netlink messages from the running kernel, saved as seed
 * inputs of the fuzz targets (tests/fuzz/capture.sh runs it in a network
 * namespace of its own).
 *
 *   nlcapture readback EP OUT
 *       program endpoint number EP of the fuzz plan (tests/fuzz/fuzz_plan.h)
 *       into the current network namespace with ep_table_replace(), dump
 *       it back as the read-back does (generation, table, objects, sets,
 *       each set's elements, chains, rules) and write every reply datagram
 *       to OUT in fuzz_readback's input format.
 *   nlcapture queue NUM COUNT PREFIX
 *       bind NFQUEUE NUM (copy range 128, uid/gid, GSO, as msegd does),
 *       write the first COUNT packet datagrams to PREFIX-1, PREFIX-2, ...
 *       in fuzz_queue's input format, and accept them.
 *
 * Exit status: 0 ok, 1 failure, 2 usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <libnftnl/common.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include "mseg/kernel/nft.h"
#include "mseg/kernel/readback.h"
#include "../fuzz/fuzz_plan.h"

#define NAME_MAX_SETS 64

struct capture {
	struct mnl_socket *nl;
	FILE *out;
	uint32_t seq;
	char *sets[NAME_MAX_SETS];
	size_t n_sets;
};

static int set_name_cb(const struct nlmsghdr *nlh, void *data)
{
	struct capture *c = data;
	struct nftnl_set *s = nftnl_set_alloc();

	if (s && nftnl_set_nlmsg_parse(nlh, s) >= 0 && c->n_sets < NAME_MAX_SETS)
		c->sets[c->n_sets++] = strdup(nftnl_set_get_str(s, NFTNL_SET_NAME));
	nftnl_set_free(s);
	return MNL_CB_OK;
}

static int record_write(FILE *f, enum readback_reply kind, const void *buf, size_t len)
{
	uint8_t hdr[3] = { (uint8_t)kind, (uint8_t)(len & 0xff), (uint8_t)(len >> 8) };

	if (len > 0xffff) {
		fprintf(stderr, "nlcapture: a reply of %zu bytes does not fit a record\n", len);
		return -1;
	}
	return fwrite(hdr, 1, 3, f) == 3 && fwrite(buf, 1, len, f) == len ? 0 : -1;
}

/* Send @nlh, save every reply datagram until the dump or ack ends. */
static int exchange(struct capture *c, struct nlmsghdr *nlh, enum readback_reply kind)
{
	static char buf[65536];
	uint32_t seq = nlh->nlmsg_seq;

	if (!(nlh->nlmsg_flags & NLM_F_DUMP))
		nlh->nlmsg_flags |= NLM_F_ACK;
	if (mnl_socket_sendto(c->nl, nlh, nlh->nlmsg_len) < 0) {
		perror("nlcapture: send");
		return -1;
	}
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(c->nl, buf, sizeof(buf));
		int r;

		if (n < 0) {
			perror("nlcapture: recv");
			return -1;
		}
		if (record_write(c->out, kind, buf, (size_t)n) < 0)
			return -1;
		r = mnl_cb_run(buf, (size_t)n, seq, mnl_socket_get_portid(c->nl),
			       kind == READBACK_SETS ? set_name_cb : NULL, c);
		if (r <= MNL_CB_STOP)
			return 0;   /* done, or an error reply (saved too) */
	}
}

static struct nlmsghdr *req(struct capture *c, char *buf, uint16_t type, uint16_t family,
			    uint16_t flags)
{
	return nftnl_nlmsg_build_hdr(buf, type, family, flags, ++c->seq);
}

static int capture_readback(const char *ep_arg, const char *path)
{
	struct table_opts opts = { .queue = QUEUE_NATIVE, .rate = TABLE_DEFAULT_RATE,
				   .burst = TABLE_DEFAULT_BURST };
	struct capture c = { .seq = (uint32_t)time(NULL) };
	struct fuzz_plan fp;
	struct nft_features feat;
	struct netns *ns = NULL;
	struct mseg_err err;
	char buf[8192];
	struct nlmsghdr *nlh;
	unsigned long ep = strtoul(ep_arg, NULL, 10);
	uint8_t first;
	int r, ret = 1;

	if (fuzz_plan_build(&fp) < 0)
		return 1;
	if (ep >= fp.plan->n_eps) {
		fprintf(stderr, "nlcapture: the plan has %zu endpoints\n", fp.plan->n_eps);
		goto out_plan;
	}
	/* the queue method msegd would take on this kernel */
	if (nft_features_probe(&feat, &err) == 0 || feat.queue_xt || feat.queue_native ||
	    feat.nflog)
		opts.queue = feat.queue;
	r = netns_open(NULL, &ns);
	if (r == 0)
		r = ep_table_replace(ns, &fp.plan->eps[ep], &opts, NULL, 0, &err);
	if (r < 0) {
		fprintf(stderr, "nlcapture: programming: %s\n", ns ? err.msg : strerror(-r));
		goto out_plan;
	}
	c.nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!c.nl || mnl_socket_bind(c.nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		perror("nlcapture: netlink");
		goto out_plan;
	}
	c.out = fopen(path, "wb");
	if (!c.out) {
		perror(path);
		goto out_close;
	}
	first = (uint8_t)(ep | (unsigned)opts.queue << 4);   /* fuzz_readback's first byte */
	fwrite(&first, 1, 1, c.out);

	memset(buf, 0, sizeof(buf));
	nlh = req(&c, buf, NFT_MSG_GETGEN, AF_UNSPEC, 0);
	if (exchange(&c, nlh, READBACK_GEN) < 0)
		goto out_close;
	{
		struct nftnl_table *t = nftnl_table_alloc();

		memset(buf, 0, sizeof(buf));
		nftnl_table_set_str(t, NFTNL_TABLE_NAME, TABLE_NAME);
		nlh = req(&c, buf, NFT_MSG_GETTABLE, NFPROTO_INET, 0);
		nftnl_table_nlmsg_build_payload(nlh, t);
		nftnl_table_free(t);
		if (exchange(&c, nlh, READBACK_TABLE) < 0)
			goto out_close;
	}
	{
		struct nftnl_obj *o = nftnl_obj_alloc();

		memset(buf, 0, sizeof(buf));
		nftnl_obj_set_str(o, NFTNL_OBJ_TABLE, TABLE_NAME);
		nlh = req(&c, buf, NFT_MSG_GETOBJ, NFPROTO_INET, NLM_F_DUMP);
		nftnl_obj_nlmsg_build_payload(nlh, o);
		nftnl_obj_free(o);
		if (exchange(&c, nlh, READBACK_OBJS) < 0)
			goto out_close;
	}
	{
		struct nftnl_set *s = nftnl_set_alloc();

		memset(buf, 0, sizeof(buf));
		nftnl_set_set_str(s, NFTNL_SET_TABLE, TABLE_NAME);
		nlh = req(&c, buf, NFT_MSG_GETSET, NFPROTO_INET, NLM_F_DUMP);
		nftnl_set_nlmsg_build_payload(nlh, s);
		nftnl_set_free(s);
		if (exchange(&c, nlh, READBACK_SETS) < 0)
			goto out_close;
	}
	for (size_t i = 0; i < c.n_sets; i++) {
		struct nftnl_set *s = nftnl_set_alloc();

		memset(buf, 0, sizeof(buf));
		nftnl_set_set_str(s, NFTNL_SET_TABLE, TABLE_NAME);
		nftnl_set_set_str(s, NFTNL_SET_NAME, c.sets[i]);
		nlh = req(&c, buf, NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_DUMP);
		nftnl_set_elems_nlmsg_build_payload(nlh, s);
		nftnl_set_free(s);
		if (exchange(&c, nlh, READBACK_ELEMS) < 0)
			goto out_close;
	}
	memset(buf, 0, sizeof(buf));
	nlh = req(&c, buf, NFT_MSG_GETCHAIN, NFPROTO_INET, NLM_F_DUMP);
	if (exchange(&c, nlh, READBACK_CHAINS) < 0)
		goto out_close;
	{
		struct nftnl_rule *rl = nftnl_rule_alloc();

		memset(buf, 0, sizeof(buf));
		nftnl_rule_set_str(rl, NFTNL_RULE_TABLE, TABLE_NAME);
		nlh = req(&c, buf, NFT_MSG_GETRULE, NFPROTO_INET, NLM_F_DUMP);
		nftnl_rule_nlmsg_build_payload(nlh, rl);
		nftnl_rule_free(rl);
		if (exchange(&c, nlh, READBACK_RULES) < 0)
			goto out_close;
	}
	ret = 0;
out_close:
	if (c.out && fclose(c.out) != 0)
		ret = 1;
	if (c.nl)
		mnl_socket_close(c.nl);
	for (size_t i = 0; i < c.n_sets; i++)
		free(c.sets[i]);
out_plan:
	netns_free(ns);
	fuzz_plan_release(&fp);
	return ret;
}

static int queue_config(struct mnl_socket *nl, uint16_t num)
{
	char buf[512];
	struct nlmsghdr *nlh;

	memset(buf, 0, sizeof(buf));
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, num);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_BIND);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, 128);
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(NFQA_CFG_F_UID_GID | NFQA_CFG_F_GSO));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_UID_GID | NFQA_CFG_F_GSO));
	return mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0 ? -errno : 0;
}

static int capture_queue(const char *num_arg, const char *count_arg, const char *prefix)
{
	static char buf[65536] __attribute__((aligned(8)));
	const uint8_t opt = 0;   /* fuzz_queue's option byte: as msegd opens it */
	uint16_t num = (uint16_t)strtoul(num_arg, NULL, 10);
	unsigned long count = strtoul(count_arg, NULL, 10), got = 0;
	struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);

	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0 || queue_config(nl, num) < 0) {
		perror("nlcapture: queue");
		return 1;
	}
	while (got < count) {
		struct pollfd pfd = { .fd = mnl_socket_get_fd(nl), .events = POLLIN };
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
		char path[4096], vbuf[256];
		ssize_t n;
		FILE *f;

		if (poll(&pfd, 1, 10000) <= 0) {
			fprintf(stderr, "nlcapture: %lu of %lu packets before the timeout\n", got, count);
			break;
		}
		n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0) {
			perror("nlcapture: recv");
			break;
		}
		if ((size_t)n < sizeof(*nlh) || nlh->nlmsg_type == NLMSG_ERROR)
			continue;   /* the config ack */
		snprintf(path, sizeof(path), "%s-%lu", prefix, ++got);
		f = fopen(path, "wb");
		if (!f || fwrite(&opt, 1, 1, f) != 1 || fwrite(buf, 1, (size_t)n, f) != (size_t)n ||
		    fclose(f) != 0) {
			perror(path);
			break;
		}
		{
			struct nlattr *attr[NFQA_MAX + 1] = { 0 };

			if (nfq_nlmsg_parse(nlh, attr) >= 0 && attr[NFQA_PACKET_HDR]) {
				struct nfqnl_msg_packet_hdr *ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
				struct nlmsghdr *v;

				memset(vbuf, 0, sizeof(vbuf));
				v = nfq_nlmsg_put(vbuf, NFQNL_MSG_VERDICT, num);
				nfq_nlmsg_verdict_put(v, (int)ntohl(ph->packet_id), NF_ACCEPT);
				(void)mnl_socket_sendto(nl, v, v->nlmsg_len);
			}
		}
	}
	mnl_socket_close(nl);
	return got == count ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "readback") == 0)
		return capture_readback(argv[2], argv[3]);
	if (argc == 5 && strcmp(argv[1], "queue") == 0)
		return capture_queue(argv[2], argv[3], argv[4]);
	fprintf(stderr, "usage: nlcapture readback EP OUT | nlcapture queue NUM COUNT PREFIX\n");
	return 2;
}
