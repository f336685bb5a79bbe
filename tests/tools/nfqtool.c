/* nfqtool: NFQUEUE listeners in network namespaces that record flows the
 * way msegd does (queue.c -> pkt.c -> flow.c, one event loop, one ring for
 * every namespace), for the integration tests and by hand.
 *
 *   nfqtool --netns PATH [--netns PATH]... [--queue N] [--mode drop|accept]
 *           [--count N] [--timeout SEC] [--endpoint ID]... [--name NAME]...
 *           [--namespace NS]... [--window MS] [--ring N] [--log FILE]
 *           [--log-max-size BYTES] [--log-files N] [--copy-range N]
 *           [--queue-len N] [--rcvbuf BYTES] [--fail-open] [--ready FILE]
 *           [--follow]
 *
 * The i-th --endpoint/--name/--namespace belong to the i-th --netns (the
 * endpoint id defaults to "ep", "ep2", "ep3", ...).
 * Runs until --count packets were handled, --timeout seconds passed, or
 * SIGTERM/SIGINT. Then prints every flow record of the ring as one JSON
 * line on stdout (final counts), and one JSON line of counters on stderr:
 *   {"stats":{"packets":..,"parse_errors":..,...},"kernel":{..}}
 * --follow prints each record as it is created or updated, instead.
 * --ready FILE is created once the queue is bound (tests wait for it).
 * Exit status: 0 ok, 1 failure, 2 usage. */
#include <errno.h>
#include <getopt.h>
#include <linux/netfilter.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "mseg/util/evloop.h"
#include "mseg/packet/flow.h"
#include "mseg/kernel/nft.h"
#include "mseg/packet/queue.h"

static volatile sig_atomic_t stop;

#define MAX_NS 16

struct tool {
	struct queue_listener *l[MAX_NS];
	struct netns *ns[MAX_NS];
	struct flow_ep *ep[MAX_NS];
	struct evloop_source *src[MAX_NS];
	unsigned n;
	struct flow_ring *ring;
	struct flow_log *log;
	bool accept;
	bool follow;
	uint64_t max_packets, handled, unrecorded;
	uint64_t follow_seq;
	int read_error;
};

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int print_rec(const struct flow_record *rec, void *data)
{
	json_t *o = flow_record_to_json(rec);

	(void)data;
	if (!o)
		return -ENOMEM;
	json_dumpf(o, stdout, JSON_COMPACT);
	fputc('\n', stdout);
	json_decref(o);
	return 0;
}

static int handler(struct queue_listener *l, void *ctx, const struct queue_packet *p, void *data)
{
	struct tool *t = data;
	struct flow_event ev = {
		.ep = ctx,          /* the endpoint of the listener's namespace */
		.dir = p->dir,
		.verdict = t->accept ? FLOW_AUDITED : FLOW_DROPPED,
		.pkt = &p->pkt,
		.has_uid = p->has_uid,
		.has_gid = p->has_gid,
		.uid = p->uid,
		.gid = p->gid,
		.time_ns = p->time_ns,
	};

	(void)l;
	t->handled++;
	if (!p->dir_known || flow_ring_add(t->ring, &ev, NULL) < 0)
		t->unrecorded++;
	return t->accept ? NF_ACCEPT : NF_DROP;
}

static struct tool tool;

static void on_queue(struct evloop_source *src, uint32_t events, void *data)
{
	struct tool *t = &tool;
	struct queue_listener *l = data;
	int r;

	(void)src;
	(void)events;
	r = queue_listener_read(l, handler, t);
	if (r < 0)
		t->read_error = r;
	if (t->follow) {
		struct flow_filter f;

		flow_filter_init(&f);
		f.after_seq = t->follow_seq;
		t->follow_seq = flow_ring_seq(t->ring);
		flow_ring_query(t->ring, &f, print_rec, NULL);
		fflush(stdout);
	}
}

/* every second: close aggregation windows, write the log */
static void on_tick(struct evloop_source *src, uint32_t events, void *data)
{
	struct tool *t = data;

	(void)src;
	(void)events;
	flow_ring_expire(t->ring, now_ns());
	if (t->log)
		(void)flow_log_flush(t->log);
}

static void print_stats(struct tool *t)
{
	struct queue_stats s = { 0 };
	struct queue_kstats k, ks = { 0 };
	struct flow_ring_stats rs;
	bool have_k = false;
	json_t *o;

	for (unsigned i = 0; i < t->n; i++) {
		const struct queue_stats *q = queue_listener_stats(t->l[i]);

		s.packets += q->packets;
		s.accepted += q->accepted;
		s.dropped += q->dropped;
		s.verdict_msgs += q->verdict_msgs;
		s.sends += q->sends;
		s.reads += q->reads;
		s.parse_errors += q->parse_errors;
		s.short_captures += q->short_captures;
		s.unknown_proto += q->unknown_proto;
		s.enobufs += q->enobufs;
		s.truncated += q->truncated;
		s.bad_msgs += q->bad_msgs;
		s.kernel_errors += q->kernel_errors;
		s.send_errors += q->send_errors;
		s.early_packets += q->early_packets;
		if (queue_listener_kstats(t->l[i], &k) == 0) {
			have_k = true;
			ks.queue_total += k.queue_total;
			ks.copy_range = k.copy_range;
			ks.queue_dropped += k.queue_dropped;
			ks.user_dropped += k.user_dropped;
			ks.id_sequence += k.id_sequence;
		}
	}
	flow_ring_stats_get(t->ring, &rs);
	o = json_pack("{s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}}",
		      "stats", "packets", (json_int_t)s.packets, "accepted",
		      (json_int_t)s.accepted, "dropped", (json_int_t)s.dropped, "verdict_msgs",
		      (json_int_t)s.verdict_msgs, "sends", (json_int_t)s.sends, "reads",
		      (json_int_t)s.reads, "parse_errors", (json_int_t)s.parse_errors,
		      "short_captures", (json_int_t)s.short_captures, "unknown_proto",
		      (json_int_t)s.unknown_proto, "enobufs", (json_int_t)s.enobufs,
		      "truncated", (json_int_t)s.truncated, "bad_msgs", (json_int_t)s.bad_msgs,
		      "kernel_errors", (json_int_t)s.kernel_errors, "send_errors",
		      (json_int_t)s.send_errors, "early_packets", (json_int_t)s.early_packets,
		      "records", (json_int_t)rs.created, "aggregated", (json_int_t)rs.aggregated,
		      "unrecorded", (json_int_t)t->unrecorded);
	/* the kernel's counters, summed over the namespaces */
	if (o && have_k)
		json_object_set_new(o, "kernel",
				    json_pack("{s:I,s:I,s:I,s:I,s:I}", "queue_total",
					      (json_int_t)ks.queue_total, "copy_range",
					      (json_int_t)ks.copy_range, "queue_dropped",
					      (json_int_t)ks.queue_dropped, "user_dropped",
					      (json_int_t)ks.user_dropped, "id_sequence",
					      (json_int_t)ks.id_sequence));
	if (o) {
		json_dumpf(o, stderr, JSON_COMPACT);
		fputc('\n', stderr);
	}
	json_decref(o);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: nfqtool --netns PATH [--netns PATH]... [--queue N] [--mode drop|accept]\n"
		   "               [--count N] [--timeout SEC] [--endpoint ID]... [--name NAME]...\n"
		   "               [--namespace NS]... [--window MS] [--ring N] [--log FILE]\n"
		   "               [--log-max-size BYTES] [--log-files N] [--copy-range N]\n"
		   "               [--queue-len N] [--rcvbuf BYTES] [--fail-open] [--ready FILE]\n"
		   "               [--follow]\n");
}

static bool parse_u64(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-')
		return false;
	*ret = v;
	return true;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "netns", required_argument, NULL, 'n' },
		{ "queue", required_argument, NULL, 'q' },
		{ "mode", required_argument, NULL, 'm' },
		{ "count", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "endpoint", required_argument, NULL, 'e' },
		{ "name", required_argument, NULL, 'N' },
		{ "namespace", required_argument, NULL, 'S' },
		{ "window", required_argument, NULL, 'w' },
		{ "ring", required_argument, NULL, 'r' },
		{ "log", required_argument, NULL, 'l' },
		{ "log-max-size", required_argument, NULL, 'M' },
		{ "log-files", required_argument, NULL, 'F' },
		{ "copy-range", required_argument, NULL, 'C' },
		{ "queue-len", required_argument, NULL, 'L' },
		{ "rcvbuf", required_argument, NULL, 'B' },
		{ "fail-open", no_argument, NULL, 'o' },
		{ "ready", required_argument, NULL, 'R' },
		{ "follow", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *paths[MAX_NS] = { 0 }, *epids[MAX_NS] = { 0 }, *epnames[MAX_NS] = { 0 };
	const char *epnss[MAX_NS] = { 0 }, *log_path = NULL, *ready = NULL;
	unsigned n_paths = 0, n_ids = 0, n_names = 0, n_nss = 0;
	uint64_t queue_num = 0, timeout = 0, window = FLOW_DEFAULT_WINDOW_MS;
	uint64_t ring_size = FLOW_RING_DEFAULT_CAPACITY, log_max = 0, log_files = 2, v;
	struct queue_opts qo;
	struct tool *t = &tool;
	struct evloop *loop = NULL;
	struct evloop_source *tick = NULL;
	struct sigaction sa = { .sa_handler = on_signal };
	uint64_t deadline = 0;
	int c, r, status = 1;

	queue_opts_init(&qo);
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (n_paths == MAX_NS)
				goto usage;
			paths[n_paths++] = optarg;
			break;
		case 'q':
			if (!parse_u64(optarg, &queue_num) || queue_num > 65535)
				goto usage;
			break;
		case 'm':
			if (strcmp(optarg, "drop") == 0)
				t->accept = false;
			else if (strcmp(optarg, "accept") == 0)
				t->accept = true;
			else
				goto usage;
			break;
		case 'c':
			if (!parse_u64(optarg, &t->max_packets))
				goto usage;
			break;
		case 't':
			if (!parse_u64(optarg, &timeout))
				goto usage;
			break;
		case 'e':
			if (n_ids == MAX_NS)
				goto usage;
			epids[n_ids++] = optarg;
			break;
		case 'N':
			if (n_names == MAX_NS)
				goto usage;
			epnames[n_names++] = optarg;
			break;
		case 'S':
			if (n_nss == MAX_NS)
				goto usage;
			epnss[n_nss++] = optarg;
			break;
		case 'w':
			if (!parse_u64(optarg, &window))
				goto usage;
			break;
		case 'r':
			if (!parse_u64(optarg, &ring_size) || ring_size == 0 || ring_size > 10000000)
				goto usage;
			break;
		case 'l': log_path = optarg; break;
		case 'M':
			if (!parse_u64(optarg, &log_max))
				goto usage;
			break;
		case 'F':
			if (!parse_u64(optarg, &log_files) || log_files > 1000)
				goto usage;
			break;
		case 'C':
			if (!parse_u64(optarg, &v) || v == 0 || v > 65535)
				goto usage;
			qo.copy_range = (uint32_t)v;
			break;
		case 'L':
			if (!parse_u64(optarg, &v) || v == 0 || v > UINT32_MAX)
				goto usage;
			qo.max_len = (uint32_t)v;
			break;
		case 'B':
			if (!parse_u64(optarg, &v) || v == 0 || v > (1u << 30))
				goto usage;
			qo.rcvbuf = (uint32_t)v;
			break;
		case 'o': qo.fail_open = true; break;
		case 'R': ready = optarg; break;
		case 'f': t->follow = true; break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto usage;
		}
	}
	if (optind != argc || n_paths == 0 || n_ids > n_paths || n_names > n_paths ||
	    n_nss > n_paths)
		goto usage;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	t->ring = flow_ring_new((size_t)ring_size, window);
	loop = evloop_new();
	if (!t->ring || !loop) {
		fprintf(stderr, "nfqtool: out of memory\n");
		goto out;
	}
	if (log_path) {
		struct flow_log_opts lo;

		flow_log_opts_init(&lo, log_path);
		lo.max_size = log_max;
		lo.max_files = (unsigned)log_files;
		r = flow_log_open(&lo, &t->log);
		if (r < 0) {
			fprintf(stderr, "nfqtool: %s: %s\n", log_path, strerror(-r));
			goto out;
		}
		flow_ring_set_sink(t->ring, flow_log_sink, t->log);
	}
	for (unsigned i = 0; i < n_paths; i++) {
		char idbuf[16];

		snprintf(idbuf, sizeof(idbuf), i ? "ep%u" : "ep", i + 1);
		t->ep[i] = flow_ep_new(epids[i] ? epids[i] : idbuf, epnames[i], epnss[i]);
		if (!t->ep[i]) {
			fprintf(stderr, "nfqtool: out of memory\n");
			goto out;
		}
		r = netns_open(paths[i], &t->ns[i]);
		if (r < 0) {
			fprintf(stderr, "nfqtool: %s: %s\n", paths[i], strerror(-r));
			goto out;
		}
		/* the endpoint is the listener's context: the handler gets it */
		r = queue_listener_open(t->ns[i], (uint16_t)queue_num, &qo, t->ep[i], &t->l[i]);
		if (r < 0) {
			fprintf(stderr, "nfqtool: queue %llu in %s: %s\n",
				(unsigned long long)queue_num, paths[i], strerror(-r));
			goto out;
		}
		t->n = i + 1;
		t->src[i] = evloop_add_fd(loop, queue_listener_fd(t->l[i]), EPOLLIN, on_queue,
					  t->l[i], &r);
		if (!t->src[i]) {
			fprintf(stderr, "nfqtool: event loop: %s\n", strerror(-r));
			goto out;
		}
	}
	tick = evloop_add_timer(loop, 1000, 1000, on_tick, t, &r);
	if (!tick) {
		fprintf(stderr, "nfqtool: event loop: %s\n", strerror(-r));
		goto out;
	}
	if (ready) {
		FILE *f = fopen(ready, "w");

		if (f)
			fclose(f);
	}
	/* packets that came while opening */
	for (unsigned i = 0; i < t->n; i++)
		on_queue(t->src[i], EPOLLIN, t->l[i]);
	if (timeout)
		deadline = now_ns() + timeout * 1000000000u;
	while (!stop && !t->read_error) {
		if (t->max_packets && t->handled >= t->max_packets)
			break;
		if (deadline && now_ns() >= deadline)
			break;
		r = evloop_run_once(loop, 100);
		if (r < 0 && r != -EINTR) {
			fprintf(stderr, "nfqtool: epoll: %s\n", strerror(-r));
			goto out;
		}
	}
	if (t->read_error) {
		fprintf(stderr, "nfqtool: read: %s\n", strerror(-t->read_error));
		goto out;
	}
	flow_ring_close_all(t->ring);
	if (!t->follow)
		flow_ring_query(t->ring, NULL, print_rec, NULL);
	fflush(stdout);
	print_stats(t);
	if (t->log && flow_log_flush(t->log) < 0)
		fprintf(stderr, "nfqtool: %s: write failed\n", log_path);
	status = 0;
out:
	for (unsigned i = 0; i < MAX_NS; i++) {
		evloop_source_remove(t->src[i]);
		t->l[i] = queue_listener_free(t->l[i]);
		t->ns[i] = netns_free(t->ns[i]);
		t->ep[i] = flow_ep_unref(t->ep[i]);
	}
	evloop_source_remove(tick);
	evloop_free(loop);
	flow_log_free(t->log);
	flow_ring_free(t->ring);
	return status;
usage:
	usage(stderr);
	return 2;
}
