/* NFQUEUE listener: one per endpoint network namespace.
 *
 * The ruleset's last step (docs/ruleset.md) queues unmatched packets to
 * queue N *in the endpoint's namespace*; a netlink socket acts in the
 * namespace it was created in, so each namespace gets its own listener,
 * whose socket is created inside it (netns_socket()).
 *
 * Binding (one config message, acknowledged):
 *   - copy mode NFQNL_COPY_PACKET with a small copy range (headers only,
 *     default 128 bytes);
 *   - NFQA_CFG_F_UID_GID: packets of local sockets (egress) carry the
 *     socket's uid/gid;
 *   - NFQA_CFG_F_GSO: GSO packets are queued whole, not segmented first (we
 *     only read headers and never change the packet);
 *   - NFQA_CFG_F_FAIL_OPEN only when asked (audit): otherwise a full queue
 *     drops (fail-closed) and the kernel counts it (queue_dropped);
 *   - the kernel queue length (default 1024) and a large socket receive
 *     buffer (default 4 MiB, SO_RCVBUFFORCE).
 *
 * Event loop integration: register queue_listener_fd() for EPOLLIN; on each
 * event call queue_listener_read(). It receives up to `batch` messages per
 * recvmmsg(), calls the handler for each packet (parse done, verdict
 * returned), and sends the verdicts of that batch in one sendmsg (verdict
 * batches: NFQNL_MSG_VERDICT_BATCH covers a run of packets with the same
 * verdict) before receiving again, so no packet waits for more than one
 * batch of handler calls. It returns after `max_per_read` packets even if
 * more are waiting (fairness between namespaces; epoll is level-triggered,
 * the rest comes on the next round) or when the socket is empty.
 *
 * The receive slots (`batch` x (copy_range + 1 KiB)) are not the
 * listener's own: all listeners share one set, sized for the largest, taken
 * for the length of one queue_listener_read(). A listener itself holds its
 * socket, the /proc file of the kernel's queue counters and its pending
 * verdicts (about 2 KiB).
 *
 * The handler must be quick (parse + flow record); anything slow (log
 * writes) belongs on a timer. Messages that do not come from the kernel
 * (another process in the namespace with CAP_NET_ADMIN could send to our
 * port id) are ignored and counted.
 *
 * Nothing here logs. A listener is used by one thread. */
#ifndef MSEG_QUEUE_H
#define MSEG_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "mseg/model/model.h"
#include "mseg/kernel/nft.h"
#include "mseg/packet/pkt.h"

struct queue_listener;

struct queue_opts {
	uint32_t copy_range;     /* bytes of each packet copied to us; default 128 */
	uint32_t max_len;        /* kernel queue length; default 1024 */
	uint32_t rcvbuf;         /* socket receive buffer; default 4 MiB */
	unsigned batch;          /* messages per recvmmsg; default 32 */
	unsigned max_per_read;   /* packets per queue_listener_read; default 1024 */
	bool fail_open;          /* accept (not drop) when the queue is full */
	bool gso;                /* NFQA_CFG_F_GSO; default true */
};
void queue_opts_init(struct queue_opts *o);

#define QUEUE_DEFAULT_COPY_RANGE 128
#define QUEUE_DEFAULT_MAX_LEN 1024
#define QUEUE_DEFAULT_RCVBUF (4u << 20)
#define QUEUE_DEFAULT_BATCH 32
#define QUEUE_DEFAULT_MAX_PER_READ 1024

/* One queued packet as the handler sees it. Pointers are valid during the
 * handler call only. */
struct queue_packet {
	uint32_t id;             /* the kernel's packet id */
	uint8_t hook;            /* NF_INET_LOCAL_IN, NF_INET_LOCAL_OUT, ... */
	bool dir_known;          /* hook is LOCAL_IN (ingress) or LOCAL_OUT (egress) */
	enum mseg_dir dir;
	uint16_t hw_protocol;    /* ETH_P_IP, ETH_P_IPV6 (host order) */
	const uint8_t *data;     /* from the IP header on */
	uint32_t caplen;         /* bytes at data */
	uint32_t len;            /* the packet's full length */
	int parse_status;        /* pkt_parse(): 0, -EBADMSG, -ENODATA, -EPROTONOSUPPORT */
	struct pkt_info pkt;
	bool has_uid, has_gid;
	uint32_t uid, gid;
	uint32_t mark;
	uint32_t indev, outdev;  /* ifindex; 0 = none */
	bool gso;                /* NFQA_SKB_GSO */
	uint64_t time_ns;        /* CLOCK_REALTIME when received (per recv batch) */
	uint64_t kernel_ns;      /* NFQA_TIMESTAMP (skb timestamp); 0 = absent */
};

/* Returns the verdict: NF_ACCEPT or NF_DROP (<linux/netfilter.h>); anything
 * else drops (and is counted as bad_verdicts). @ctx is the listener's. */
typedef int (*queue_handler_fn)(struct queue_listener *l, void *ctx,
				const struct queue_packet *pkt, void *data);

/* Open a listener for @queue_num inside @ns (socket created in the
 * namespace, bound, configured; waits for the kernel's ack). @opts NULL =
 * defaults. @ctx is handed to the handler (the daemon's endpoint).
 * -EBUSY: another socket has the queue bound in that namespace.
 * -ENOTRECOVERABLE: the thread could not return from the namespace (see
 * netns_socket). */
int queue_listener_open(struct netns *ns, uint16_t queue_num, const struct queue_opts *opts,
			void *ctx, struct queue_listener **ret);
/* Closing the socket unbinds: packets still queued are dropped by the
 * kernel (none are, between reads). Accepts NULL; returns NULL. */
struct queue_listener *queue_listener_free(struct queue_listener *l);

int queue_listener_fd(const struct queue_listener *l);
uint16_t queue_listener_num(const struct queue_listener *l);
void *queue_listener_ctx(const struct queue_listener *l);
void queue_listener_set_ctx(struct queue_listener *l, void *ctx);

/* Turn NFQA_CFG_F_FAIL_OPEN on or off (a mode change: audit = on). */
int queue_listener_set_fail_open(struct queue_listener *l, bool on);
/* Whether the kernel acknowledged fail-open for this listener's queue. */
bool queue_listener_is_fail_open(const struct queue_listener *l);

/* Drain the socket (see above). Returns the number of packets handled, or
 * -errno: a receive error other than EAGAIN/EINTR/ENOBUFS (ENOBUFS: the
 * socket overran and messages were lost; counted, and reading goes on), or
 * a failed verdict send (-ENOBUFS/-ENOMEM under memory pressure). After a
 * send failure the verdicts stay buffered and the next call sends them
 * before reading anything: log it and call again on the next event or
 * timer tick. */
int queue_listener_read(struct queue_listener *l, queue_handler_fn fn, void *data);

/* For tests and fuzzing: a listener without a socket (no namespace, no
 * kernel), to which queue_listener_feed() hands datagrams as if
 * queue_listener_read() had received them from the kernel: the messages
 * are parsed, @fn is called for each packet, and the verdicts are counted
 * in the stats and then dropped. @msg_flags as recvmsg() gives them
 * (MSG_TRUNC: the datagram was cut to @len). Returns what the datagram's
 * NLMSG_ERROR said (-errno) or 0; -EBUSY on a listener with a socket. */
int queue_listener_new_detached(uint16_t queue_num, const struct queue_opts *opts, void *ctx,
				struct queue_listener **ret);
int queue_listener_feed(struct queue_listener *l, const void *buf, size_t len, int msg_flags,
			queue_handler_fn fn, void *data);

struct queue_stats {
	uint64_t reads;          /* recvmmsg calls that returned messages */
	uint64_t packets;        /* packet messages received */
	uint64_t accepted;       /* verdicts given, by kind */
	uint64_t dropped;
	uint64_t verdict_msgs;   /* verdict messages sent (a batch counts once) */
	uint64_t sends;          /* sendmsg calls for verdicts */
	uint64_t parse_errors;   /* pkt_parse said malformed (-EBADMSG) */
	uint64_t short_captures; /* pkt_parse ran out of captured bytes (-ENODATA) */
	uint64_t unknown_proto;  /* neither IPv4 nor IPv6 */
	uint64_t enobufs;        /* recv reported ENOBUFS: messages lost */
	uint64_t truncated;      /* a message longer than our buffer (MSG_TRUNC) */
	uint64_t bad_msgs;       /* unparsable messages, or not from the kernel */
	uint64_t bad_verdicts;   /* handler returned neither NF_ACCEPT nor NF_DROP */
	uint64_t kernel_errors;  /* NLMSG_ERROR from the kernel (e.g. unknown id) */
	int last_kernel_error;   /* its -errno */
	uint64_t send_errors;    /* failed verdict sends (retried) */
	uint64_t lost_verdicts;  /* verdicts that could not even be buffered (0) */
	uint64_t early_packets;  /* packets seen while opening (given the
				    fail_open verdict, no handler) */
};
const struct queue_stats *queue_listener_stats(const struct queue_listener *l);

/* The kernel's view, /proc/net/netfilter/nfnetlink_queue inside the
 * namespace (opened there when the listener was opened). */
struct queue_kstats {
	uint32_t queue_num;
	uint32_t portid;         /* the socket bound to the queue */
	uint32_t queue_total;    /* packets waiting for a verdict now */
	uint32_t copy_mode;
	uint32_t copy_range;
	uint32_t queue_dropped;  /* dropped because the queue was full */
	uint32_t user_dropped;   /* dropped because the socket could not take them */
	uint32_t id_sequence;    /* last packet id */
};
/* -ENOENT when the kernel lists no such queue (not bound). */
int queue_listener_kstats(struct queue_listener *l, struct queue_kstats *ret);

#endif
