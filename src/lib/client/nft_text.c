/* The nft text of a read-back table, made shorter for people
 * (mseg/client/nft_text.h). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/client/nft_text.h"

static bool line_is(const char *l, size_t len, const char *s)
{
	return len == strlen(s) && memcmp(l, s, len) == 0;
}

static bool line_starts_set(const char *l, size_t len)
{
	return len > 7 && memcmp(l, "\tset ", 5) == 0 && l[len - 1] == '{' && l[len - 2] == ' ';
}

char *client_nft_text_compact(const char *text, size_t *ret_dropped)
{
	char *buf = NULL;
	size_t len = 0, dropped = 0;
	FILE *m = open_memstream(&buf, &len);
	const char *p = text;

	if (!m)
		return NULL;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);
		const char *end = nl ? nl + 1 : p + l, *q;
		bool has_elements = false;

		if (!line_starts_set(p, l)) {
			fwrite(p, 1, (size_t)(end - p), m);
			p = end;
			continue;
		}
		/* the set's block: up to its closing "\t}" */
		for (q = end; *q;) {
			const char *qn = strchr(q, '\n');
			size_t ql = qn ? (size_t)(qn - q) : strlen(q);

			if (memmem(q, ql, "elements = ", 11))
				has_elements = true;
			q = qn ? qn + 1 : q + ql;
			if (line_is(q - (qn ? ql + 1 : ql), ql, "\t}"))
				break;
		}
		if (has_elements) {
			fwrite(p, 1, (size_t)(q - p), m);
		} else {
			dropped++;
			if (*q == '\n')
				q++;   /* the blank line between blocks */
		}
		p = q;
	}
	if (fclose(m) != 0) {
		free(buf);
		return NULL;
	}
	if (ret_dropped)
		*ret_dropped = dropped;
	return buf;
}
