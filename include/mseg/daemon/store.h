/* Persistent state: the policies and endpoints the REST API accepted, one
 * file per object in the state dir, each holding the document exactly as it
 * was accepted (YAML or JSON):
 *
 *   STATE/policies/NS.NAME      (namespace and name are DNS labels: no '.')
 *   STATE/endpoints/ID          (ids never begin with '.')
 *   STATE/namespaces/NAME       (a DNS label)
 *
 * Every change is atomic and durable before it returns: the document is
 * written to a temporary file ".tmp.*" in the same directory, fsync'ed,
 * renamed over the final name, and the directory is fsync'ed; a delete is
 * unlink + fsync of the directory. A crash at any point leaves either the
 * old or the new file; leftover temporary files are removed on load.
 * Nothing here logs. */
#ifndef MSEG_STORE_H
#define MSEG_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "mseg/util/err.h"
#include "mseg/model/model.h"

struct store;

/* Open (creating DIR, DIR/policies and DIR/endpoints, mode 0700) and lock
 * it: one store per dir at a time, system-wide (flock on DIR/.lock, which
 * holds the owner's pid); -EBUSY with @err naming the owner when another
 * process has it open. */
int store_open(const char *dir, struct store **ret_store, struct mseg_err *err);
struct store *store_free(struct store *s);
const char *store_dir(const struct store *s);

/* Load every stored object (policies; endpoints and namespaces into @inv)
 * into @pols and @inv (all or nothing; a stored
 * document that does not parse any more is an error naming its file,
 * unless quarantine is on). Removes leftover temporary files. */
int store_load(struct store *s, struct mseg_policy_set *pols, struct mseg_inventory *inv,
	       struct mseg_err *err);

/* From now on, a stored document that does not parse any more is moved
 * aside to DIR/quarantine/ (policies.NAME, endpoints.NAME) and the load
 * goes on without it; each such file is then listed (its error and where
 * it went) by store_quarantined(). */
void store_quarantine_enable(struct store *s);
size_t store_quarantined_count(const struct store *s);
const char *store_quarantined(const struct store *s, size_t i);

/* Write (create or replace) / remove one object. -ENOENT when deleting
 * what is not stored; other -errno with @err filled. */
int store_policy_put(struct store *s, const char *ns, const char *name, const char *doc,
		     size_t len, struct mseg_err *err);
int store_policy_delete(struct store *s, const char *ns, const char *name, struct mseg_err *err);
int store_endpoint_put(struct store *s, const char *id, const char *doc, size_t len,
		       struct mseg_err *err);
int store_endpoint_delete(struct store *s, const char *id, struct mseg_err *err);
int store_namespace_put(struct store *s, const char *name, const char *doc, size_t len,
			struct mseg_err *err);
int store_namespace_delete(struct store *s, const char *name, struct mseg_err *err);

/* The stored document of a policy or endpoint (malloc'd, NUL-terminated);
 * -ENOENT when absent. */
int store_policy_read(struct store *s, const char *ns, const char *name, char **ret_doc,
		      size_t *ret_len);
int store_endpoint_read(struct store *s, const char *id, char **ret_doc, size_t *ret_len);
int store_namespace_read(struct store *s, const char *name, char **ret_doc, size_t *ret_len);

/* Tombstones: DIR/tombstones/ID, left by mseg-cni when a CNI DEL could not
 * reach msegd. Calls @fn for each (the endpoint id and when it was left),
 * and removes the tombstone when @fn returns 0. A missing directory is no
 * tombstone. */
int store_tombstones_each(struct store *s, int (*fn)(void *data, const char *id, uint64_t mtime_ns),
			  void *data, struct mseg_err *err);

/* Write @len bytes of @data to DIR/NAME atomically and durably (the
 * primitive behind the put functions; exposed for tests). */
int store_write_atomic(const char *dir, const char *name, const char *data, size_t len,
		       struct mseg_err *err);

#endif
