#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mseg/util/err.h"

static void err_vfill(struct mseg_err *e, const char *fmt, va_list ap)
{
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
}

int err_set(struct mseg_err *e, const char *file, unsigned line, unsigned col, int code,
	    const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return -code;
	snprintf(e->file, sizeof(e->file), "%s", file ? file : "");
	e->line = line;
	e->col = col;
	va_start(ap, fmt);
	err_vfill(e, fmt, ap);
	va_end(ap);
	return -code;
}

int err_setf(struct mseg_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return -code;
	e->file[0] = '\0';
	e->line = 0;
	e->col = 0;
	va_start(ap, fmt);
	err_vfill(e, fmt, ap);
	va_end(ap);
	return -code;
}

void err_clear(struct mseg_err *e)
{
	if (e)
		memset(e, 0, sizeof(*e));
}

const char *err_format(const struct mseg_err *e, char *buf, size_t size)
{
	if (e->file[0] && e->line)
		snprintf(buf, size, "%s:%u:%u: %s", e->file, e->line, e->col, e->msg);
	else if (e->file[0])
		snprintf(buf, size, "%s: %s", e->file, e->msg);
	else
		snprintf(buf, size, "%s", e->msg);
	return buf;
}
