/* One list/watch loop per resource, over libcurl's multi interface driven
 * by msegd's event loop (no thread, no blocking call). The reflector keeps
 * a store of the objects (trimmed to what msegd needs) and reports every
 * difference: from watch events, and after a relist (410 Gone) from the
 * comparison of the new list with the store (never a flush). */
#ifndef MSEG_KUBE_REFLECTOR_H
#define MSEG_KUBE_REFLECTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "mseg/kube/kube.h"
#include "mseg/kube/kubeconfig.h"
#include "mseg/kube/watch.h"
#include "mseg/util/log.h"

struct evloop;
struct kube_http;
struct kube_reflector;

struct kube_reflector_ops {
	/* what to keep of an object (a new reference), NULL: skip it */
	json_t *(*trim)(json_t *obj);
	/* @obj (trimmed) is new or changed / is gone (@obj: what the store
	 * held); key "NS/NAME" or "NAME" */
	void (*upsert)(void *data, const char *key, json_t *obj);
	void (*remove)(void *data, const char *key, json_t *obj);
	/* a list was applied (the first one may change nothing, yet the
	 * owner may now be synced) */
	void (*listed)(void *data);
	/* something worth a log line (one per event, already deduplicated) */
	void (*log)(void *data, enum log_level lvl, const char *msg);
};

struct kube_http *kube_http_new(struct evloop *loop, struct kube_config *cfg, int *ret_err);
struct kube_http *kube_http_free(struct kube_http *h);

struct kube_reflector_opts {
	unsigned idle_timeout_s;    /* no byte for this long: reconnect */
	unsigned watch_timeout_s;   /* timeoutSeconds of each watch */
	unsigned backoff_min_ms, backoff_max_ms;
	unsigned page_size;         /* limit=N, following metadata.continue; 0: one page */
	/* keep only a digest of each trimmed object (what tells a change from
	 * a repeat), not the object: the owner keeps what it needs of it */
	bool store_digest;
	/* added to every list and watch URL ("fieldSelector=..."), copied;
	 * NULL: none */
	const char *query;
};

/* Start listing @path ("/api/v1/pods") at once. */
struct kube_reflector *kube_reflector_new(struct kube_http *h, const char *path,
					  const struct kube_reflector_opts *o,
					  const struct kube_reflector_ops *ops, void *data);
struct kube_reflector *kube_reflector_free(struct kube_reflector *rf);

/* A random number for jitter (getrandom). */
uint64_t kube_random(void);

/* The store: key -> trimmed object (borrowed), or its digest (a JSON
 * integer) with store_digest. */
json_t *kube_reflector_store(const struct kube_reflector *rf);
/* Inside an upsert or remove: the resourceVersion of the watch event that
 * called it; NULL when it comes from a list (or the event has none). */
const char *kube_reflector_event_rv(const struct kube_reflector *rf);
void kube_reflector_status(const struct kube_reflector *rf, struct kube_resource_status *ret);

#endif
