/* The client side of msegd's REST API shared by mseg and mseg-cni: where a
 * request goes and where its answer is collected (libcurl). */
#ifndef MSEG_CLIENT_H
#define MSEG_CLIENT_H

#include <stddef.h>

#include <curl/curl.h>

/* An answer body, NUL-terminated, grown as libcurl delivers it. */
struct client_buf {
	char *data;
	size_t len;
	size_t max;                  /* refuse a body longer than this; 0: no limit */
};

/* A CURLOPT_WRITEFUNCTION appending to the struct client_buf in
 * CURLOPT_WRITEDATA; 0 (a write error) when out of memory or past max. */
size_t client_buf_write(char *ptr, size_t size, size_t nmemb, void *userdata);

/* Point @h at @path on @server: "unix:/PATH" talks HTTP over that socket,
 * anything else is a base URL ("https://host:port"; trailing slashes are
 * ignored). 0 or -ENOMEM. */
int client_set_url(CURL *h, const char *server, const char *path);

#endif
