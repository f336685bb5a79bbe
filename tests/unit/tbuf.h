/* A growing text buffer for tests that write YAML documents. */
#ifndef MSEG_TEST_TBUF_H
#define MSEG_TEST_TBUF_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

struct buf {
	char *p;
	size_t len, cap;
};

static inline void bput(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline void bput(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if ((size_t)n < b->cap - b->len)
			break;
		b->cap = b->cap * 2 + (size_t)n + 64;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	b->len += (size_t)n;
}

#endif
