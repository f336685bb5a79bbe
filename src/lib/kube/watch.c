/* The watch stream parser (include/mseg/kube/watch.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/kube/watch.h"

static const char *const type_names[] = {
	[KUBE_EV_ADDED] = "ADDED",       [KUBE_EV_MODIFIED] = "MODIFIED",
	[KUBE_EV_DELETED] = "DELETED",   [KUBE_EV_BOOKMARK] = "BOOKMARK",
	[KUBE_EV_ERROR] = "ERROR",
};

const char *kube_event_type_name(enum kube_event_type t)
{
	return (unsigned)t < sizeof(type_names) / sizeof(type_names[0]) ? type_names[t] : "?";
}

void kube_watch_parser_init(struct kube_watch_parser *p, size_t max_line)
{
	memset(p, 0, sizeof(*p));
	p->max_line = max_line ? max_line : KUBE_WATCH_MAX_LINE;
}

void kube_watch_parser_release(struct kube_watch_parser *p)
{
	free(p->line);
	memset(p, 0, sizeof(*p));
}

void kube_watch_parser_reset(struct kube_watch_parser *p)
{
	p->len = 0;
	p->offset = 0;
}

size_t kube_watch_pending(const struct kube_watch_parser *p)
{
	return p->len;
}

/* One complete line (without its '\n') starting at stream offset @off. */
static int event_parse(const char *line, size_t len, uint64_t off, kube_watch_cb cb,
		       void *cb_data, struct mseg_err *err)
{
	json_error_t jerr;
	json_t *ev, *type, *obj;
	const char *ts;
	int t = -1, r;

	while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
		len--;
	if (!len)
		return 0;
	ev = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!ev)
		return err_setf(err, EINVAL, "watch stream byte %llu: not JSON: %s (at byte %llu)",
				(unsigned long long)off, jerr.text,
				(unsigned long long)(off + (uint64_t)(jerr.position > 0 ?
								      jerr.position : 0)));
	if (!json_is_object(ev)) {
		r = err_setf(err, EINVAL, "watch stream byte %llu: an event must be a JSON object",
			     (unsigned long long)off);
		goto out_put;
	}
	type = json_object_get(ev, "type");
	obj = json_object_get(ev, "object");
	ts = json_string_value(type);
	for (unsigned i = 0; ts && i < sizeof(type_names) / sizeof(type_names[0]); i++)
		if (strcmp(ts, type_names[i]) == 0)
			t = (int)i;
	if (t < 0) {
		r = err_setf(err, EINVAL, "watch stream byte %llu: event \"type\": %s%.40s%s",
			     (unsigned long long)off, ts ? "unknown type '" : "missing or not a string",
			     ts ? ts : "", ts ? "'" : "");
		goto out_put;
	}
	if (!json_is_object(obj)) {
		r = err_setf(err, EINVAL, "watch stream byte %llu: %s event: \"object\" is missing "
			     "or not an object", (unsigned long long)off, ts);
		goto out_put;
	}
	r = cb((enum kube_event_type)t, obj, cb_data);
out_put:
	json_decref(ev);
	return r;
}

int kube_watch_feed(struct kube_watch_parser *p, const char *data, size_t len,
		    kube_watch_cb cb, void *cb_data, struct mseg_err *err)
{
	while (len) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl ? (size_t)(nl - data) : len;
		size_t line_len;
		int r;

		if (p->len + take > p->max_line)
			return err_setf(err, E2BIG, "watch stream byte %llu: an event longer than "
					"%zu bytes", (unsigned long long)p->offset, p->max_line);
		if (nl && p->len == 0) {
			/* the whole line is in this chunk: no copy */
			line_len = take;
			r = event_parse(data, take, p->offset, cb, cb_data, err);
		} else {
			if (p->len + take + 1 > p->cap) {
				size_t cap = p->cap ? p->cap : 4096;
				char *n;

				while (cap < p->len + take + 1)
					cap *= 2;
				n = realloc(p->line, cap);
				if (!n)
					return err_setf(err, ENOMEM, "out of memory");
				p->line = n;
				p->cap = cap;
			}
			memcpy(p->line + p->len, data, take);
			p->len += take;
			if (!nl)
				return 0;
			line_len = p->len;
			r = event_parse(p->line, p->len, p->offset, cb, cb_data, err);
		}
		p->events++;
		p->offset += line_len + 1;
		p->len = 0;
		if (r)
			return r;
		data += take + 1;
		len -= take + 1;
	}
	return 0;
}
