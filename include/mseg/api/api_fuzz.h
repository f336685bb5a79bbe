/* The REST API without HTTP and without the kernel, for fuzzing and tests.
 *
 * A server whose desired state has one policy and one endpoint "from the
 * files" and keeps the API's objects in a private state dir of its own
 * (removed by api_fuzz_free()); its reconciler has no endpoints, so
 * nothing is ever programmed and no namespace is touched; its flow ring
 * holds one record. A request goes through the same routing (api_route())
 * and handlers as one that libmicrohttpd received; only the transport
 * (listeners, authentication, body limits) is left out. */
#ifndef MSEG_API_FUZZ_H
#define MSEG_API_FUZZ_H

#include <stddef.h>

#include "mseg/util/err.h"

struct api_fuzz;

/* @tmpdir: where the state dir is made (NULL: $TMPDIR or /tmp). */
int api_fuzz_new(const char *tmpdir, struct api_fuzz **ret, struct mseg_err *err);
/* Removes the state dir. Accepts NULL; returns NULL. */
struct api_fuzz *api_fuzz_free(struct api_fuzz *f);

/* Forget every object the API created (back to the state of _new). */
int api_fuzz_reset(struct api_fuzz *f);

/* One request: @method ("GET"), @path ("/v1/policies/shop/web", no
 * query), @query ("dry_run=1&x=%41", NULL: none; %XX is decoded as MHD
 * does), @headers ("Name: value" lines, NULL: none), the body @body of
 * @len bytes. *ret_code is the status; *ret_answer (malloc'd, NULL when
 * not wanted) the answer's text as it would be sent. -ENOMEM. */
int api_fuzz_request(struct api_fuzz *f, const char *method, const char *path, const char *query,
		     const char *headers, const char *body, size_t len, unsigned *ret_code,
		     char **ret_answer);

#endif
