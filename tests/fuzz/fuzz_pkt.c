/* libFuzzer target for the packet parser (pkt.c), and what the queue
 * listener does with its result: a flow record and its JSON.
 *
 * Input: two bytes choosing how much of the packet is "captured" (the
 * copy range), then the packet from the IP header on. The captured part is
 * copied to an exact-size heap buffer, so ASan catches any read past it.
 *
 * Built and run by `make fuzz` (tests/fuzz/run.sh), which also replays
 * the corpus_pkt/ and regress_pkt/ inputs.
 * Crashing inputs go into tests/fuzz/corpus_pkt/ as regression files. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/packet/flow.h"
#include "mseg/packet/pkt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct flow_ring *ring;
	static struct flow_ep *ep;
	struct pkt_info p;
	struct flow_event ev = { 0 };
	const struct flow_record *rec;
	size_t len, cap;
	uint8_t *copy;
	int r;

	if (size < 2)
		return 0;
	if (!ring) {
		ring = flow_ring_new(64, 1000);
		ep = flow_ep_new("fuzz", "fuzz", "fuzz");
		if (!ring || !ep)
			abort();
	}
	len = size - 2;
	cap = ((size_t)data[0] << 8 | data[1]) % (len + 1);
	copy = malloc(cap ? cap : 1);
	if (!copy)
		return 0;
	memcpy(copy, data + 2, cap);
	r = pkt_parse(copy, cap, len, &p);
	if ((r == 0) != (p.err == PKT_OK) || p.l4_off > len + 0u)
		abort();
	ev.ep = ep;
	ev.pkt = &p;
	ev.time_ns = (uint64_t)size * 1000000u;
	if (flow_ring_add(ring, &ev, &rec) >= 0) {
		json_t *o = flow_record_to_json(rec);
		struct flow_record back;

		if (o && flow_record_from_json(o, &back) == 0)
			flow_record_release(&back);
		else if (o)
			abort();    /* our own JSON must read back */
		json_decref(o);
	}
	free(copy);
	return 0;
}
