/* The watch stream of the Kubernetes API: one JSON object per line,
 * {"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}}, arriving
 * in chunks split anywhere. Pure: nothing here does I/O or logs. */
#ifndef MSEG_KUBE_WATCH_H
#define MSEG_KUBE_WATCH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "mseg/util/err.h"

/* Longest event line accepted (a Pod with many containers is far below). */
#define KUBE_WATCH_MAX_LINE (4u << 20)

enum kube_event_type {
	KUBE_EV_ADDED,
	KUBE_EV_MODIFIED,
	KUBE_EV_DELETED,
	KUBE_EV_BOOKMARK,
	KUBE_EV_ERROR,
};

/* Called per event; @object is borrowed (json_incref to keep it). A
 * non-zero return stops the feed and is returned by kube_watch_feed(). */
typedef int (*kube_watch_cb)(enum kube_event_type type, json_t *object, void *data);

struct kube_watch_parser {
	char *line;            /* the incomplete line so far */
	size_t len, cap;
	size_t max_line;
	uint64_t offset;       /* bytes of the stream consumed before @line */
	uint64_t events;
};

void kube_watch_parser_init(struct kube_watch_parser *p, size_t max_line);
void kube_watch_parser_release(struct kube_watch_parser *p);
/* Forget a partial line (a new connection). */
void kube_watch_parser_reset(struct kube_watch_parser *p);

/* Feed the next bytes of the stream: every complete line becomes one call
 * of @cb. Empty lines are skipped. -EINVAL with @err ("watch stream byte
 * N: ...", N the offset of the line's start) for a line that is not an
 * event, -E2BIG for a line longer than the limit, -ENOMEM; the parser is
 * then unusable until reset. */
int kube_watch_feed(struct kube_watch_parser *p, const char *data, size_t len,
		    kube_watch_cb cb, void *cb_data, struct mseg_err *err);

/* Bytes of an incomplete line held (the stream ended mid-event if > 0). */
size_t kube_watch_pending(const struct kube_watch_parser *p);

const char *kube_event_type_name(enum kube_event_type t);

#endif
