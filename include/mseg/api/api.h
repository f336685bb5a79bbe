/* msegd's REST API (DESIGN.md §5, docs/rest-api.md): libmicrohttpd driven
 * from the daemon's event loop (MHD_USE_EPOLL without an internal thread:
 * MHD's epoll fd is one more source of the loop, plus a timer for
 * MHD_get_timeout), on a unix socket (0600) and optionally on TCP with a
 * bearer token (and TLS). Owns the state store: the API's policies and
 * endpoints are loaded from it at start and written to it before a request
 * is answered. */
#ifndef MSEG_API_H
#define MSEG_API_H

#include <stdbool.h>
#include <stddef.h>

#include "mseg/util/err.h"

struct daemon;
struct api_server;
struct flow_ring;

/* Minimum length of the TCP listener's bearer token. */
#define API_TOKEN_MIN_LEN 32
/* Request limits. */
#define API_MAX_BODY (1u << 20)              /* = POLICY_MAX_FILE_SIZE; 413 beyond */
#define API_MAX_HEADER_MEMORY (32u << 10)    /* per connection: request line + headers */
#define API_MAX_CONNECTIONS 64               /* per listener */
#define API_MAX_CONNECTIONS_PER_IP 16        /* TCP only */
#define API_IDLE_TIMEOUT_S 5                 /* no byte for this long: closed */
#define API_REQUEST_DEADLINE_MS 10000        /* a request must arrive in full within this */
#define API_MAX_SEGMENT 253                  /* path segment length */

/* Open the state store (cfg->state_dir), load what it holds into the
 * daemon's api_policies/api_inventory, and start the listeners on the
 * daemon's loop. Call before the first daemon_reconcile(). */
int api_server_new(struct daemon *d, struct api_server **ret_api, struct mseg_err *err);
struct api_server *api_server_free(struct api_server *a);

/* Give the API the flow ring to serve /v1/flows from (NULL: 503). */
void api_server_set_flows(struct api_server *a, struct flow_ring *ring);

/* Helpers, exposed for tests. */

/* Read a token file: surrounding whitespace stripped; -EINVAL (with @err)
 * when shorter than API_TOKEN_MIN_LEN or containing control characters or
 * spaces. The token never appears in @err. */
int api_token_load(const char *path, char **ret_token, struct mseg_err *err);
/* Constant-time (in the secret's length) comparison. */
bool api_token_equal(const char *given, size_t given_len, const char *secret, size_t secret_len);
/* 0 when the Authorization header value carries @secret; 401 when it is
 * missing or not "Bearer <token>"; 403 when the token is wrong. */
int api_auth_check(const char *header, const char *secret);
/* A path segment we accept: 1..API_MAX_SEGMENT printable ASCII characters,
 * not "." or "..", no '%' (an escaped NUL or '/' stays escaped) or '\\'. */
bool api_segment_valid(const char *seg);

#endif
