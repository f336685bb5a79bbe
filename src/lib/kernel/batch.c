/* batch: build one nfnetlink batch (a kernel transaction), send it in one
 * sendmsg(), read every ack, and map a failing message back to what
 * produced it.
 *
 * The batch lives in libnftnl's paged buffer (struct nftnl_batch): pages of
 * BATCH_PAGE_SIZE, each with room for one more message of up to 64 KiB, so
 * a message never straddles pages. All pages go out in a single sendmsg()
 * with an iovec: the kernel sees one skb, hence one transaction, however
 * many elements it holds. For that the socket's send buffer is raised to
 * the batch size (SO_SNDBUFFORCE as root, as nft does).
 *
 * Every message carries NLM_F_ACK, so the kernel answers each one: success
 * or its error. nfnetlink processes the batch synchronously inside our
 * sendmsg() and queues all acks before it returns; we read until every
 * message is answered, or the kernel reports a batch-wide error (on the
 * batch-begin sequence number), then drain what is left. With extended
 * acks the error carries the offset of the failing attribute: for an
 * element message that is the element, which we map to its entry and so
 * to the policy and rule it came from. */
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/common.h>

#include "mseg/util/clock.h"
#include "mseg/compile/render_text.h"
#include "kernel/batch.h"
#include "kernel/netns.h"
#include "kernel/render_nl.h"
#include "util/vec.h"

#define BATCH_PAGE_SIZE (128u << 10)
/* one message may overrun a page by this much: the largest we build */
#define BATCH_MSG_MAX (UINT16_MAX + 4096u)
#define BATCH_PAGE_BYTES (BATCH_PAGE_SIZE + BATCH_MSG_MAX)
/* how long we wait for the kernel's acks: it has queued them all before
 * sendmsg() returns, so this only guards against the unexpected */
#define ACK_TIMEOUT_MS 10000

#ifndef NLM_F_CAPPED
#define NLM_F_CAPPED 0x100
#endif
#ifndef NLM_F_ACK_TLVS
#define NLM_F_ACK_TLVS 0x200
#endif
#ifndef NLMSGERR_ATTR_MSG
#define NLMSGERR_ATTR_MSG 1
#define NLMSGERR_ATTR_OFFS 2
#endif

struct nl_msg_rec {
	uint32_t seq;
	uint16_t type;               /* NFT_MSG_* */
	uint8_t kind;                /* enum nl_msg_kind */
	bool acked;
	const char *what;
	char name[40];
	size_t elem_first, elem_count;   /* into nl_batch.elem_src */
};

struct nl_batch {
	struct netns *ns;
	struct nftnl_batch *nb;
	uint32_t seq_begin;
	bool open;                   /* a message is being built */
	bool ended;                  /* batch end appended */
	bool committed;
	int error;                   /* sticky build error */
	int n_pages;                 /* pages zeroed so far */
	struct nl_msg_rec *recs;
	size_t n_recs, cap_recs;
	const struct mseg_entry **elem_src;
	size_t n_elem_src, cap_elem_src;
	void **adopted;
	size_t n_adopted, cap_adopted;
};

/* libmnl 1.0.4 leaves attribute padding as it finds it, and libnftnl's
 * pages come from malloc(): zero each page once, when it becomes the
 * current one, so that no stale heap bytes go to the kernel. */
static int batch_advance(struct nl_batch *b)
{
	if (nftnl_batch_update(b->nb) < 0)
		return -ENOMEM;
	if (nftnl_batch_iovec_len(b->nb) != b->n_pages) {
		b->n_pages = nftnl_batch_iovec_len(b->nb);
		memset(nftnl_batch_buffer(b->nb), 0,
		       BATCH_PAGE_BYTES - nftnl_batch_buffer_len(b->nb));
	}
	return 0;
}

struct nl_batch *nl_batch_new(struct netns *ns)
{
	struct nl_batch *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->ns = ns;
	b->nb = nftnl_batch_alloc(BATCH_PAGE_SIZE, BATCH_MSG_MAX);
	if (!b->nb) {
		free(b);
		return NULL;
	}
	b->seq_begin = netns_seq_reserve(ns, 1);
	memset(nftnl_batch_buffer(b->nb), 0, BATCH_PAGE_BYTES);
	b->n_pages = 1;
	nftnl_batch_begin(nftnl_batch_buffer(b->nb), b->seq_begin);
	if (batch_advance(b) < 0) {
		nl_batch_free(b);
		return NULL;
	}
	return b;
}

struct nl_batch *nl_batch_free(struct nl_batch *b)
{
	if (!b)
		return NULL;
	if (b->nb)
		nftnl_batch_free(b->nb);
	free(b->recs);
	free(b->elem_src);
	for (size_t i = 0; i < b->n_adopted; i++)
		free(b->adopted[i]);
	free(b->adopted);
	free(b);
	return NULL;
}

int nl_batch_adopt(struct nl_batch *b, void *p)
{
	if (!p)
		return 0;
	if (VEC_RESERVE(b->adopted, b->cap_adopted, b->n_adopted + 1) < 0) {
		free(p);
		return -ENOMEM;
	}
	b->adopted[b->n_adopted++] = p;
	return 0;
}

size_t nl_batch_msg_count(const struct nl_batch *b)
{
	return b->n_recs;
}

struct nlmsghdr *nl_batch_msg_start(struct nl_batch *b, uint16_t type, uint16_t family,
				    uint16_t flags)
{
	struct nl_msg_rec *rec;

	if (b->error || b->ended || b->open)
		return NULL;
	if (VEC_RESERVE(b->recs, b->cap_recs, b->n_recs + 1) < 0) {
		b->error = -ENOMEM;
		return NULL;
	}
	rec = &b->recs[b->n_recs];
	memset(rec, 0, sizeof(*rec));
	rec->seq = netns_seq_reserve(b->ns, 1);
	rec->type = type;
	rec->elem_first = b->n_elem_src;
	b->open = true;
	return nftnl_nlmsg_build_hdr(nftnl_batch_buffer(b->nb), type, family,
				     flags | NLM_F_ACK, rec->seq);
}

int nl_batch_elem_src(struct nl_batch *b, const struct mseg_entry *e)
{
	if (!b->open)
		return -EINVAL;
	if (VEC_RESERVE(b->elem_src, b->cap_elem_src, b->n_elem_src + 1) < 0)
		return b->error = -ENOMEM;
	b->elem_src[b->n_elem_src++] = e;
	return 0;
}

int nl_batch_msg_end(struct nl_batch *b, enum nl_msg_kind kind, const char *what,
		     const char *name)
{
	struct nl_msg_rec *rec;

	if (!b->open)
		return b->error ? b->error : -EINVAL;
	b->open = false;
	if (b->error)
		return b->error;
	rec = &b->recs[b->n_recs++];
	rec->kind = (uint8_t)kind;
	rec->what = what;
	snprintf(rec->name, sizeof(rec->name), "%s", name ? name : "");
	rec->elem_count = b->n_elem_src - rec->elem_first;
	/* moves the message to a new page when it overran this one */
	if (batch_advance(b) < 0)
		return b->error = -ENOMEM;
	return 0;
}

static int batch_finish(struct nl_batch *b)
{
	if (b->ended)
		return 0;
	if (b->open)
		return -EINVAL;
	nftnl_batch_end(nftnl_batch_buffer(b->nb), netns_seq_reserve(b->ns, 1));
	if (batch_advance(b) < 0)
		return -ENOMEM;
	b->ended = true;
	return 0;
}

/* ---- acks ---- */

struct ack_state {
	struct nl_batch *b;
	size_t n_acked;
	int batch_error;             /* error on the batch-begin message */
	size_t err_rec;              /* first failing message, or SIZE_MAX */
	int err_code;
	uint32_t err_offset;         /* offset of the failing attribute; 0 = unknown */
	char err_msg[128];           /* the kernel's extack text */
};

struct extack {
	const char *msg;
	uint32_t offset;
};

static int extack_attr_cb(const struct nlattr *attr, void *data)
{
	struct extack *x = data;

	switch (mnl_attr_get_type(attr)) {
	case NLMSGERR_ATTR_MSG:
		if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
			x->msg = mnl_attr_get_str(attr);
		break;
	case NLMSGERR_ATTR_OFFS:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
			x->offset = mnl_attr_get_u32(attr);
		break;
	}
	return MNL_CB_OK;
}

static void extack_parse(const struct nlmsghdr *nlh, const struct nlmsgerr *e, struct extack *x)
{
	size_t off = sizeof(*e);

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) {
		if (e->msg.nlmsg_len < sizeof(struct nlmsghdr))
			return;
		off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
	}
	if (mnl_nlmsg_get_payload_len(nlh) <= off)
		return;
	(void)mnl_attr_parse(nlh, (unsigned)off, extack_attr_cb, x);
}

static int ack_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ack_state *a = data;
	struct nl_batch *b = a->b;
	const struct nlmsgerr *e;
	struct extack x = { 0 };
	size_t i;
	int error;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e)))
		return MNL_CB_OK;   /* truncated: cannot be placed */
	e = mnl_nlmsg_get_payload(nlh);
	/* a -errno, or 0 for success; anything else (INT_MIN would not even
	 * negate) is an I/O error */
	error = e->error <= 0 && e->error > -4096 ? e->error : -EIO;
	if (nlh->nlmsg_seq == b->seq_begin) {
		if (error && !a->batch_error)
			a->batch_error = error;
		extack_parse(nlh, e, &x);
		if (x.msg && !a->err_msg[0])
			snprintf(a->err_msg, sizeof(a->err_msg), "%s", x.msg);
		return MNL_CB_OK;
	}
	/* sequence numbers are consecutive, unless they wrapped mid-batch */
	i = b->n_recs ? nlh->nlmsg_seq - b->recs[0].seq : 0;
	if (i >= b->n_recs || b->recs[i].seq != nlh->nlmsg_seq) {
		for (i = 0; i < b->n_recs; i++)
			if (b->recs[i].seq == nlh->nlmsg_seq)
				break;
		if (i == b->n_recs)
			return MNL_CB_OK;   /* an old exchange's late reply */
	}
	if (!b->recs[i].acked) {
		b->recs[i].acked = true;
		a->n_acked++;
	}
	if (error && (a->err_rec == SIZE_MAX || i < a->err_rec)) {
		a->err_rec = i;
		a->err_code = error;
		extack_parse(nlh, e, &x);
		a->err_offset = x.offset;
		snprintf(a->err_msg, sizeof(a->err_msg), "%s", x.msg ? x.msg : "");
	}
	return MNL_CB_OK;
}

static int acks_read(struct netns *ns, struct ack_state *a, bool wait)
{
	static mnl_cb_t ctl[NLMSG_MIN_TYPE] = { [NLMSG_ERROR] = ack_cb };
	int fd = mnl_socket_get_fd(ns->nl);
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct netns_rxbuf rx;
	struct sockaddr_nl from = { 0 };
	socklen_t flen = sizeof(from);
	ssize_t n;
	int r;

	r = poll(&pfd, 1, wait ? ACK_TIMEOUT_MS : 0);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	if (r == 0)
		return wait ? -ETIMEDOUT : -EAGAIN;
	r = netns_rxbuf_take(&rx);
	if (r < 0)
		return r;
	n = recvfrom(fd, rx.buf, rx.size, MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
	if (n < 0) {
		r = errno == EINTR ? 0 : -errno;
		goto out_put;
	}
	if (from.nl_pid != 0)
		goto out_put;   /* not from the kernel: see nl_request() */
	/* replies that are not acks (there should be none) are skipped; a
	 * missing ack ends in the timeout above */
	(void)mnl_cb_run2(rx.buf, nl_msgs_len(rx.buf, (size_t)n), 0, ns->portid, NULL, a, ctl,
			  NLMSG_MIN_TYPE);
out_put:
	netns_rxbuf_put(&rx);
	return r;
}

/* Throw away whatever an earlier, interrupted exchange left queued. */
static void socket_drain(struct netns *ns)
{
	int fd = mnl_socket_get_fd(ns->nl);
	struct netns_rxbuf rx;

	/* without a buffer, MSG_TRUNC discards each datagram all the same */
	if (netns_rxbuf_take(&rx) < 0) {
		while (recv(fd, NULL, 0, MSG_DONTWAIT | MSG_TRUNC) > 0)
			;
		return;
	}
	while (recv(fd, rx.buf, rx.size, MSG_DONTWAIT) > 0)
		;
	netns_rxbuf_put(&rx);
}

/* ---- error text ---- */

const char *nl_entry_origin(const struct mseg_entry *e, const char *const *policy_names,
			    size_t n_policy_names, char *buf, size_t size)
{
	if (e->policy == ENTRY_POLICY_NODE)
		snprintf(buf, size, "node address");
	else if (policy_names && e->policy < n_policy_names && policy_names[e->policy])
		snprintf(buf, size, "policy %s rule %u", policy_names[e->policy], e->rule);
	else
		snprintf(buf, size, "policy #%u rule %u", e->policy, e->rule);
	return buf;
}

/* The message with sequence number @seq in the batch pages. */
static const struct nlmsghdr *batch_find_msg(struct nl_batch *b, uint32_t seq)
{
	int n = nftnl_batch_iovec_len(b->nb);
	struct iovec *iov = calloc((size_t)n, sizeof(*iov));
	const struct nlmsghdr *found = NULL;

	if (!iov)
		return NULL;
	nftnl_batch_iovec(b->nb, iov, (uint32_t)n);
	for (int i = 0; i < n && !found; i++) {
		const struct nlmsghdr *nlh = iov[i].iov_base;
		int len = (int)iov[i].iov_len;

		while (mnl_nlmsg_ok(nlh, len)) {
			if (nlh->nlmsg_seq == seq) {
				found = nlh;
				break;
			}
			nlh = mnl_nlmsg_next(nlh, &len);
		}
	}
	free(iov);
	return found;
}

/* Index of the element at byte @offset of element message @nlh, or -1. */
static long elem_index_at(const struct nlmsghdr *nlh, uint32_t offset)
{
	const struct nlattr *attr, *nest;
	long i = 0;

	mnl_attr_for_each(attr, nlh, sizeof(struct nfgenmsg)) {
		if (mnl_attr_get_type(attr) != NFTA_SET_ELEM_LIST_ELEMENTS)
			continue;
		mnl_attr_for_each_nested(nest, attr) {
			size_t start = (size_t)((const char *)nest - (const char *)nlh);

			if (offset >= start && offset < start + nest->nla_len)
				return i;
			i++;
		}
	}
	return -1;
}

/* An element of the set named @set as nft prints it. */
static const char *elem_text(const char *set, const struct mseg_entry *e, char *buf, size_t size)
{
	struct nl_set_spec s;

	if (nl_set_spec_find(set, &s))
		return nl_elem_text(&s, e, buf, size);
	return render_text_entry(e, buf, size);
}

static void error_describe(struct nl_batch *b, const struct ack_state *a,
			   const char *const *names, size_t n_names, struct mseg_err *err)
{
	const struct nl_msg_rec *rec = &b->recs[a->err_rec];
	const char *why = strerror(-a->err_code);
	char origin[300], el[RENDER_TEXT_ENTRY_MAX], kmsg[160] = "";

	if (a->err_msg[0])
		snprintf(kmsg, sizeof(kmsg), " (%s)", a->err_msg);
	if (rec->kind == NL_MSG_ELEM && rec->elem_count) {
		const struct nlmsghdr *nlh = a->err_offset ? batch_find_msg(b, rec->seq) : NULL;
		long i = nlh ? elem_index_at(nlh, a->err_offset) : -1;
		const struct mseg_entry *e = NULL;

		if (i >= 0 && (size_t)i < rec->elem_count)
			e = b->elem_src[rec->elem_first + (size_t)i];
		if (e) {
			err_setf(err, -a->err_code, "%s: %s %s %s set %s: %s%s",
				 nl_entry_origin(e, names, n_names, origin, sizeof(origin)),
				 rec->type == NFT_MSG_DELSETELEM ? "delete element" : "add element",
				 elem_text(rec->name, e, el, sizeof(el)),
				 rec->type == NFT_MSG_DELSETELEM ? "from" : "to", rec->name, why,
				 kmsg);
			return;
		}
		/* no offset: name the range of entries the message carried */
		for (size_t k = 0; k < rec->elem_count; k++) {
			e = b->elem_src[rec->elem_first + k];
			if (e)
				break;
		}
		if (e) {
			err_setf(err, -a->err_code,
				 "%s %zu elements (first: %s, %s) %s set %s: %s%s", rec->what,
				 rec->elem_count, elem_text(rec->name, e, el, sizeof(el)),
				 nl_entry_origin(e, names, n_names, origin, sizeof(origin)),
				 rec->type == NFT_MSG_DELSETELEM ? "from" : "to", rec->name, why,
				 kmsg);
			return;
		}
	}
	err_setf(err, -a->err_code, "%s %s: %s%s", rec->what, rec->name, why, kmsg);
}

static void stats_count(struct netns *ns, const struct nl_batch *b, size_t bytes)
{
	struct nft_stats *s = &ns->stats;
	uint64_t elem_msgs = 0;

	s->batches++;
	s->msgs += b->n_recs;
	s->bytes += bytes;
	for (size_t i = 0; i < b->n_recs; i++) {
		const struct nl_msg_rec *r = &b->recs[i];

		switch ((enum nl_msg_kind)r->kind) {
		case NL_MSG_TABLE:
			s->table_msgs++;
			break;
		case NL_MSG_OBJ:
			s->obj_msgs++;
			break;
		case NL_MSG_SET:
			s->set_msgs++;
			break;
		case NL_MSG_ELEM:
			elem_msgs++;
			break;
		case NL_MSG_CHAIN:
			s->chain_msgs++;
			break;
		case NL_MSG_RULE:
			s->rule_msgs++;
			break;
		}
	}
	s->elem_msgs += elem_msgs;
	s->last_batch_msgs = b->n_recs;
	s->last_batch_elem_msgs = elem_msgs;
	s->last_batch_other_msgs = b->n_recs - elem_msgs;
}

static void stats_elems(struct netns *ns, const struct nl_batch *b)
{
	for (size_t i = 0; i < b->n_recs; i++) {
		const struct nl_msg_rec *r = &b->recs[i];

		if (r->type == NFT_MSG_NEWSETELEM)
			ns->stats.elems_added += r->elem_count;
		else if (r->type == NFT_MSG_DELSETELEM)
			ns->stats.elems_deleted += r->elem_count;
	}
}

int nl_batch_commit(struct netns *ns, struct nl_batch *b, const char *const *policy_names,
		    size_t n_policy_names, struct mseg_err *err)
{
	struct sockaddr_nl snl = { .nl_family = AF_NETLINK };
	struct ack_state a = { .b = b, .err_rec = SIZE_MAX };
	struct msghdr msg = { 0 };
	struct mnl_socket *nl;
	struct iovec *iov;
	size_t bytes = 0;
	uint64_t t0;
	ssize_t sent;
	int n_iov, r = 0;

	if (b->committed)
		return err_setf(err, EINVAL, "batch already sent");
	if (b->error)
		return err_setf(err, -b->error, "building the batch: %s", strerror(-b->error));
	if (b->n_recs == 0)
		return 0;
	r = batch_finish(b);
	if (r < 0)
		return err_setf(err, -r, "building the batch: %s", strerror(-r));
	r = netns_nl(ns, &nl);
	if (r < 0)
		return err_setf(err, -r, "netns %s: netfilter socket: %s", ns->path, strerror(-r));

	n_iov = nftnl_batch_iovec_len(b->nb);
	iov = calloc((size_t)n_iov, sizeof(*iov));
	if (!iov)
		return err_setf(err, ENOMEM, "out of memory");
	nftnl_batch_iovec(b->nb, iov, (uint32_t)n_iov);
	for (int i = 0; i < n_iov; i++)
		bytes += iov[i].iov_len;

	/* the whole batch is one skb: the send buffer must hold it; the
	 * receive buffer must hold one ack per message */
	r = netns_nl_buffers(ns, bytes, b->n_recs * 256 + (64u << 10));
	if (r < 0) {
		free(iov);
		return err_setf(err, -r, "netns %s: cannot raise the socket buffer to %zu bytes: %s",
				ns->path, bytes, strerror(-r));
	}
	socket_drain(ns);

	msg.msg_name = &snl;
	msg.msg_namelen = sizeof(snl);
	msg.msg_iov = iov;
	msg.msg_iovlen = (size_t)n_iov;
	b->committed = true;
	t0 = clock_mono_ns();
	sent = sendmsg(mnl_socket_get_fd(nl), &msg, 0);
	free(iov);
	if (sent < 0) {
		r = -errno;
		ns->stats.batches_failed++;
		return err_setf(err, -r, "netns %s: sending a batch of %zu bytes: %s", ns->path,
				bytes, strerror(-r));
	}

	while (a.n_acked < b->n_recs && !a.batch_error) {
		r = acks_read(ns, &a, true);
		if (r < 0)
			break;
	}
	/* anything else the kernel queued for this batch */
	while (r >= 0 && acks_read(ns, &a, false) == 0)
		;
	ns->stats.last_batch_ns = clock_mono_ns() - t0;
	stats_count(ns, b, bytes);

	if (r < 0 && r != -EAGAIN && a.err_rec == SIZE_MAX && !a.batch_error) {
		/* lost acks (ENOBUFS) or none at all: we cannot know whether the
		 * transaction was committed */
		ns->stats.batches_failed++;
		netns_nl_reset(ns);
		ns->programmed.known = false;
		return err_setf(err, -r,
				"netns %s: reading the kernel's acks: %s (%zu of %zu messages "
				"answered); the outcome is unknown",
				ns->path, strerror(-r), a.n_acked, b->n_recs);
	}
	if (a.err_rec != SIZE_MAX) {
		ns->stats.batches_failed++;
		error_describe(b, &a, policy_names, n_policy_names, err);
		return a.err_code;
	}
	if (a.batch_error) {
		ns->stats.batches_failed++;
		return err_setf(err, -a.batch_error, "netns %s: the kernel refused the batch: %s%s%s",
				ns->path, strerror(-a.batch_error), a.err_msg[0] ? ": " : "",
				a.err_msg);
	}
	stats_elems(ns, b);
	return 0;
}

/* ---- received datagrams ---- */

size_t nl_msgs_len(const void *buf, size_t len)
{
	size_t off = 0;

	while (len - off >= sizeof(struct nlmsghdr)) {
		struct nlmsghdr h;

		memcpy(&h, (const char *)buf + off, sizeof(h));
		if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > len - off)
			break;
		off += NLMSG_ALIGN(h.nlmsg_len);
		if (off > len)
			off = len;   /* the last message without its padding */
	}
	return off;
}

int nl_cb_errno(void)
{
	return errno > 0 && errno < 4096 ? -errno : -EIO;
}

/* ---- plain requests (dumps, getgen) ---- */

int nl_request(struct netns *ns, struct nlmsghdr *nlh,
	       int (*cb)(const struct nlmsghdr *nlh, void *data), void *data)
{
	struct mnl_socket *nl;
	uint32_t seq = nlh->nlmsg_seq;
	int r;

	r = netns_nl(ns, &nl);
	if (r < 0)
		return r;
	if (!(nlh->nlmsg_flags & NLM_F_DUMP))
		nlh->nlmsg_flags |= NLM_F_ACK;   /* the ack ends the exchange */
	socket_drain(ns);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		struct pollfd pfd = { .fd = mnl_socket_get_fd(nl), .events = POLLIN };
		struct netns_rxbuf rx;
		struct sockaddr_nl from = { 0 };
		socklen_t flen = sizeof(from);
		ssize_t n;

		r = poll(&pfd, 1, ACK_TIMEOUT_MS);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			netns_nl_reset(ns);
			return r < 0 ? -errno : -ETIMEDOUT;
		}
		r = netns_rxbuf_take(&rx);
		if (r < 0)
			return r;
		n = recvfrom(pfd.fd, rx.buf, rx.size, 0, (struct sockaddr *)&from, &flen);
		if (n < 0) {
			r = -errno;
			netns_rxbuf_put(&rx);
			if (r == -EINTR)
				continue;
			netns_nl_reset(ns);
			return r;
		}
		/* the socket lives in the endpoint's namespace, where a process
		 * with CAP_NET_ADMIN could send to our port id: only the
		 * kernel's replies count, as for the queue listener */
		if (from.nl_pid != 0) {
			netns_rxbuf_put(&rx);
			continue;
		}
		/* @cb may parse the reply in place, never keep it */
		r = mnl_cb_run(rx.buf, nl_msgs_len(rx.buf, (size_t)n), seq, ns->portid, cb, data);
		if (r < 0)
			r = nl_cb_errno();
		netns_rxbuf_put(&rx);
		if (r == MNL_CB_STOP)
			return 0;
		if (r < 0) {
			/* a dump interrupted by a ruleset change (EINTR) or an
			 * error reply: leave nothing unread behind */
			socket_drain(ns);
			return r;
		}
	}
}
