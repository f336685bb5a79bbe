/* libFuzzer target for the read-back's netlink parsing (readback.c): the
 * kernel's replies to the generation, table, object, set, element, chain
 * and rule dumps, through libmnl and libnftnl into the same callbacks as
 * on a socket, then compared with an endpoint's plan
 * (readback_parse_for_fuzz(), include/mseg/kernel/readback.h).
 *
 * Input: one byte (bits 0-3: the endpoint of tests/fuzz/fuzz_plan.h's
 * plan; bits 4-5: the queue method 0 native, 1 xt, 2 nflog), then
 * records of [kind: 1 byte, enum readback_reply][length: 2 bytes LE][reply
 * datagram]. tests/tools/nlcapture writes such files from a real table
 * (tests/fuzz/capture.sh).
 *
 * Checks: an in-sync report has no differences and empty text; a report
 * with differences names at most EP_REPORT_MAX_LINES of them, plus one
 * summary line.
 *
 * libnftnl 1.2.4 calls exit() ("nf_tables kernel ABI is broken") when a
 * known attribute has the wrong size (regress_readback/gen-id-wrong-size-
 * libnftnl-exits). Only the kernel's replies reach it in msegd (nl_request
 * ignores any other sender), and the kernel's attributes have the right
 * sizes; here such an exit ends the input instead of the run (exit() below
 * jumps back), which leaks what libnftnl had allocated: this target runs
 * without leak detection (test_nlparse runs the parser under valgrind).
 *
 *   make fuzz-build && build-fuzz/fuzz_readback tests/fuzz/corpus_readback
 *   MSEG_FUZZ_VERBOSE=1 build-fuzz/fuzz_readback FILE   (prints the report) */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "mseg/kernel/readback.h"
#include "fuzz_plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MSGS 256

static struct fuzz_plan fp;
static int fp_built;
static jmp_buf in_parse;
static bool parsing;

/* what the jump leaks is not ours: no leak check at exit either */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "detect_leaks=0";
}

/* libnftnl's exit() during a parse returns to the target; any other exit
 * (libFuzzer's own) is the real one. */
void exit(int status)
{
	void (*real_exit)(int);

	if (parsing) {
		parsing = false;
		longjmp(in_parse, 1);
	}
	real_exit = (void (*)(int))dlsym(RTLD_NEXT, "exit");
	if (real_exit)
		real_exit(status);
	_exit(status);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct readback_msg msgs[MAX_MSGS];
	struct table_opts opts = { .rate = TABLE_DEFAULT_RATE, .burst = TABLE_DEFAULT_BURST };
	struct ep_table_report rep;
	struct mseg_err err;
	void *copies[MAX_MSGS];
	size_t n = 0, pos = 1;
	int r;

	if (!fp_built) {
		if (fuzz_plan_build(&fp) < 0)
			abort();
		fp_built = 1;
	}
	if (size < 1)
		return 0;
	opts.queue = (enum queue_method)(((data[0] >> 4) & 3) % 3);
	while (n < MAX_MSGS && pos + 3 <= size) {
		size_t len = (size_t)data[pos + 1] | (size_t)data[pos + 2] << 8;

		if (len > size - pos - 3)
			len = size - pos - 3;
		/* each datagram in a buffer of its own size, as recv() fills
		 * one: ASan sees any read past it; 4-byte aligned like a
		 * socket buffer */
		copies[n] = malloc(len ? len : 1);
		if (!copies[n])
			abort();
		memcpy(copies[n], data + pos + 3, len);
		msgs[n].kind = (enum readback_reply)(data[pos] % READBACK_N_REPLIES);
		msgs[n].buf = copies[n];
		msgs[n].len = len;
		n++;
		pos += 3 + len;
	}
	if (setjmp(in_parse)) {
		/* libnftnl gave up on an attribute (see above) */
		for (size_t i = 0; i < n; i++)
			free(copies[i]);
		return 0;
	}
	parsing = true;
	r = readback_parse_for_fuzz(msgs, n, &fp.plan->eps[(data[0] & 15) % fp.plan->n_eps], &opts,
				    &rep, &err);
	parsing = false;
	if (getenv("MSEG_FUZZ_VERBOSE"))
		fprintf(stderr, "%zu replies: %s\n%s", n, r < 0 ? err.msg : rep.in_sync ? "in sync" :
			"drifted", r < 0 ? "" : rep.text);
	if (r == 0) {
		size_t lines = 0;

		for (const char *p = rep.text; *p; p++)
			lines += *p == '\n';
		if (rep.in_sync != (rep.n_diffs == 0) || (rep.in_sync && rep.text[0]) ||
		    lines > EP_REPORT_MAX_LINES + 1 || (rep.n_diffs && lines == 0))
			abort();
		ep_table_report_release(&rep);
	}
	for (size_t i = 0; i < n; i++)
		free(copies[i]);
	return 0;
}
