/* Field changes of an endpoint, for dry runs (mseg/client/changes.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/client/changes.h"

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A field as text: a string, "a,b" for an array, "k=v,k2=v2" for an
 * object (keys sorted), "-" for nothing. NULL: out of memory. */
static char *field_text_new(const json_t *v)
{
	const char **keys = NULL;
	char *buf = NULL;
	size_t len = 0, i, n = 0;
	FILE *m = open_memstream(&buf, &len);
	const char *key;
	json_t *e;

	if (!m)
		return NULL;
	if (json_is_string(v) && json_string_length(v)) {
		fputs(json_string_value(v), m);
		n = 1;
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, e)
			fprintf(m, "%s%s", n++ ? "," : "", json_is_string(e) ? json_string_value(e) : "?");
	} else if (json_is_object(v) && json_object_size(v)) {
		keys = calloc(json_object_size(v), sizeof(*keys));
		if (!keys)
			goto out_fail;
		json_object_foreach((json_t *)v, key, e)
			keys[n++] = key;
		qsort(keys, n, sizeof(*keys), key_cmp);
		for (i = 0; i < n; i++) {
			e = json_object_get(v, keys[i]);
			fprintf(m, "%s%s=%s", i ? "," : "", keys[i],
				json_is_string(e) ? json_string_value(e) : "?");
		}
		free(keys);
	}
	if (n == 0)
		fputc('-', m);
	if (fclose(m) != 0) {
		free(buf);
		return NULL;
	}
	return buf;

out_fail:
	fclose(m);
	free(buf);
	return NULL;
}

json_t *client_endpoint_changes(const json_t *before, const json_t *after)
{
	static const char *const fields[] = { "name", "namespace", "netns", "ips", "labels" };
	json_t *out = json_array();

	if (!out)
		return NULL;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const json_t *a = json_object_get(after, fields[i]);
		char *old, *new;
		int r = 0;

		if (!a)
			continue;
		old = field_text_new(json_object_get(before, fields[i]));
		new = field_text_new(a);
		if (old && new && strcmp(old, new) != 0)
			r = json_array_append_new(out, json_sprintf("%s: %s -> %s", fields[i], old, new));
		if (!old || !new)
			r = -1;
		free(old);
		free(new);
		if (r < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}
