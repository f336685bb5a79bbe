/* NFQUEUE listener per network namespace (see include/mseg/queue.h).
 *
 * libmnl + the nfq_nlmsg_* helpers of libnetfilter_queue: one netlink
 * socket per namespace, created inside it. Receive with recvmmsg() (one
 * packet message per datagram), hand each packet to the handler, collect
 * the verdicts as runs of equal verdicts (NFQNL_MSG_VERDICT_BATCH: "every
 * queued packet up to id N"), send them all in one sendmsg per batch.
 *
 * Packet messages are delivered in id order (the kernel assigns the id and
 * enqueues the message under the queue lock), and every message we read is
 * answered before the next recv, so a batch verdict never covers a packet
 * we have not seen: a message lost to a socket overrun was never queued
 * (the kernel drops it, or accepts it with fail-open, and counts it in
 * user_dropped). */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#include "mseg/util/clock.h"
#include "mseg/packet/queue.h"
#include "kernel/batch.h"
#include "kernel/netns.h"

#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

#define OPEN_ACK_TIMEOUT_MS 2000
#define MSG_OVERHEAD 1024        /* netlink + nfqueue attributes besides the payload */
#define VERDICT_MSG_MAX 64       /* bytes of one verdict message, rounded up */

struct queue_listener {
	struct mnl_socket *nl;
	int fd;
	uint32_t portid;
	uint16_t queue_num;
	void *ctx;
	struct queue_opts opts;
	uint32_t flags;              /* NFQA_CFG_F_* in effect */
	uint32_t seq;

	size_t bufsize;              /* one receive slot: a message of copy_range */
	struct rx_set *rx;           /* during a read or config_send only */

	/* verdicts: the current run, and the messages not sent yet */
	bool run_open;
	int run_verdict;
	uint32_t run_max_id;
	char *txbuf;
	size_t txlen, txsize;

	/* during one queue_listener_read */
	queue_handler_fn fn;
	void *fn_data;
	uint64_t now_ns;
	unsigned batch_packets;

	int kstats_fd;               /* /proc/net/netfilter/nfnetlink_queue in the netns */
	struct queue_stats stats;
};

/* ---- the receive slots, shared ----
 *
 * A listener needs `batch` slots of `bufsize` bytes only while it reads, and
 * one loop reads one listener at a time: so all listeners share one set,
 * sized for the largest of them, kept while any listener is open. A
 * listener takes it for one queue_listener_read() (or config exchange) and
 * gives it back before returning; the handler sees packets in it and must
 * not keep them (queue.h). Should the set be taken already (a listener read
 * by another thread, or a handler reading a listener), that read gets a set
 * of its own for the call. */
struct rx_set {
	char *buf;
	size_t bufsize;              /* bytes per slot */
	unsigned slots;
	struct mmsghdr *msgs;
	struct iovec *iov;
	struct sockaddr_nl *addrs;
};

static struct rx_set rx_shared;
static bool rx_shared_busy;
static unsigned rx_users;            /* open listeners */

static void rx_set_release(struct rx_set *rx)
{
	free(rx->buf);
	free(rx->msgs);
	free(rx->iov);
	free(rx->addrs);
	memset(rx, 0, sizeof(*rx));
}

static int rx_set_reserve(struct rx_set *rx, size_t bufsize, unsigned slots)
{
	if (rx->buf && rx->bufsize >= bufsize && rx->slots >= slots)
		return 0;
	if (rx->bufsize > bufsize)
		bufsize = rx->bufsize;
	if (rx->slots > slots)
		slots = rx->slots;
	rx_set_release(rx);
	rx->buf = malloc(bufsize * slots);
	rx->msgs = calloc(slots, sizeof(*rx->msgs));
	rx->iov = calloc(slots, sizeof(*rx->iov));
	rx->addrs = calloc(slots, sizeof(*rx->addrs));
	if (!rx->buf || !rx->msgs || !rx->iov || !rx->addrs) {
		rx_set_release(rx);
		return -ENOMEM;
	}
	rx->bufsize = bufsize;
	rx->slots = slots;
	return 0;
}

static int rx_take(struct queue_listener *l, unsigned slots)
{
	struct rx_set *own;
	int r;

	if (!__atomic_test_and_set(&rx_shared_busy, __ATOMIC_ACQUIRE)) {
		r = rx_set_reserve(&rx_shared, l->bufsize, slots);
		if (r < 0) {
			__atomic_clear(&rx_shared_busy, __ATOMIC_RELEASE);
			return r;
		}
		l->rx = &rx_shared;
		return 0;
	}
	own = calloc(1, sizeof(*own));
	if (!own)
		return -ENOMEM;
	r = rx_set_reserve(own, l->bufsize, slots);
	if (r < 0) {
		free(own);
		return r;
	}
	l->rx = own;
	return 0;
}

static void rx_put(struct queue_listener *l)
{
	if (!l->rx)
		return;
	if (l->rx == &rx_shared) {
		/* the last listener closed while we read: free it here */
		if (__atomic_load_n(&rx_users, __ATOMIC_ACQUIRE) == 0)
			rx_set_release(&rx_shared);
		__atomic_clear(&rx_shared_busy, __ATOMIC_RELEASE);
	} else {
		rx_set_release(l->rx);
		free(l->rx);
	}
	l->rx = NULL;
}

static void rx_users_drop(void)
{
	if (__atomic_sub_fetch(&rx_users, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	/* if someone holds the set, rx_put() frees it */
	if (!__atomic_test_and_set(&rx_shared_busy, __ATOMIC_ACQUIRE)) {
		if (__atomic_load_n(&rx_users, __ATOMIC_ACQUIRE) == 0)
			rx_set_release(&rx_shared);
		__atomic_clear(&rx_shared_busy, __ATOMIC_RELEASE);
	}
}

void queue_opts_init(struct queue_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->copy_range = QUEUE_DEFAULT_COPY_RANGE;
	o->max_len = QUEUE_DEFAULT_MAX_LEN;
	o->rcvbuf = QUEUE_DEFAULT_RCVBUF;
	o->batch = QUEUE_DEFAULT_BATCH;
	o->max_per_read = QUEUE_DEFAULT_MAX_PER_READ;
	o->gso = true;
}

static void opts_normalize(struct queue_opts *o, const struct queue_opts *in)
{
	if (in)
		*o = *in;
	else
		queue_opts_init(o);
	if (o->copy_range == 0)
		o->copy_range = QUEUE_DEFAULT_COPY_RANGE;
	if (o->copy_range > 0xffff)
		o->copy_range = 0xffff;
	if (o->max_len == 0)
		o->max_len = QUEUE_DEFAULT_MAX_LEN;
	if (o->batch == 0)
		o->batch = QUEUE_DEFAULT_BATCH;
	if (o->batch > 1024)
		o->batch = 1024;
	if (o->max_per_read == 0)
		o->max_per_read = QUEUE_DEFAULT_MAX_PER_READ;
}

int queue_listener_kstats(struct queue_listener *l, struct queue_kstats *ret)
{
	char buf[8192];
	size_t len = 0;
	char *line, *save = NULL;

	if (l->kstats_fd < 0)
		return -EOPNOTSUPP;
	if (lseek(l->kstats_fd, 0, SEEK_SET) < 0)
		return -errno;
	while (len < sizeof(buf) - 1) {
		ssize_t n = read(l->kstats_fd, buf + len, sizeof(buf) - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct queue_kstats k = { 0 };

		if (sscanf(line, "%u %u %u %u %u %u %u %u", &k.queue_num, &k.portid,
			   &k.queue_total, &k.copy_mode, &k.copy_range, &k.queue_dropped,
			   &k.user_dropped, &k.id_sequence) != 8)
			continue;
		if (k.queue_num == l->queue_num) {
			*ret = k;
			return 0;
		}
	}
	return -ENOENT;
}

/* ---- sending ---- */

static int tx_flush(struct queue_listener *l)
{
	ssize_t n;

	if (l->txlen == 0)
		return 0;
	if (!l->nl) {   /* detached (queue_listener_feed): nobody to tell */
		l->txlen = 0;
		return 0;
	}
	n = mnl_socket_sendto(l->nl, l->txbuf, l->txlen);
	if (n < 0) {
		l->stats.send_errors++;
		return -errno;
	}
	l->stats.sends++;
	l->txlen = 0;
	return 0;
}

/* One verdict message for every queued packet up to @id (batch) or for
 * @id alone. A batch of datagrams makes at most one message each and the
 * buffer is empty before a batch is read, so it never fills; should it,
 * send first. */
static int tx_put_verdict(struct queue_listener *l, bool batch, uint32_t id, int verdict)
{
	struct nlmsghdr *nlh;
	int r;

	if (l->txsize - l->txlen < VERDICT_MSG_MAX) {
		r = tx_flush(l);
		if (r < 0)
			return r;
	}
	nlh = nfq_nlmsg_put(l->txbuf + l->txlen,
			    batch ? NFQNL_MSG_VERDICT_BATCH : NFQNL_MSG_VERDICT, l->queue_num);
	nfq_nlmsg_verdict_put(nlh, (int)id, verdict);
	l->txlen += NLMSG_ALIGN(nlh->nlmsg_len);
	l->stats.verdict_msgs++;
	return 0;
}

static void run_close(struct queue_listener *l)
{
	if (!l->run_open)
		return;
	if (tx_put_verdict(l, true, l->run_max_id, l->run_verdict) < 0)
		l->stats.lost_verdicts++;   /* cannot happen: see tx_put_verdict */
	l->run_open = false;
}

static void verdict_add(struct queue_listener *l, uint32_t id, int verdict)
{
	if (l->run_open && l->run_verdict != verdict)
		run_close(l);
	l->run_open = true;
	l->run_verdict = verdict;
	l->run_max_id = id;
	if (verdict == NF_ACCEPT)
		l->stats.accepted++;
	else
		l->stats.dropped++;
}

/* ---- receiving ---- */

static int default_verdict(const struct queue_listener *l)
{
	return (l->flags & NFQA_CFG_F_FAIL_OPEN) ? NF_ACCEPT : NF_DROP;
}

/* libmnl bounds a message's attributes by its length rounded up to 4
 * bytes; the kernel ends a packet message with the unpadded payload, so
 * that rounding reaches past the datagram. An attribute must end within
 * the message's own length. */
static bool attrs_in_msg(const struct nlmsghdr *nlh, struct nlattr *const *attr, size_t n)
{
	const char *end = (const char *)nlh + nlh->nlmsg_len;

	for (size_t i = 0; i < n; i++)
		if (attr[i] && (const char *)attr[i] + attr[i]->nla_len > end)
			return false;
	return true;
}

static int packet_cb(const struct nlmsghdr *nlh, void *data)
{
	struct queue_listener *l = data;
	struct nlattr *attr[NFQA_MAX + 1] = { 0 };
	struct nfqnl_msg_packet_hdr *ph;
	struct queue_packet p;
	int verdict;

	if (nlh->nlmsg_type != ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET) ||
	    nfq_nlmsg_parse(nlh, attr) < 0 || !attrs_in_msg(nlh, attr, NFQA_MAX + 1) ||
	    !attr[NFQA_PACKET_HDR] ||
	    mnl_attr_get_payload_len(attr[NFQA_PACKET_HDR]) < sizeof(*ph)) {
		l->stats.bad_msgs++;
		return MNL_CB_OK;
	}
	memset(&p, 0, sizeof(p));
	ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	p.id = ntohl(ph->packet_id);
	p.hook = ph->hook;
	p.hw_protocol = ntohs(ph->hw_protocol);
	if (p.hook == NF_INET_LOCAL_IN || p.hook == NF_INET_LOCAL_OUT) {
		p.dir_known = true;
		p.dir = p.hook == NF_INET_LOCAL_IN ? MSEG_DIR_INGRESS : MSEG_DIR_EGRESS;
	}
	l->stats.packets++;
	l->batch_packets++;
	if (!l->fn) {   /* while opening: nobody to ask */
		l->stats.early_packets++;
		verdict_add(l, p.id, default_verdict(l));
		return MNL_CB_OK;
	}
	if (attr[NFQA_PAYLOAD]) {
		p.data = mnl_attr_get_payload(attr[NFQA_PAYLOAD]);
		p.caplen = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
	}
	p.len = p.caplen;
	if (attr[NFQA_CAP_LEN] && mnl_attr_get_payload_len(attr[NFQA_CAP_LEN]) >= 4)
		p.len = ntohl(mnl_attr_get_u32(attr[NFQA_CAP_LEN]));
	if (p.len < p.caplen)   /* the packet is at least what we were given */
		p.len = p.caplen;
	if (attr[NFQA_UID] && mnl_attr_get_payload_len(attr[NFQA_UID]) >= 4) {
		p.has_uid = true;
		p.uid = ntohl(mnl_attr_get_u32(attr[NFQA_UID]));
	}
	if (attr[NFQA_GID] && mnl_attr_get_payload_len(attr[NFQA_GID]) >= 4) {
		p.has_gid = true;
		p.gid = ntohl(mnl_attr_get_u32(attr[NFQA_GID]));
	}
	if (attr[NFQA_MARK] && mnl_attr_get_payload_len(attr[NFQA_MARK]) >= 4)
		p.mark = ntohl(mnl_attr_get_u32(attr[NFQA_MARK]));
	if (attr[NFQA_IFINDEX_INDEV] && mnl_attr_get_payload_len(attr[NFQA_IFINDEX_INDEV]) >= 4)
		p.indev = ntohl(mnl_attr_get_u32(attr[NFQA_IFINDEX_INDEV]));
	if (attr[NFQA_IFINDEX_OUTDEV] && mnl_attr_get_payload_len(attr[NFQA_IFINDEX_OUTDEV]) >= 4)
		p.outdev = ntohl(mnl_attr_get_u32(attr[NFQA_IFINDEX_OUTDEV]));
	if (attr[NFQA_SKB_INFO] && mnl_attr_get_payload_len(attr[NFQA_SKB_INFO]) >= 4)
		p.gso = ntohl(mnl_attr_get_u32(attr[NFQA_SKB_INFO])) & NFQA_SKB_GSO;
	if (attr[NFQA_TIMESTAMP] && mnl_attr_get_payload_len(attr[NFQA_TIMESTAMP]) >=
					    sizeof(struct nfqnl_msg_packet_timestamp)) {
		struct nfqnl_msg_packet_timestamp ts;

		memcpy(&ts, mnl_attr_get_payload(attr[NFQA_TIMESTAMP]), sizeof(ts));
		p.kernel_ns = be64toh(ts.sec) * 1000000000u + be64toh(ts.usec) * 1000u;
	}
	p.time_ns = l->now_ns;

	p.parse_status = pkt_parse(p.data, p.caplen, p.len, &p.pkt);
	if (p.parse_status == -EBADMSG)
		l->stats.parse_errors++;
	else if (p.parse_status == -ENODATA)
		l->stats.short_captures++;
	else if (p.parse_status == -EPROTONOSUPPORT)
		l->stats.unknown_proto++;

	verdict = l->fn(l, l->ctx, &p, l->fn_data);
	if (verdict != NF_ACCEPT && verdict != NF_DROP) {
		l->stats.bad_verdicts++;
		verdict = NF_DROP;
	}
	verdict_add(l, p.id, verdict);
	return MNL_CB_OK;
}

/* A message cut short (MSG_TRUNC): the packet header is the first
 * attribute, so the id is usually still there. Give it the default
 * verdict rather than leave it queued for ever. */
static void truncated_msg(struct queue_listener *l, const char *buf, size_t len)
{
	const size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));
	struct nlattr a;
	struct nfqnl_msg_packet_hdr ph;

	l->stats.truncated++;
	if (len < off + sizeof(a) + sizeof(ph))
		return;
	memcpy(&a, buf + off, sizeof(a));
	if ((a.nla_type & NLA_TYPE_MASK) != NFQA_PACKET_HDR)
		return;
	memcpy(&ph, buf + off + sizeof(a), sizeof(ph));
	l->stats.packets++;
	verdict_add(l, ntohl(ph.packet_id), default_verdict(l));
}

/* One received datagram of @len bytes in @buf, from @addr. Returns an
 * NLMSG_ERROR's -errno when the datagram was one, else 0. */
static int handle_datagram(struct queue_listener *l, const char *buf, size_t len,
			   const struct sockaddr_nl *addr, int msg_flags)
{
	int r;

	if (addr->nl_family != AF_NETLINK || addr->nl_pid != 0) {
		l->stats.bad_msgs++;        /* not from the kernel */
		return 0;
	}
	if (msg_flags & MSG_TRUNC) {
		truncated_msg(l, buf, len);
		return 0;
	}
	r = mnl_cb_run(buf, nl_msgs_len(buf, len), 0, l->portid, packet_cb, l);
	if (r < 0) {
		r = nl_cb_errno();
		if (r == -EPROTO || r == -ESRCH || r == -EBADMSG) {
			l->stats.bad_msgs++;
			return 0;
		}
		l->stats.kernel_errors++;
		l->stats.last_kernel_error = r;
		return r;
	}
	return 0;
}

static void rx_setup(struct rx_set *rx, unsigned n)
{
	memset(rx->msgs, 0, n * sizeof(*rx->msgs));
	for (unsigned i = 0; i < n; i++) {
		rx->iov[i].iov_base = rx->buf + i * rx->bufsize;
		rx->iov[i].iov_len = rx->bufsize;
		rx->msgs[i].msg_hdr.msg_iov = &rx->iov[i];
		rx->msgs[i].msg_hdr.msg_iovlen = 1;
		rx->msgs[i].msg_hdr.msg_name = &rx->addrs[i];
		rx->msgs[i].msg_hdr.msg_namelen = sizeof(rx->addrs[i]);
	}
}

int queue_listener_read(struct queue_listener *l, queue_handler_fn fn, void *data)
{
	unsigned handled = 0;
	int r = 0;

	/* verdicts a failed send left behind go first; nothing new is read
	 * before they are out, so the buffer always has room for a batch */
	if (l->txlen) {
		r = tx_flush(l);
		if (r < 0)
			return r;
	}
	r = rx_take(l, l->opts.batch);
	if (r < 0)
		return r;
	l->fn = fn;
	l->fn_data = data;
	while (handled < l->opts.max_per_read) {
		struct rx_set *rx = l->rx;
		unsigned want = l->opts.batch, got;
		int n;

		if (want > l->opts.max_per_read - handled)
			want = l->opts.max_per_read - handled;
		rx_setup(rx, want);
		n = recvmmsg(l->fd, rx->msgs, want, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				/* the socket overran: the kernel could not
				 * deliver some packets (and dropped them) */
				l->stats.enobufs++;
				continue;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				r = -errno;
			break;
		}
		if (n == 0)
			break;
		got = (unsigned)n;
		l->stats.reads++;
		l->now_ns = clock_real_ns();
		l->batch_packets = 0;
		for (unsigned i = 0; i < got; i++)
			(void)handle_datagram(l, rx->iov[i].iov_base, rx->msgs[i].msg_len,
					      &rx->addrs[i], rx->msgs[i].msg_hdr.msg_flags);
		run_close(l);
		handled += l->batch_packets;
		r = tx_flush(l);
		if (r < 0 || got < want)
			break;      /* retry the send later / the socket is empty */
	}
	l->fn = NULL;
	l->fn_data = NULL;
	rx_put(l);
	return r < 0 ? r : (int)handled;
}

/* ---- opening ---- */

/* One datagram while waiting for the ack of @seq: returns the ack's
 * error (0 = success), 1 when it was something else (handled), -errno. */
static int config_recv_one(struct queue_listener *l, uint32_t seq)
{
	struct rx_set *rx;
	int n, r;

	r = rx_take(l, 1);
	if (r < 0)
		return r;
	rx = l->rx;
	rx_setup(rx, 1);
	n = recvmmsg(l->fd, rx->msgs, 1, MSG_DONTWAIT, NULL);
	if (n <= 0) {
		if (n < 0 && errno == ENOBUFS)
			l->stats.enobufs++;
		r = n < 0 && errno != ENOBUFS && errno != EAGAIN && errno != EINTR ? -errno : 1;
		goto out_put;
	}
	l->now_ns = clock_real_ns();
	r = 1;
	/* is it our ack? (an ack has the error header only) */
	if (rx->msgs[0].msg_len >= NLMSG_HDRLEN + sizeof(struct nlmsgerr) &&
	    rx->addrs[0].nl_pid == 0) {
		const struct nlmsghdr *h = rx->iov[0].iov_base;

		if (h->nlmsg_type == NLMSG_ERROR && h->nlmsg_seq == seq) {
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);

			r = e->error;
		}
	}
	if (r == 1)
		(void)handle_datagram(l, rx->iov[0].iov_base, rx->msgs[0].msg_len,
				      &rx->addrs[0], rx->msgs[0].msg_hdr.msg_flags);
	run_close(l);
	(void)tx_flush(l);
out_put:
	rx_put(l);
	return r;
}

/* Send one config message with NLM_F_ACK and wait for its ack; packets
 * arriving meanwhile get the default verdict. */
static int config_send(struct queue_listener *l, struct nlmsghdr *nlh)
{
	uint32_t seq = ++l->seq;
	uint64_t start;
	int r;

	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	if (mnl_socket_sendto(l->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	start = clock_mono_ns();
	for (;;) {
		struct pollfd pfd = { .fd = l->fd, .events = POLLIN };
		long waited = (long)((clock_mono_ns() - start) / 1000000);
		int n;

		if (waited >= OPEN_ACK_TIMEOUT_MS)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, (int)(OPEN_ACK_TIMEOUT_MS - waited));
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n <= 0)
			continue;
		r = config_recv_one(l, seq);
		if (r != 1)
			return r;
	}
}

static void config_flags(struct nlmsghdr *nlh, uint32_t flags, uint32_t mask)
{
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(flags));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(mask));
}

bool queue_listener_is_fail_open(const struct queue_listener *l)
{
	return (l->flags & NFQA_CFG_F_FAIL_OPEN) != 0;
}

/* Tests only: MSEG_TEST_QUEUE_SWITCH_FAILURES=N makes the next N
 * fail-open switches of this process fail with EIO before anything is
 * sent, so that the retry path can be shown against the real kernel. */
static bool switch_fault(void)
{
	static long left = -1;

	if (left < 0) {
		const char *v = getenv("MSEG_TEST_QUEUE_SWITCH_FAILURES");

		left = v ? strtol(v, NULL, 10) : 0;
	}
	if (left <= 0)
		return false;
	left--;
	return true;
}

int queue_listener_set_fail_open(struct queue_listener *l, bool on)
{
	char buf[256] = { 0 };
	struct nlmsghdr *nlh;
	uint32_t flags = on ? NFQA_CFG_F_FAIL_OPEN : 0;
	int r;

	if (((l->flags & NFQA_CFG_F_FAIL_OPEN) != 0) == on)
		return 0;
	if (switch_fault())
		return -EIO;
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, l->queue_num);
	config_flags(nlh, flags, NFQA_CFG_F_FAIL_OPEN);
	r = config_send(l, nlh);
	if (r < 0)
		return r;
	l->flags = (l->flags & ~NFQA_CFG_F_FAIL_OPEN) | flags;
	l->opts.fail_open = on;
	return 0;
}

static int raise_rcvbuf(int fd, uint32_t want)
{
	int v = want > INT32_MAX / 2 ? INT32_MAX / 2 : (int)want;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)) < 0)
		return -errno;
	return 0;
}

/* A listener without a socket: buffers and options. */
static int listener_alloc(uint16_t queue_num, const struct queue_opts *opts, void *ctx,
			  struct queue_listener **ret)
{
	struct queue_listener *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->fd = -1;
	l->kstats_fd = -1;
	l->queue_num = queue_num;
	l->ctx = ctx;
	l->seq = (uint32_t)time(NULL);
	opts_normalize(&l->opts, opts);
	l->bufsize = NLMSG_ALIGN(l->opts.copy_range) + MSG_OVERHEAD;
	__atomic_add_fetch(&rx_users, 1, __ATOMIC_ACQ_REL);
	l->txsize = (size_t)l->opts.batch * VERDICT_MSG_MAX + 2 * VERDICT_MSG_MAX;
	l->txbuf = malloc(l->txsize);
	if (!l->txbuf) {
		queue_listener_free(l);
		return -ENOMEM;
	}
	*ret = l;
	return 0;
}

int queue_listener_new_detached(uint16_t queue_num, const struct queue_opts *opts, void *ctx,
				struct queue_listener **ret)
{
	struct queue_listener *l;
	int r = listener_alloc(queue_num, opts, ctx, &l);

	if (r < 0)
		return r;
	l->flags = NFQA_CFG_F_UID_GID | (l->opts.gso ? NFQA_CFG_F_GSO : 0) |
		   (l->opts.fail_open ? NFQA_CFG_F_FAIL_OPEN : 0);
	*ret = l;
	return 0;
}

int queue_listener_feed(struct queue_listener *l, const void *buf, size_t len, int msg_flags,
			queue_handler_fn fn, void *data)
{
	const struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	int r;

	if (l->nl)
		return -EBUSY;
	l->fn = fn;
	l->fn_data = data;
	l->now_ns = clock_real_ns();
	l->batch_packets = 0;
	r = handle_datagram(l, buf, len, &kernel, msg_flags);
	run_close(l);
	(void)tx_flush(l);
	l->fn = NULL;
	l->fn_data = NULL;
	return r;
}

int queue_listener_open(struct netns *ns, uint16_t queue_num, const struct queue_opts *opts,
			void *ctx, struct queue_listener **ret)
{
	struct queue_listener *l;
	char buf[256] = { 0 };
	struct nlmsghdr *nlh;
	int fd, one = 1, r;

	r = listener_alloc(queue_num, opts, ctx, &l);
	if (r < 0)
		return r;

	fd = netns_socket(ns, AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
			  NETLINK_NETFILTER);
	if (fd < 0) {
		r = fd;
		goto out_free;
	}
	l->nl = mnl_socket_fdopen(fd);
	if (!l->nl) {
		r = errno ? -errno : -ENOMEM;
		close(fd);
		goto out_free;
	}
	l->fd = fd;
	if (mnl_socket_bind(l->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		goto out_free;
	}
	l->portid = mnl_socket_get_portid(l->nl);
	/* error acks without a copy of our message */
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	/* a small buffer is only slower to overrun: not fatal */
	(void)raise_rcvbuf(fd, l->opts.rcvbuf);

	/* optional: the kernel's counters for this queue */
	r = netns_open_file(ns, "/proc/thread-self/net/netfilter/nfnetlink_queue", O_RDONLY);
	if (r == -ENOTRECOVERABLE)
		goto out_free;
	l->kstats_fd = r >= 0 ? r : -1;

	/* bind, copy mode, queue length and flags in one message: the kernel
	 * applies them together */
	l->flags = NFQA_CFG_F_UID_GID | (l->opts.gso ? NFQA_CFG_F_GSO : 0) |
		   (l->opts.fail_open ? NFQA_CFG_F_FAIL_OPEN : 0);
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, queue_num);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_BIND);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, (int)l->opts.copy_range);
	nfq_nlmsg_cfg_put_qmaxlen(nlh, l->opts.max_len);
	config_flags(nlh, l->flags, NFQA_CFG_F_UID_GID | NFQA_CFG_F_GSO | NFQA_CFG_F_FAIL_OPEN);
	r = config_send(l, nlh);
	if (r == -EPERM) {
		/* someone else's queue, or no CAP_NET_ADMIN: /proc tells */
		struct queue_kstats k;

		if (queue_listener_kstats(l, &k) == 0 && k.portid != l->portid)
			r = -EBUSY;
	}
	if (r < 0)
		goto out_free;
	*ret = l;
	return 0;

out_free:
	queue_listener_free(l);
	return r;
}

struct queue_listener *queue_listener_free(struct queue_listener *l)
{
	if (!l)
		return NULL;
	if (l->nl) {
		run_close(l);
		(void)tx_flush(l);
		mnl_socket_close(l->nl);
	}
	if (l->kstats_fd >= 0)
		close(l->kstats_fd);
	free(l->txbuf);
	free(l);
	rx_users_drop();
	return NULL;
}

int queue_listener_fd(const struct queue_listener *l)
{
	return l->fd;
}

uint16_t queue_listener_num(const struct queue_listener *l)
{
	return l->queue_num;
}

void *queue_listener_ctx(const struct queue_listener *l)
{
	return l->ctx;
}

void queue_listener_set_ctx(struct queue_listener *l, void *ctx)
{
	l->ctx = ctx;
}

const struct queue_stats *queue_listener_stats(const struct queue_listener *l)
{
	return &l->stats;
}
