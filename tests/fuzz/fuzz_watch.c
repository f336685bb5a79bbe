/* libFuzzer target for the Kubernetes watch stream parser (kube/watch.c):
 * the stream arrives in chunks of a size the input chooses, every event
 * is handed to a callback that reads it as the reflector does.
 *
 * Input: one byte choosing the chunk size (1-256) and one the line limit
 * (64 << (b % 8) bytes), then the stream.
 *
 * Built and run by `make fuzz` (tests/fuzz/run.sh), which also replays
 * the corpus_watch/ and regress_watch/ inputs.
 * Crashing inputs go into tests/fuzz/corpus_watch/ as regression files. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/kube/watch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_event(enum kube_event_type type, json_t *obj, void *arg)
{
	size_t *n = arg;
	json_t *md = json_object_get(obj, "metadata");
	const char *rv = json_string_value(json_object_get(md, "resourceVersion"));

	if (!json_is_object(obj) || !kube_event_type_name(type))
		abort();
	if (rv)
		*n += strlen(rv);
	if (type == KUBE_EV_ERROR && json_integer_value(json_object_get(obj, "code")) == 410)
		return 1;   /* the reflector stops here and relists */
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kube_watch_parser p;
	struct mseg_err err;
	size_t chunk, n = 0;
	int r = 0;

	if (size < 2)
		return 0;
	chunk = (size_t)data[0] + 1;
	kube_watch_parser_init(&p, (size_t)64 << (data[1] % 8));
	data += 2;
	size -= 2;
	for (size_t off = 0; off < size && r == 0; off += chunk) {
		size_t len = size - off < chunk ? size - off : chunk;
		/* an exact-size copy: ASan sees any read past the chunk */
		char *copy = malloc(len);

		if (!copy)
			abort();
		memcpy(copy, data + off, len);
		err_clear(&err);
		r = kube_watch_feed(&p, copy, len, on_event, &n, &err);
		if (r < 0 && strncmp(err.msg, "watch stream byte ", 18) != 0 && r != -ENOMEM)
			abort();   /* every error names its byte offset */
		free(copy);
	}
	if (kube_watch_pending(&p) > p.max_line)
		abort();
	kube_watch_parser_release(&p);
	return 0;
}
