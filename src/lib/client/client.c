/* The client side of msegd's REST API (include/mseg/client.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/client/client.h"

size_t client_buf_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct client_buf *b = userdata;
	size_t n = size * nmemb;
	char *p;

	if (b->max && b->len + n > b->max)
		return 0;
	p = realloc(b->data, b->len + n + 1);
	if (!p)
		return 0;
	memcpy(p + b->len, ptr, n);
	b->len += n;
	p[b->len] = '\0';
	b->data = p;
	return n;
}

int client_set_url(CURL *h, const char *server, const char *path)
{
	char *url;
	int n;

	/* allocated: a long path (escaped ids, a query) is never cut short */
	if (strncmp(server, "unix:", 5) == 0) {
		curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, server + 5);
		n = asprintf(&url, "http://localhost%s", path);
	} else {
		size_t len = strlen(server);

		while (len && server[len - 1] == '/')
			len--;
		n = asprintf(&url, "%.*s%s", (int)len, server, path);
	}
	if (n < 0)
		return -ENOMEM;
	curl_easy_setopt(h, CURLOPT_URL, url); /* libcurl keeps a copy */
	free(url);
	return 0;
}
