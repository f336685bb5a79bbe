/* libFuzzer target for the NFQUEUE message parser (queue.c): one datagram
 * as the listener receives it from the kernel, through libmnl and
 * libnetfilter_queue's attribute parser into struct queue_packet, the
 * packet parser and a verdict; then a flow record, as msegd's flow
 * pipeline makes one. No socket: queue_listener_feed() on a detached
 * listener (include/mseg/packet/queue.h).
 *
 * Input: one option byte (bit 0: the datagram was truncated, MSG_TRUNC;
 * bit 1: fail-open; bit 2: the handler answers with a bad verdict every
 * other packet), then the datagram. tests/tools/nlcapture writes such
 * files from real queued packets (tests/fuzz/capture.sh).
 *
 * Checks: the packet handed to the handler lies inside the datagram, its
 * length is at least the captured part, and a packet parsed OK has its
 * layer-4 header inside the packet.
 *
 *   make fuzz-build && build-fuzz/fuzz_queue -max_len=2048 tests/fuzz/corpus_queue
 *   MSEG_FUZZ_VERBOSE=1 build-fuzz/fuzz_queue FILE   (prints each packet) */
#include <errno.h>
#include <linux/netfilter.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mseg/packet/flow.h"
#include "mseg/packet/queue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_ctx {
	const uint8_t *buf;
	size_t len;
	unsigned n;
	bool bad_verdicts;
	struct flow_ring *ring;
	struct flow_ep *ep;
};

static int fuzz_handler(struct queue_listener *l, void *ctx, const struct queue_packet *p,
			void *data)
{
	struct fuzz_ctx *fc = data;
	struct flow_event ev = { 0 };
	const struct flow_record *rec;

	if (p->caplen && ((const uint8_t *)p->data < fc->buf ||
			  (const uint8_t *)p->data + p->caplen > fc->buf + fc->len))
		abort();
	if (p->len < p->caplen || (p->parse_status == 0 && p->pkt.l4_off > p->len))
		abort();
	if (getenv("MSEG_FUZZ_VERBOSE"))
		fprintf(stderr, "packet %u hook %u proto 0x%04x caplen %u len %u uid %d parse %d\n",
			p->id, p->hook, p->hw_protocol, p->caplen, p->len,
			p->has_uid ? (int)p->uid : -1, p->parse_status);
	ev.ep = fc->ep;
	ev.dir = p->dir_known ? p->dir : MSEG_DIR_INGRESS;
	ev.verdict = p->id & 1 ? FLOW_AUDITED : FLOW_DROPPED;
	ev.pkt = &p->pkt;
	ev.has_uid = p->has_uid;
	ev.uid = p->uid;
	ev.has_gid = p->has_gid;
	ev.gid = p->gid;
	ev.time_ns = p->kernel_ns ? p->kernel_ns : p->time_ns;
	if (p->parse_status != -EPROTONOSUPPORT)
		(void)flow_ring_add(fc->ring, &ev, &rec);
	if (fc->bad_verdicts && fc->n++ % 2)
		return 42;
	return p->id % 3 ? NF_DROP : NF_ACCEPT;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct flow_ring *ring;
	static struct flow_ep *ep;
	struct queue_opts o;
	struct queue_listener *l;
	struct fuzz_ctx fc = { 0 };
	uint8_t *copy;

	if (size < 1)
		return 0;
	if (!ring) {
		ring = flow_ring_new(64, 1000);
		ep = flow_ep_new("fuzz", "fuzz", "fuzz");
		if (!ring || !ep)
			abort();
	}
	queue_opts_init(&o);
	o.fail_open = data[0] & 2;
	if (queue_listener_new_detached(0, &o, NULL, &l) < 0)
		abort();
	/* aligned like a socket buffer, sized exactly like the datagram */
	copy = malloc(size - 1 ? size - 1 : 1);
	if (!copy)
		abort();
	memcpy(copy, data + 1, size - 1);
	fc.buf = copy;
	fc.len = size - 1;
	fc.bad_verdicts = data[0] & 4;
	fc.ring = ring;
	fc.ep = ep;
	(void)queue_listener_feed(l, copy, size - 1, data[0] & 1 ? MSG_TRUNC : 0, fuzz_handler, &fc);
	queue_listener_free(l);
	free(copy);
	return 0;
}
