/* msegd's REST API (docs/rest-api.md): libmicrohttpd driven
 * from the daemon's event loop (MHD_USE_EPOLL without an internal thread:
 * MHD's epoll fd is one more source of the loop, plus a timer for
 * MHD_get_timeout), on a unix socket (0600) and optionally on TCP with a
 * bearer token (and TLS). Changes go through the desired-state module
 * (include/mseg/daemon/desired.h), which writes them to the state dir
 * before a request is answered. */
#ifndef MSEG_API_H
#define MSEG_API_H

#include <stdbool.h>
#include <stddef.h>

#include "mseg/util/err.h"

struct api_server;
struct daemon_config;
struct desired;
struct evloop;
struct flow_ring;
struct flowpipe;
struct nft_features;
struct reconciler;

/* What the API serves and changes, given by its owner (msegd's main): the
 * API reads and changes the desired state, reads the reconciler's status
 * and the flow pipeline, and asks its owner to program the kernel after a
 * change. Everything is borrowed and must outlive the server. */
struct kube_watcher;

struct api_backend {
	struct evloop *loop;
	const struct daemon_config *cfg;     /* listeners, token, TLS, mode */
	struct desired *desired;
	struct reconciler *rec;
	const struct nft_features *features;
	struct flowpipe *flows;              /* NULL: no flows (503) */
	struct kube_watcher *kube;           /* NULL: no Kubernetes API server */
	struct accepted *accepted;           /* accepted-connection summaries; NULL: none */
	/* program the kernel after a change of @desired: 0, -EIO when some
	 * endpoints failed (their errors are in the reconciler), or -errno */
	int (*reconcile)(void *ctx);
	void *ctx;
};

/* The TLS versions and ciphers of the TCP listener (GnuTLS priorities):
 * TLS 1.2 and 1.3 only. */
#define API_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

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

/* Start the listeners on @be's loop (@be is copied). */
int api_server_new(const struct api_backend *be, struct api_server **ret_api,
		   struct mseg_err *err);
struct api_server *api_server_free(struct api_server *a);

/* Give the API the flow ring to serve /v1/flows from (NULL: 503). */
void api_server_set_flows(struct api_server *a, struct flow_ring *ring);

/* Helpers, exposed for tests. */

/* Read a token file: surrounding whitespace stripped; -EINVAL (with @err)
 * when shorter than API_TOKEN_MIN_LEN or containing control characters or
 * spaces, or not a regular file; -EPERM when group or others may read or
 * write it. The token never appears in @err. */
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
