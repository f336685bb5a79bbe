/* Error records that say where they came from: "file:line:col: message". */
#ifndef MSEG_ERR_H
#define MSEG_ERR_H

#include <stdarg.h>
#include <stddef.h>

struct mseg_err {
	char file[256];   /* "" when the error has no file */
	unsigned line;    /* 1-based; 0 = unknown */
	unsigned col;     /* 1-based; 0 = unknown */
	char msg[512];    /* the message without the position prefix */
};

/* Fill @e (may be NULL) and return -@code, so callers can write
 * `return err_set(e, file, line, col, EINVAL, "group %s: ...", ...);` */
int err_set(struct mseg_err *e, const char *file, unsigned line, unsigned col,
	    int code, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Same, without a position. */
int err_setf(struct mseg_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Clear @e. */
void err_clear(struct mseg_err *e);

/* "file:line:col: msg", "file: msg" or "msg" into @buf; returns @buf. */
const char *err_format(const struct mseg_err *e, char *buf, size_t size);

#endif
