/* Query strings for msegd's API (include/mseg/client/query.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/client/query.h"

int client_query_init(struct client_query *q, size_t max)
{
	q->len = 0;
	q->max = max;
	q->url = curl_url();
	if (!q->url)
		return -ENOMEM;
	/* the URL API keeps a query only as part of a URL; the host is never used */
	if (curl_url_set(q->url, CURLUPART_URL, "http://localhost/", 0) != CURLUE_OK) {
		curl_url_cleanup(q->url);
		q->url = NULL;
		return -ENOMEM;
	}
	return 0;
}

void client_query_release(struct client_query *q)
{
	curl_url_cleanup(q->url);
	q->url = NULL;
}

static int key_check(const char *key)
{
	if (!key[0])
		return -EINVAL;
	for (const char *p = key; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("-._~", *p)))
			return -EINVAL;
	return 0;
}

int client_query_add(struct client_query *q, const char *key, const char *value)
{
	char *enc, *pair;
	size_t n;
	int r;

	r = key_check(key);
	if (r < 0)
		return r;
	if (!q->url)
		return -ENOMEM;
	/* curl_easy_escape() encodes a space as %20; CURLU_URLENCODE would
	 * write '+' and leave other characters of a query alone */
	enc = curl_easy_escape(NULL, value, 0);
	if (!enc)
		return -ENOMEM;
	n = strlen(key) + 1 + strlen(enc);
	if (q->max && q->len + (q->len ? 1 : 0) + n > q->max) {
		r = -E2BIG;
		goto out_free_enc;
	}
	if (asprintf(&pair, "%s=%s", key, enc) < 0) {
		r = -ENOMEM;
		goto out_free_enc;
	}
	if (curl_url_set(q->url, CURLUPART_QUERY, pair, CURLU_APPENDQUERY) != CURLUE_OK) {
		r = -ENOMEM;
		goto out_free_pair;
	}
	q->len += (q->len ? 1 : 0) + n;
	r = 0;
out_free_pair:
	free(pair);
out_free_enc:
	curl_free(enc);
	return r;
}

int client_query_path(const struct client_query *q, const char *path, char **ret_path)
{
	char *query = NULL;
	CURLUcode rc;
	int n;

	rc = q->url ? curl_url_get(q->url, CURLUPART_QUERY, &query, 0) : CURLUE_NO_QUERY;
	if (rc != CURLUE_OK && rc != CURLUE_NO_QUERY)
		return -ENOMEM;
	if (query && query[0])
		n = asprintf(ret_path, "%s?%s", path, query);
	else
		n = asprintf(ret_path, "%s", path);
	curl_free(query);
	return n < 0 ? -ENOMEM : 0;
}
