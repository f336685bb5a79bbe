/* Flow records (docs/rest-api.md, Flows): what msegd saw of unmatched traffic and what
 * it did with it. Three parts:
 *
 * - the ring: an in-memory ring of the newest records (default 10,000) with
 *   a hash table for aggregation. Repeats of the same (endpoint, direction,
 *   verdict, src, dst, proto, dport) within the aggregation window (default
 *   60 s, counted from the record's first packet) update count and
 *   last_seen of one record instead of adding records: a dropped SYN is
 *   retransmitted, a refused client retries. O(1) per packet. When the ring
 *   is full the oldest record is overwritten (and leaves the hash).
 *   ICMP/ICMPv6 aggregate on type and code in place of the port; a
 *   malformed packet only with packets malformed the same way.
 *
 * - JSON: one record as a JSON object (jansson), the same for the REST API,
 *   the follow stream and the log file:
 *     {"id":7,"time":"2024-05-01T12:00:03.250Z",
 *      "endpoint":{"id":"db-1","name":"db","namespace":"shop"},
 *      "direction":"ingress","src":"10.0.0.9","sport":40312,
 *      "dst":"10.0.0.2","dport":5432,"proto":"tcp","verdict":"dropped",
 *      "uid":70,"gid":70,"count":3,
 *      "first_seen":"2024-05-01T12:00:00.250Z",
 *      "last_seen":"2024-05-01T12:00:03.250Z"}
 *   Field names are stable. "sport"/"dport" appear for tcp, udp, udplite
 *   and sctp. The source port is not part of the aggregation key (a client
 *   retrying connects from a new port each time), so "sport" is the first
 *   packet's, and "sports": N (only when N > 1) says the record covers
 *   packets from more than one source port: N is 1 + the number of times
 *   the source port changed from one packet to the next (for retries from
 *   fresh ephemeral ports, the number of distinct ports); "icmp_type"/"icmp_code" for icmp and icmpv6; "uid"/"gid" when
 *   the kernel gave them (egress packets of local sockets); "error" (the
 *   parser's reason) only for malformed packets. "proto" is a name for the
 *   protocols above and a number for the rest. "time" is the time of the
 *   record's latest packet (= last_seen). Times are RFC 3339, UTC, with
 *   milliseconds. "id" is unique and increasing in creation order, also
 *   across restarts (the log carries it on): a later object with the same
 *   id supersedes an earlier one.
 *
 * - the log file: JSON lines, appended through a buffer (flow_log_flush on
 *   a timer, or when the buffer fills) with size-based rotation
 *   (FILE -> FILE.1 -> ... -> FILE.N). What is written, and when:
 *     - a new record, at once (count 1);
 *     - the same record again (same id, final count and last_seen) when its
 *       aggregation window closes, if more packets came after the first.
 *       flow_ring_expire() closes windows (call it from a timer);
 *       overwriting an open record closes it too.
 *   So a reader that keeps the last line per id has every record, and a
 *   record's log lines are at most one window apart.
 *   On restart flow_log_load_tail() puts the newest records of the log back
 *   into the ring, so the ring survives a restart.
 *
 * Times are CLOCK_REALTIME nanoseconds. Nothing here logs or blocks for
 * long: the ring never allocates after flow_ring_new(), log writes are
 * buffered. Single-threaded, like the daemon's event loop. */
#ifndef MSEG_FLOW_H
#define MSEG_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "mseg/model/model.h"
#include "mseg/packet/pkt.h"

#define FLOW_RING_DEFAULT_CAPACITY 10000
#define FLOW_DEFAULT_WINDOW_MS 60000
#define FLOW_LOG_DEFAULT_MAX_SIZE (16u << 20)
#define FLOW_LOG_DEFAULT_MAX_FILES 5
#define FLOW_LOG_DEFAULT_BUFFER (64u << 10)
/* a log line longer than this is not read back */
#define FLOW_LOG_MAX_LINE 8192

enum flow_verdict {
	FLOW_DROPPED = 0,   /* enforce: the packet was dropped */
	FLOW_AUDITED = 1,   /* audit: it would have been dropped, it was accepted */
};

/* ---- endpoint identity, shared by records (refcounted) ---- */

/* The endpoint a record belongs to. Records keep a reference, so a record
 * outlives the endpoint's removal from the inventory. Read-only fields. */
struct flow_ep {
	unsigned refs;
	uint32_t hash;           /* of id */
	char *id;
	char *name;              /* "" when unknown */
	char *ns;                /* "" when unknown */
};

/* NULL: out of memory. @name and @ns may be NULL. refs = 1. */
struct flow_ep *flow_ep_new(const char *id, const char *name, const char *ns);
struct flow_ep *flow_ep_ref(struct flow_ep *ep);
/* Drops a reference, frees at zero; accepts NULL; returns NULL. */
struct flow_ep *flow_ep_unref(struct flow_ep *ep);

/* ---- records ---- */

#define FLOW_F_PORTS (1u << 0)   /* sport/dport valid */
#define FLOW_F_ICMP  (1u << 1)   /* icmp_type/icmp_code valid */
#define FLOW_F_UID   (1u << 2)
#define FLOW_F_GID   (1u << 3)

struct flow_record {
	uint64_t id;             /* unique, increasing in creation order */
	uint64_t seq;            /* ring sequence number of its last change */
	struct flow_ep *ep;      /* a reference */
	uint8_t dir;             /* enum mseg_dir */
	uint8_t verdict;         /* enum flow_verdict */
	uint8_t proto;
	uint8_t flags;           /* FLOW_F_* */
	uint8_t err;             /* enum pkt_err of the packet that created it */
	uint8_t icmp_type, icmp_code;
	struct mseg_addr src, dst;
	uint16_t sport, dport;   /* sport: of the record's first packet */
	uint16_t sport_last;     /* of its latest packet */
	uint32_t sports;         /* source ports seen (see "sports" above); 0 without ports */
	uint32_t uid, gid;
	uint64_t count;          /* packets */
	uint64_t first_ns, last_ns;
};

/* Drop the record's endpoint reference (records filled by
 * flow_record_from_json). */
void flow_record_release(struct flow_record *rec);

/* "ingress"/"egress", "dropped"/"audited". */
const char *flow_dir_name(enum mseg_dir dir);
const char *flow_verdict_name(enum flow_verdict v);
int flow_dir_parse(const char *s, enum mseg_dir *ret);
int flow_verdict_parse(const char *s, enum flow_verdict *ret);

/* RFC 3339 UTC with milliseconds, "2024-05-01T12:00:00.250Z", into @buf
 * (at least FLOW_TIME_MAX bytes). */
#define FLOW_TIME_MAX 32
const char *flow_time_format(uint64_t ns, char *buf, size_t size);
/* Accepts that format, also without fraction or with 1..9 digits of it,
 * "Z" or "+hh:mm"/"-hh:mm". -EINVAL otherwise. */
int flow_time_parse(const char *s, uint64_t *ret_ns);

/* A new JSON object (see above); NULL: out of memory. */
json_t *flow_record_to_json(const struct flow_record *rec);
/* The inverse; @ret gets a new endpoint reference (flow_record_release).
 * -EINVAL when a required field is missing or wrong: id, endpoint.id,
 * direction, src, dst, proto, verdict, count, first_seen, last_seen. */
int flow_record_from_json(const json_t *obj, struct flow_record *ret);

/* ---- the ring ---- */

struct flow_ring;

/* What happened to a record, for the sink (the log). */
enum flow_change {
	FLOW_CHANGE_NEW,         /* created */
	FLOW_CHANGE_FINAL,       /* window closed after further packets */
};
typedef void (*flow_sink_fn)(const struct flow_record *rec, enum flow_change what, void *data);

/* @capacity 0 = FLOW_RING_DEFAULT_CAPACITY; @window_ms 0 = no
 * aggregation. NULL: out of memory. */
struct flow_ring *flow_ring_new(size_t capacity, uint64_t window_ms);
/* Does not call the sink; call flow_ring_close_all() first to log the
 * open windows. Accepts NULL; returns NULL. */
struct flow_ring *flow_ring_free(struct flow_ring *ring);

void flow_ring_set_sink(struct flow_ring *ring, flow_sink_fn fn, void *data);

/* One packet, as the queue listener saw it. */
struct flow_event {
	struct flow_ep *ep;
	enum mseg_dir dir;
	enum flow_verdict verdict;
	const struct pkt_info *pkt;   /* parsed (maybe partly: pkt->err) */
	bool has_uid, has_gid;
	uint32_t uid, gid;
	uint64_t time_ns;
};

/* Aggregate into the open record of the same key, or create one (the sink
 * gets FLOW_CHANGE_NEW). @ret_rec (may be NULL) points into the ring, valid
 * until the next call that changes the ring. Returns 1 for a new record, 0
 * for an update, -EINVAL when the packet has no addresses (nothing parsed:
 * no record). */
int flow_ring_add(struct flow_ring *ring, const struct flow_event *ev,
		  const struct flow_record **ret_rec);

/* Close the windows that ended at @now_ns (first packet + window <= now):
 * they stop aggregating, and the sink gets FLOW_CHANGE_FINAL for those with
 * count > 1. Cheap (amortized O(1)): call it every second or so. */
void flow_ring_expire(struct flow_ring *ring, uint64_t now_ns);
/* Close every window (shutdown). */
void flow_ring_close_all(struct flow_ring *ring);

/* Append a closed record as it is (id kept; the ring's next id moves past
 * it), for reloading. Takes its own endpoint reference. Records must come
 * in increasing id order; -EINVAL otherwise. */
int flow_ring_insert(struct flow_ring *ring, const struct flow_record *rec);

size_t flow_ring_count(const struct flow_ring *ring);
size_t flow_ring_capacity(const struct flow_ring *ring);
/* The sequence number of the newest change (0: none yet). A follower keeps
 * the value it last saw and asks for after_seq = that value. */
uint64_t flow_ring_seq(const struct flow_ring *ring);

struct flow_ring_stats {
	uint64_t packets;        /* flow_ring_add calls that made or updated a record */
	uint64_t created;
	uint64_t aggregated;     /* packets that updated an open record */
	uint64_t overwritten;    /* records pushed out of the full ring */
	uint64_t closed;         /* windows closed */
	uint64_t open;           /* records still aggregating (gauge) */
};
void flow_ring_stats_get(const struct flow_ring *ring, struct flow_ring_stats *ret);

/* Filters for queries (REST /v1/flows). */
struct flow_filter {
	const char *endpoint;    /* endpoint id; NULL = any */
	const char *ns;          /* endpoint namespace; NULL = any */
	int dir;                 /* enum mseg_dir; -1 = any */
	int verdict;             /* enum flow_verdict; -1 = any */
	int proto;               /* protocol number; -1 = any */
	int port;                /* destination port; -1 = any (port-less records never match) */
	uint64_t since_ns;       /* last_seen >= since_ns; 0 = any */
	uint64_t after_seq;      /* changed after this sequence number; 0 = any */
	uint64_t upto_seq;       /* ... and at or before this one; 0 = any */
	size_t limit;            /* only the newest @limit matches; 0 = all */
};
void flow_filter_init(struct flow_filter *f);   /* matches everything */
bool flow_filter_match(const struct flow_filter *f, const struct flow_record *rec);

/* Calls @fn for each matching record, oldest first (newest last). A
 * nonzero return from @fn stops the walk and is returned; else 0. @fn must
 * not change the ring. */
typedef int (*flow_query_fn)(const struct flow_record *rec, void *data);
int flow_ring_query(const struct flow_ring *ring, const struct flow_filter *f,
		    flow_query_fn fn, void *data);

/* The same, resumable: starts at ring position *@pos (0: the oldest
 * record) and, when @fn returns non-zero, stops and leaves *@pos at the
 * record after the one it stopped on; at the end *@pos is past the newest
 * record. Positions of records that fell out of the ring are skipped. */
int flow_ring_query_from(const struct flow_ring *ring, const struct flow_filter *f,
			 uint64_t *pos, flow_query_fn fn, void *data);

/* ---- the log file ---- */

struct flow_log;

struct flow_log_opts {
	const char *path;
	uint64_t max_size;       /* rotate before a line would pass it; 0 = default */
	unsigned max_files;      /* rotated files kept (FILE.1 .. FILE.N); 0 = none */
	size_t buffer_size;      /* 0 = default */
};
void flow_log_opts_init(struct flow_log_opts *o, const char *path);

/* Open (create, or append to what a previous run left: its size counts
 * towards the next rotation). */
int flow_log_open(const struct flow_log_opts *opts, struct flow_log **ret_log);
/* Flushes (errors ignored: call flow_log_flush first to see them), closes.
 * Accepts NULL; returns NULL. */
struct flow_log *flow_log_free(struct flow_log *log);

/* Queue one line for @rec. Writes only when the buffer is full or the file
 * must rotate. A line that cannot be kept (write errors with a full
 * buffer, out of memory) is counted in lost_lines and -errno returned. */
int flow_log_append(struct flow_log *log, const struct flow_record *rec);
/* Write what is buffered. -errno from write (the data stays buffered). */
int flow_log_flush(struct flow_log *log);
/* Flush, then FILE.(N-1) -> FILE.N, ..., FILE -> FILE.1, new FILE. */
int flow_log_rotate(struct flow_log *log);

/* A sink for flow_ring_set_sink(ring, flow_log_sink, log): every change
 * goes to the log. */
void flow_log_sink(const struct flow_record *rec, enum flow_change what, void *log);

struct flow_log_stats {
	uint64_t lines;          /* appended */
	uint64_t bytes_written;
	uint64_t writes;         /* write() calls */
	uint64_t rotations;
	uint64_t write_errors;
	uint64_t lost_lines;
	uint64_t size;           /* current file, buffered bytes included */
	int last_error;          /* -errno of the last failure; 0 = none */
};
void flow_log_stats_get(const struct flow_log *log, struct flow_log_stats *ret);

/* Put the newest records of the log (FILE, then FILE.1 ... FILE.@max_files
 * as far as needed) into @ring, up to its capacity, oldest first; for each
 * id the last line wins. Reads files backwards from the end, so the cost
 * follows the ring's size, not the log's. Lines that do not parse are
 * skipped and counted. Missing files are not an error. Call it on an empty
 * ring, before packets. */
int flow_log_load_tail(const char *path, unsigned max_files, struct flow_ring *ring,
		       size_t *ret_loaded, size_t *ret_skipped);

#endif
