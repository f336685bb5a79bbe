/* libFuzzer target for the REST API in process: routing, path segments,
 * query strings, headers and bodies through every route handler, against
 * a desired state in memory (include/mseg/api/api_fuzz.h: no socket, no
 * kernel; the API's objects go to a private state dir under $TMPDIR).
 *
 * Input: up to 8 requests, each as HTTP/1.1 writes it without the version:
 *
 *   PUT /v1/policies/shop/db?dry_run=1
 *   Content-Type: application/yaml
 *   Content-Length: 120
 *
 *   <body>
 *
 * The body is Content-Length bytes (then the next request follows) or,
 * without that header, the rest of the input. Every input starts from the
 * same state (api_fuzz_reset()).
 *
 * Checks: every request gets a status between 200 and 599 and, when the
 * answer is JSON, it parses; a 500 (a state the API does not handle) is a
 * crash too.
 *
 *   make fuzz-build && build-fuzz/fuzz_api -max_len=8192 tests/fuzz/corpus_api
 *   MSEG_FUZZ_VERBOSE=1 build-fuzz/fuzz_api FILE     (prints every answer)
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mseg/api/api_fuzz.h"
#include "mseg/util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_REQUESTS 8

static struct api_fuzz *fz;
static bool verbose;   /* MSEG_FUZZ_VERBOSE=1: print every answer */

static void fuzz_cleanup(void)
{
	fz = api_fuzz_free(fz);
}

/* One line of @p..@end without its '\n' (copied, NUL-terminated). */
static char *line_take(const char **p, const char *end)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
	char *s = malloc(n + 1);

	if (!s)
		abort();
	memcpy(s, *p, n);
	s[n] = '\0';
	if (n && s[n - 1] == '\r')
		s[n - 1] = '\0';
	*p = nl ? nl + 1 : end;
	return s;
}

static void request_run(const char **p, const char *end)
{
	char *first = line_take(p, end), *sp, *q, *answer = NULL;
	char *headers = calloc(1, 1);
	size_t hlen = 0, blen;
	long clen = -1;
	unsigned code = 0;
	const char *body;
	int r;

	if (!headers)
		abort();
	for (;;) {
		char *h;

		if (*p >= end)
			break;
		h = line_take(p, end);
		if (!h[0]) {
			free(h);
			break;
		}
		if (strncasecmp(h, "Content-Length:", 15) == 0)
			clen = strtol(h + 15, NULL, 10);
		headers = realloc(headers, hlen + strlen(h) + 2);
		if (!headers)
			abort();
		memcpy(headers + hlen, h, strlen(h));
		hlen += strlen(h);
		headers[hlen++] = '\n';
		headers[hlen] = '\0';
		free(h);
	}
	body = *p;
	blen = (size_t)(end - *p);
	if (clen >= 0 && (size_t)clen < blen)
		blen = (size_t)clen;
	*p += blen;

	sp = strchr(first, ' ');
	if (sp) {
		*sp++ = '\0';
		q = strchr(sp, '?');
		if (q)
			*q++ = '\0';
		r = api_fuzz_request(fz, first, sp, q, headers, body, blen, &code, &answer);
		if (verbose)
			fprintf(stderr, "%s %s -> %u %s\n", first, sp, code, answer ? answer : "");
		if (r == 0) {
			if (code < 200 || code > 599 || code == 500) {
				fprintf(stderr, "status %u: %s\n", code, answer ? answer : "");
				abort();
			}
			if (answer && answer[0] == '{') {
				json_error_t je;
				json_t *j = json_loads(answer, 0, &je);

				if (!j) {
					fprintf(stderr, "answer is not JSON: %s\n", je.text);
					abort();
				}
				json_decref(j);
			}
		}
		free(answer);
	}
	free(headers);
	free(first);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;

	if (!fz) {
		struct mseg_err err;

		log_max_level = LOG_LVL_ERROR;
		verbose = getenv("MSEG_FUZZ_VERBOSE") != NULL;
		if (api_fuzz_new(NULL, &fz, &err) < 0) {
			fprintf(stderr, "api_fuzz_new: %s\n", err.msg);
			abort();
		}
		atexit(fuzz_cleanup);
	}
	if (api_fuzz_reset(fz) < 0)
		abort();
	for (int i = 0; i < MAX_REQUESTS && p < end; i++)
		request_run(&p, end);
	return 0;
}
