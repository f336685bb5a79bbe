/* bench_revoke: the cost of revoking established connections in a namespace
 * whose conntrack table holds 100,000 entries, against baselines in the same
 * run:
 *
 *  1. plain dump of the table (nothing selected, nothing deleted): the
 *     floor of any walk;
 *  2. the revocation walk as the reconciler does it: every entry looked up
 *     in an ingress plan of 1,000 allow entries (check_index_admits, the
 *     index built inside the timing), 1% of
 *     the entries no longer admitted and deleted;
 *  3. deleting every entry one by one (conntrack_revoke selecting all)
 *     against the kernel's own flush of the table (one IPCTNL_MSG_CT_DELETE
 *     without a tuple, what `conntrack -F` sends).
 * Entries are injected over ctnetlink (IPCTNL_MSG_CT_NEW, TCP established,
 * 10.64.0.0 + i -> 10.200.0.3 tcp/5432). Median of --runs runs; the table
 * is refilled before each.
 *
 *   bench_revoke [--entries N] [--runs N]
 * Needs root; prints a note and exits 0 otherwise. The namespace is private
 * to this process and vanishes with it. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>

#include "mseg/compile/check.h"
#include "mseg/kernel/conntrack.h"
#include "mseg/kernel/nft.h"
#include "mseg/util/clock.h"
#include "bench_util.h"

#define PLAN_ENTRIES 1000

static uint64_t median(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

/* ---- injecting entries over ctnetlink ---- */

static void put_tuple(struct nlmsghdr *nlh, uint16_t type, uint32_t src, uint32_t dst,
		      uint16_t sport, uint16_t dport)
{
	struct nlattr *t = mnl_attr_nest_start(nlh, type), *ip, *pr;

	ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	mnl_attr_put_u32(nlh, CTA_IP_V4_SRC, htonl(src));
	mnl_attr_put_u32(nlh, CTA_IP_V4_DST, htonl(dst));
	mnl_attr_nest_end(nlh, ip);
	pr = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_TCP);
	mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(sport));
	mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(dport));
	mnl_attr_nest_end(nlh, pr);
	mnl_attr_nest_end(nlh, t);
}

#define PEER_BASE (10u << 24 | 64u << 16)
#define LOCAL_ADDR (10u << 24 | 200u << 16 | 3)

/* Entries @from..@to-1: peer PEER_BASE + i, established, 1 h. */
static int ct_fill(struct netns *ns, size_t from, size_t to)
{
	size_t bufsize = 64u << 10;   /* under the socket send buffer */
	char *buf = malloc(bufsize), *rx = malloc(1u << 16);
	struct mnl_socket *nl = NULL;
	uint32_t seq = 1;
	int fd, r = 0;

	if (!buf || !rx) {
		r = -ENOMEM;
		goto out;
	}
	fd = netns_socket(ns, AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER);
	if (fd < 0) {
		r = fd;
		goto out;
	}
	nl = mnl_socket_fdopen(fd);
	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		if (!nl)
			close(fd);
		goto out;
	}
	for (size_t i = from; i < to;) {
		size_t len = 0, n = 0, acked = 0;

		while (i < to && len + 512 < bufsize && n < 128) {
			struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf + len);
			struct nfgenmsg *nfg;
			struct nlattr *pi, *tcp;
			struct nf_ct_tcp_flags fl = { .flags = 0xff, .mask = 0xff };
			uint32_t peer = PEER_BASE + (uint32_t)i;
			uint16_t sport = (uint16_t)(20000 + i % 40000);

			nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
			nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;
			nlh->nlmsg_seq = seq++;
			nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
			nfg->nfgen_family = AF_INET;
			nfg->version = NFNETLINK_V0;
			put_tuple(nlh, CTA_TUPLE_ORIG, peer, LOCAL_ADDR, sport, 5432);
			put_tuple(nlh, CTA_TUPLE_REPLY, LOCAL_ADDR, peer, 5432, sport);
			mnl_attr_put_u32(nlh, CTA_TIMEOUT, htonl(3600));
			mnl_attr_put_u32(nlh, CTA_STATUS, htonl(IPS_CONFIRMED | IPS_ASSURED |
								IPS_SEEN_REPLY));
			pi = mnl_attr_nest_start(nlh, CTA_PROTOINFO);
			tcp = mnl_attr_nest_start(nlh, CTA_PROTOINFO_TCP);
			mnl_attr_put_u8(nlh, CTA_PROTOINFO_TCP_STATE, TCP_CONNTRACK_ESTABLISHED);
			mnl_attr_put(nlh, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, sizeof(fl), &fl);
			mnl_attr_put(nlh, CTA_PROTOINFO_TCP_FLAGS_REPLY, sizeof(fl), &fl);
			mnl_attr_nest_end(nlh, tcp);
			mnl_attr_nest_end(nlh, pi);
			len += MNL_ALIGN(nlh->nlmsg_len);
			n++;
			i++;
		}
		if (mnl_socket_sendto(nl, buf, len) < 0) {
			r = -errno;
			goto out;
		}
		while (acked < n) {
			ssize_t got = mnl_socket_recvfrom(nl, rx, 1u << 16);
			const struct nlmsghdr *m = (const struct nlmsghdr *)rx;
			int left;

			if (got < 0) {
				r = -errno;
				goto out;
			}
			left = (int)got;
			for (; mnl_nlmsg_ok(m, left); m = mnl_nlmsg_next(m, &left)) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(m);

				if (m->nlmsg_type != NLMSG_ERROR)
					continue;
				acked++;
				if (e->error && e->error != -EEXIST && !r)
					r = e->error;
			}
		}
		if (r < 0)
			goto out;
	}
out:
	if (nl)
		mnl_socket_close(nl);
	free(buf);
	free(rx);
	return r;
}

/* The kernel's flush: IPCTNL_MSG_CT_DELETE without a tuple. */
static int ct_flush(struct netns *ns, uint64_t *ret_ns)
{
	char buf[8192];
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;
	uint64_t t0;
	ssize_t n;
	int fd, r;

	fd = netns_socket(ns, AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER);
	if (fd < 0)
		return fd;
	nl = mnl_socket_fdopen(fd);
	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		if (nl)
			mnl_socket_close(nl);
		else
			close(fd);
		return r;
	}
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = 1;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_INET;
	nfg->version = NFNETLINK_V0;
	t0 = clock_mono_ns();
	r = 0;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		r = -errno;
	else if ((n = mnl_socket_recvfrom(nl, buf, sizeof(buf))) < 0)
		r = -errno;
	else if (mnl_cb_run(buf, (size_t)n, 1, mnl_socket_get_portid(nl), NULL, NULL) < 0)
		r = -errno;
	*ret_ns = clock_mono_ns() - t0;
	mnl_socket_close(nl);
	return r;
}

/* ---- selections ---- */

static bool select_none(const struct ct_tuple *t, void *data)
{
	return false;
}

static bool select_all(const struct ct_tuple *t, void *data)
{
	return true;
}

struct walk_ctx {
	struct mseg_dir_plan dp;
	struct check_index *ix;       /* built per walk, as the reconciler does */
	struct mseg_addr local;
};

/* What the reconciler's selection does for an ingress direction that lost
 * entries: the local side owns dst, the peer is src, look it up. */
static bool select_revoke(const struct ct_tuple *t, void *data)
{
	struct walk_ctx *c = data;

	if (t->dst.family != c->local.family || memcmp(t->dst.bytes, c->local.bytes, 4) != 0)
		return false;
	return !check_index_admits(c->ix, &t->src, t->proto, t->dport);
}

/* PLAN_ENTRIES ranges that cover PEER_BASE .. + @n except every 100th
 * address: 1% of the entries lose their allow. */
static int plan_make(struct walk_ctx *c, size_t n)
{
	size_t per = n / PLAN_ENTRIES;

	memset(c, 0, sizeof(*c));
	c->local.family = AF_INET;
	c->local.bytes[0] = 10;
	c->local.bytes[1] = 200;
	c->local.bytes[3] = 3;
	c->dp.isolated = true;
	c->dp.entries = calloc(PLAN_ENTRIES, sizeof(*c->dp.entries));
	if (!c->dp.entries)
		return -ENOMEM;
	for (size_t k = 0; k < PLAN_ENTRIES; k++) {
		struct mseg_entry *e = &c->dp.entries[k];
		uint32_t lo = PEER_BASE + (uint32_t)(k * per) + 1, hi = PEER_BASE + (uint32_t)((k + 1) * per) - 1;

		/* every block of @per addresses: its first is not admitted */
		e->lo.family = e->hi.family = AF_INET;
		for (int b = 0; b < 4; b++) {
			e->lo.bytes[b] = (uint8_t)(lo >> (24 - 8 * b));
			e->hi.bytes[b] = (uint8_t)(hi >> (24 - 8 * b));
		}
		e->proto = IPPROTO_TCP;
		e->port_lo = e->port_hi = 5432;
	}
	c->dp.n_entries = PLAN_ENTRIES;
	return 0;
}

static int parse_size(const char *s, size_t *ret)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (!*s || *end || v == 0)
		return -EINVAL;
	*ret = v;
	return 0;
}

int main(int argc, char **argv)
{
	size_t entries = 100000, runs = 3;
	uint64_t *t_dump, *t_walk, *t_all, *t_flush;
	struct ct_walk_stats st;
	struct walk_ctx wc;
	struct netns *ns = NULL;
	char path[64];
	int fd, r;

	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "--entries") == 0 &&
		    parse_size(argv[i + 1], &entries) == 0)
			i++;
		else if (i + 1 < argc && strcmp(argv[i], "--runs") == 0 &&
			 parse_size(argv[i + 1], &runs) == 0)
			i++;
		else {
			fprintf(stderr, "usage: bench_revoke [--entries N] [--runs N]\n");
			return 2;
		}
	}
	if (geteuid() != 0) {
		printf("bench_revoke: needs root, skipped\n");
		return 0;
	}
	if (entries < PLAN_ENTRIES * 2) {
		fprintf(stderr, "bench_revoke: --entries must be at least %d\n", PLAN_ENTRIES * 2);
		return 2;
	}
	fd = ns_create();
	if (fd < 0) {
		fprintf(stderr, "bench_revoke: namespace: %s\n", strerror(-fd));
		return 1;
	}
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)getpid(), fd);
	r = netns_open(path, &ns);
	if (r < 0 || plan_make(&wc, entries) < 0) {
		fprintf(stderr, "bench_revoke: setup: %s\n", strerror(r < 0 ? -r : ENOMEM));
		return 1;
	}
	t_dump = calloc(runs, sizeof(uint64_t));
	t_walk = calloc(runs, sizeof(uint64_t));
	t_all = calloc(runs, sizeof(uint64_t));
	t_flush = calloc(runs, sizeof(uint64_t));
	if (!t_dump || !t_walk || !t_all || !t_flush)
		return 1;

	printf("conntrack entries: %zu in one namespace; ingress plan: %d allow entries; "
	       "median of %zu runs\n", entries, PLAN_ENTRIES, runs);
	for (size_t run = 0; run < runs; run++) {
		uint64_t t0;

		r = ct_fill(ns, 0, entries);
		if (r < 0)
			goto fail;
		t0 = clock_mono_ns();
		r = conntrack_revoke(ns, select_none, NULL, &st, NULL);
		t_dump[run] = clock_mono_ns() - t0;
		if (r < 0 || st.seen < entries)
			goto fail_count;
		t0 = clock_mono_ns();
		wc.ix = check_index_new(&wc.dp);
		r = wc.ix ? conntrack_revoke(ns, select_revoke, &wc, &st, NULL) : -ENOMEM;
		wc.ix = check_index_free(wc.ix);
		t_walk[run] = clock_mono_ns() - t0;
		if (r < 0 || st.deleted != entries / (entries / PLAN_ENTRIES))
			goto fail_count;
		r = ct_fill(ns, 0, entries);   /* the 1% again */
		if (r < 0)
			goto fail;
		t0 = clock_mono_ns();
		r = conntrack_revoke(ns, select_all, NULL, &st, NULL);
		t_all[run] = clock_mono_ns() - t0;
		if (r < 0 || st.deleted != entries)
			goto fail_count;
		r = ct_fill(ns, 0, entries);
		if (r < 0)
			goto fail;
		r = ct_flush(ns, &t_flush[run]);
		if (r < 0)
			goto fail;
	}
	{
		double dump = (double)median(t_dump, runs) / 1e6, walk = (double)median(t_walk, runs) / 1e6;
		double all = (double)median(t_all, runs) / 1e6, flush = (double)median(t_flush, runs) / 1e6;

		printf("  plain dump (baseline)                         %9.1f ms\n", dump);
		printf("  revocation walk, %zu%% revoked (%zu deletes)   %9.1f ms   %.2fx the dump\n",
		       100 / (entries / PLAN_ENTRIES), entries / (entries / PLAN_ENTRIES), walk,
		       walk / dump);
		printf("  delete every entry, one by one               %9.1f ms\n", all);
		printf("  kernel flush of the table (baseline)          %9.1f ms   one-by-one is %.2fx\n",
		       flush, all / flush);
	}
	netns_free(ns);
	return 0;

fail_count:
	fprintf(stderr, "bench_revoke: walk: %s (seen %llu, deleted %llu)\n",
		r < 0 ? strerror(-r) : "unexpected count", (unsigned long long)st.seen,
		(unsigned long long)st.deleted);
	return 1;
fail:
	fprintf(stderr, "bench_revoke: %s\n", strerror(-r));
	return 1;
}
