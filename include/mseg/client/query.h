/* The query string of a request to msegd ("?endpoint=web&since=1700000000"),
 * built with libcurl's URL API: every value is percent-encoded and the
 * string grows as needed, never into a fixed buffer. */
#ifndef MSEG_CLIENT_QUERY_H
#define MSEG_CLIENT_QUERY_H

#include <stddef.h>

#include <curl/curl.h>

struct client_query {
	CURLU *url;
	size_t len;     /* bytes of the encoded query so far, without the '?' */
	size_t max;     /* refuse to grow past this many bytes; 0: no limit */
};

/* An empty query that refuses to grow past @max encoded bytes (0: no limit).
 * 0 or -ENOMEM. */
int client_query_init(struct client_query *q, size_t max);

void client_query_release(struct client_query *q);

/* Append "KEY=VALUE" with VALUE percent-encoded (everything but letters,
 * digits and "-._~"; a space is %20). @key is a fixed name made of those
 * characters. 0, -EINVAL (a bad key), -E2BIG (past max; @q is unchanged) or
 * -ENOMEM. */
int client_query_add(struct client_query *q, const char *key, const char *value);

/* @path followed by "?" and the query (just @path when it is empty), in
 * *@ret_path (free() it). 0 or -ENOMEM. */
int client_query_path(const struct client_query *q, const char *path, char **ret_path);

#endif
