/* conntrack: walk a namespace's connection tracking table over ctnetlink
 * and delete selected entries.
 *
 * One netlink socket, opened inside the namespace for the call (like
 * `conntrack -L` / `conntrack -D`): an IPCTNL_MSG_CT_GET dump of every
 * family; for each entry the caller's callback decides, and the delete
 * message (IPCTNL_MSG_CT_DELETE with the entry's own CTA_TUPLE_ORIG,
 * CTA_ZONE and CTA_ID attributes, copied as the dump gave them) is built
 * right away into a buffer. After the dump the deletes go out in chunks of
 * many messages per sendmsg(), each acked, so that the count of deleted
 * entries is exact and an entry that went away meanwhile (ENOENT) is
 * told apart from a failure.
 *
 * Before a walk, the caller may ask how many entries the namespace has
 * (IPCTNL_MSG_CT_GET_STATS: the namespace's own count, kept by the kernel,
 * answered without a look at the table): a dump iterates the whole global
 * conntrack hash, shared by all namespaces, even when the namespace has no
 * entry at all. That request goes over the namespace's netfilter socket,
 * which ctnetlink shares with nf_tables. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

#include "mseg/kernel/conntrack.h"
#include "mseg/kernel/nft.h"
#include "mseg/util/clock.h"
#include "kernel/batch.h"
#include "kernel/netns.h"

#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

#define CT_RXBUF_SIZE (64u << 10)
/* Deletes per sendmsg(): each is acked in an skb of its own, whose
 * accounted size (~1 KiB) is far above its length; the receive buffer
 * must hold a chunk's acks. */
#define CT_CHUNK_MSGS 256
#define CT_RCVBUF (1u << 20)
#define CT_RECV_TIMEOUT_SEC 5

struct ct_sock {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
	char *rx;
};

/* The delete messages, back to back; built during the dump. */
struct ct_dels {
	char *buf;
	size_t len, cap;
	size_t n;
};

struct ct_dump_ctx {
	ct_select_fn select;
	void *data;
	struct ct_dels *dels;
	struct ct_walk_stats *stats;
	uint32_t seq;
	int error;                   /* -ENOMEM while building */
};

static void ct_sock_close(struct ct_sock *s)
{
	if (s->nl)
		mnl_socket_close(s->nl);
	s->nl = NULL;
	free(s->rx);
	s->rx = NULL;
}

static int ct_sock_open(struct netns *ns, struct ct_sock *s)
{
	struct timeval tv = { .tv_sec = CT_RECV_TIMEOUT_SEC };
	int fd, one = 1, rcvbuf, r;

	memset(s, 0, sizeof(*s));
	s->rx = malloc(CT_RXBUF_SIZE);
	if (!s->rx)
		return -ENOMEM;
	fd = netns_socket(ns, AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER);
	if (fd < 0) {
		r = fd;
		goto out_free;
	}
	s->nl = mnl_socket_fdopen(fd);
	if (!s->nl) {
		r = errno ? -errno : -ENOMEM;
		close(fd);
		goto out_free;
	}
	if (mnl_socket_bind(s->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		goto out_free;
	}
	/* acks without an echo of each delete; a stuck kernel does not hang
	 * the daemon's loop forever */
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	rcvbuf = CT_RCVBUF;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	s->portid = mnl_socket_get_portid(s->nl);
	s->seq = (uint32_t)clock_mono_ns() | 1;
	return 0;

out_free:
	ct_sock_close(s);
	return r;
}

static int ct_dels_reserve(struct ct_dels *d, size_t more)
{
	size_t cap;
	char *b;

	if (d->len + more <= d->cap)
		return 0;
	cap = d->cap ? d->cap * 2 : 64u << 10;
	while (cap < d->len + more)
		cap *= 2;
	b = realloc(d->buf, cap);
	if (!b)
		return -ENOMEM;
	d->buf = b;
	d->cap = cap;
	return 0;
}

static void addr_from_attr(struct mseg_addr *a, const struct nlattr *at, int family)
{
	size_t len = family == AF_INET ? 4 : 16;

	memset(a, 0, sizeof(*a));
	a->family = (uint8_t)family;
	if (mnl_attr_get_payload_len(at) >= len)
		memcpy(a->bytes, mnl_attr_get_payload(at), len);
}

/* CTA_TUPLE_ORIG -> @t; false when it lacks what we need. */
static bool ct_tuple_parse(const struct nlattr *orig, struct ct_tuple *t)
{
	const struct nlattr *at, *in;
	bool have_ip = false, have_proto = false;

	memset(t, 0, sizeof(*t));
	mnl_attr_for_each_nested(at, orig) {
		switch (mnl_attr_get_type(at)) {
		case CTA_TUPLE_IP:
			mnl_attr_for_each_nested(in, at) {
				switch (mnl_attr_get_type(in)) {
				case CTA_IP_V4_SRC:
					addr_from_attr(&t->src, in, AF_INET);
					break;
				case CTA_IP_V4_DST:
					addr_from_attr(&t->dst, in, AF_INET);
					break;
				case CTA_IP_V6_SRC:
					addr_from_attr(&t->src, in, AF_INET6);
					break;
				case CTA_IP_V6_DST:
					addr_from_attr(&t->dst, in, AF_INET6);
					break;
				}
			}
			have_ip = t->src.family && t->src.family == t->dst.family;
			break;
		case CTA_TUPLE_PROTO:
			mnl_attr_for_each_nested(in, at) {
				switch (mnl_attr_get_type(in)) {
				case CTA_PROTO_NUM:
					t->proto = mnl_attr_get_u8(in);
					have_proto = true;
					break;
				case CTA_PROTO_SRC_PORT:
					t->sport = ntohs(mnl_attr_get_u16(in));
					break;
				case CTA_PROTO_DST_PORT:
					t->dport = ntohs(mnl_attr_get_u16(in));
					break;
				}
			}
			break;
		}
	}
	return have_ip && have_proto;
}

/* The delete of the entry @nlh describes: its family, original tuple, zone
 * and id, copied. */
static int ct_del_append(struct ct_dump_ctx *c, const struct nlmsghdr *nlh,
			 const struct nlattr *orig, const struct nlattr *zone,
			 const struct nlattr *id)
{
	const struct nfgenmsg *src = mnl_nlmsg_get_payload(nlh);
	struct nlmsghdr *del;
	struct nfgenmsg *nfg;
	size_t need = MNL_ALIGN(sizeof(struct nlmsghdr)) + MNL_ALIGN(sizeof(*nfg)) +
		      MNL_ALIGN(orig->nla_len) + (zone ? MNL_ALIGN(zone->nla_len) : 0) +
		      (id ? MNL_ALIGN(id->nla_len) : 0);
	int r;

	r = ct_dels_reserve(c->dels, need);
	if (r < 0)
		return r;
	del = mnl_nlmsg_put_header(c->dels->buf + c->dels->len);
	del->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE;
	del->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nfg = mnl_nlmsg_put_extra_header(del, sizeof(*nfg));
	nfg->nfgen_family = src->nfgen_family;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	/* the attributes as the kernel dumped them (nested flag included) */
	mnl_attr_put(del, orig->nla_type, mnl_attr_get_payload_len(orig), mnl_attr_get_payload(orig));
	if (zone)
		mnl_attr_put(del, zone->nla_type, mnl_attr_get_payload_len(zone),
			     mnl_attr_get_payload(zone));
	if (id)
		mnl_attr_put(del, id->nla_type, mnl_attr_get_payload_len(id), mnl_attr_get_payload(id));
	c->dels->len += del->nlmsg_len;
	c->dels->n++;
	return 0;
}

static int ct_dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ct_dump_ctx *c = data;
	const struct nlattr *at, *orig = NULL, *zone = NULL, *id = NULL;
	struct ct_tuple t;

	mnl_attr_for_each(at, nlh, sizeof(struct nfgenmsg)) {
		switch (mnl_attr_get_type(at)) {
		case CTA_TUPLE_ORIG:
			orig = at;
			break;
		case CTA_ZONE:
			zone = at;
			break;
		case CTA_ID:
			id = at;
			break;
		}
	}
	c->stats->seen++;
	if (!orig || !ct_tuple_parse(orig, &t) || !c->select(&t, c->data))
		return MNL_CB_OK;
	c->stats->selected++;
	if (ct_del_append(c, nlh, orig, zone, id) < 0) {
		c->error = -ENOMEM;
		return MNL_CB_ERROR;
	}
	return MNL_CB_OK;
}

static int ct_dump(struct ct_sock *s, struct ct_dump_ctx *c, struct mseg_err *err)
{
	char req[MNL_ALIGN(sizeof(struct nlmsghdr)) + MNL_ALIGN(sizeof(struct nfgenmsg))];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);
	struct nfgenmsg *nfg;
	ssize_t n;
	int r;

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = c->seq = s->seq++;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC;   /* every family */
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	if (mnl_socket_sendto(s->nl, nlh, nlh->nlmsg_len) < 0)
		return err_setf(err, errno, "conntrack dump: %s", strerror(errno));
	for (;;) {
		n = mnl_socket_recvfrom(s->nl, s->rx, CT_RXBUF_SIZE);
		if (n < 0)
			return err_setf(err, errno, "conntrack dump: %s", strerror(errno));
		r = mnl_cb_run(s->rx, (size_t)n, c->seq, s->portid, ct_dump_cb, c);
		if (r == MNL_CB_STOP)
			return 0;
		if (r < 0) {
			if (c->error)
				return err_setf(err, -c->error, "conntrack dump: %s",
						strerror(-c->error));
			return err_setf(err, errno, "conntrack dump: %s", strerror(errno));
		}
	}
}

/* Send the deletes in chunks; count the acks. */
static int ct_delete_all(struct ct_sock *s, struct ct_dels *d, struct ct_walk_stats *st,
			 struct mseg_err *err)
{
	size_t off = 0;
	int first_err = 0;

	while (off < d->len) {
		size_t end = off, n_msgs = 0, acked = 0;

		/* number the chunk's messages and find where it ends */
		while (end < d->len && n_msgs < CT_CHUNK_MSGS) {
			struct nlmsghdr *m = (struct nlmsghdr *)(d->buf + end);

			m->nlmsg_seq = s->seq++;
			end += MNL_ALIGN(m->nlmsg_len);
			n_msgs++;
		}
		if (mnl_socket_sendto(s->nl, d->buf + off, end - off) < 0)
			return err_setf(err, errno, "conntrack delete: %s", strerror(errno));
		while (acked < n_msgs) {
			ssize_t n = mnl_socket_recvfrom(s->nl, s->rx, CT_RXBUF_SIZE);
			const struct nlmsghdr *m = (const struct nlmsghdr *)s->rx;
			int len;

			if (n < 0)
				return err_setf(err, errno, "conntrack delete: %s", strerror(errno));
			len = (int)n;
			for (; mnl_nlmsg_ok(m, len); m = mnl_nlmsg_next(m, &len)) {
				const struct nlmsgerr *e;

				if (m->nlmsg_type != NLMSG_ERROR)
					continue;
				e = mnl_nlmsg_get_payload(m);
				acked++;
				if (e->error == 0)
					st->deleted++;
				else if (e->error != -ENOENT && !first_err)
					first_err = e->error;
			}
		}
		off = end;
	}
	if (first_err)
		return err_setf(err, -first_err, "conntrack delete: %s", strerror(-first_err));
	return 0;
}

static int ct_stats_attr_cb(const struct nlattr *at, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_get_type(at) == CTA_STATS_GLOBAL_ENTRIES &&
	    mnl_attr_validate(at, MNL_TYPE_U32) == 0)
		tb[CTA_STATS_GLOBAL_ENTRIES] = at;
	return MNL_CB_OK;
}

struct ct_count_ctx {
	bool found;
	uint32_t count;
};

static int ct_stats_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[CTA_STATS_GLOBAL_MAX + 1] = { 0 };
	struct ct_count_ctx *c = data;

	if (nlh->nlmsg_type != ((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET_STATS) ||
	    mnl_nlmsg_get_payload_len(nlh) < sizeof(struct nfgenmsg))
		return MNL_CB_OK;
	if (mnl_attr_parse(nlh, sizeof(struct nfgenmsg), ct_stats_attr_cb, tb) < 0)
		return MNL_CB_OK;
	if (tb[CTA_STATS_GLOBAL_ENTRIES]) {
		c->count = ntohl(mnl_attr_get_u32(tb[CTA_STATS_GLOBAL_ENTRIES]));
		c->found = true;
	}
	return MNL_CB_OK;
}

int conntrack_count(struct netns *ns, uint32_t *ret_count, struct mseg_err *err)
{
	char req[MNL_ALIGN(sizeof(struct nlmsghdr)) + MNL_ALIGN(sizeof(struct nfgenmsg))];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);
	struct ct_count_ctx c = { 0 };
	struct nfgenmsg *nfg;
	int r;

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET_STATS;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = netns_seq_reserve(ns, 1);
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	r = nl_request(ns, nlh, ct_stats_cb, &c);
	if (r < 0)
		return err_setf(err, -r, "conntrack count in '%s': %s", netns_path(ns),
				strerror(-r));
	if (!c.found)
		return err_setf(err, EPROTO, "conntrack count in '%s': no entry count in the answer",
				netns_path(ns));
	*ret_count = c.count;
	return 0;
}

int conntrack_revoke(struct netns *ns, ct_select_fn select, void *data,
		     struct ct_walk_stats *ret, struct mseg_err *err)
{
	struct ct_dels dels = { 0 };
	struct ct_sock s;
	struct ct_dump_ctx c = { .select = select, .data = data, .dels = &dels, .stats = ret };
	uint64_t t0;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = ct_sock_open(ns, &s);
	if (r < 0)
		return err_setf(err, -r, "conntrack socket in '%s': %s", netns_path(ns),
				strerror(-r));
	t0 = clock_mono_ns();
	r = ct_dump(&s, &c, err);
	ret->dump_ns = clock_mono_ns() - t0;
	if (r < 0)
		goto out_free;
	t0 = clock_mono_ns();
	r = ct_delete_all(&s, &dels, ret, err);
	ret->delete_ns = clock_mono_ns() - t0;

out_free:
	free(dels.buf);
	ct_sock_close(&s);
	return r;
}
