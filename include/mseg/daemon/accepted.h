/* Accepted-connection summaries (docs/lifecycle.md, learning): per
 * endpoint, direction, peer, protocol and destination port, the new
 * connections the endpoint's allow sets admitted, with the first and last
 * time msegd saw them. The kernel counts them in the table's seen sets
 * (docs/ruleset.md); msegd folds those counters in here for the directions
 * in a learning stage: every --seen-interval, spread over the event loop,
 * and before each reconcile (a replace starts the kernel's counters again).
 *
 * Bounded: at most ACCEPTED_MAX_ENTRIES summaries in all; a new one beyond
 * that is not kept and counted in `dropped`. Kept in the state dir's
 * `accepted` file, written atomically after a read that changed something,
 * loaded at start. */
#ifndef MSEG_ACCEPTED_H
#define MSEG_ACCEPTED_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "mseg/util/err.h"
#include "mseg/model/model.h"

#define ACCEPTED_MAX_ENTRIES 65536
#define ACCEPTED_FILE "accepted"

struct ep_seen;
struct netns;

struct accepted_entry {
	uint8_t dir;                 /* enum mseg_dir */
	uint8_t proto;
	bool has_port;
	uint16_t port;               /* destination port */
	struct mseg_addr peer;
	uint64_t connections;        /* new connections admitted, in all */
	uint64_t first_ns, last_ns;  /* CLOCK_REALTIME; first: the newest connection of
				      * the read that first saw it (the kernel keeps no
				      * first time) */
	uint64_t kcount;             /* the kernel element's counter at the last read */
};

struct accepted_ep {
	char *id;
	uint64_t table_handle;       /* the table the kcounts belong to */
	uint64_t read_ns;            /* the last read (0: none since start) */
	unsigned dirs;               /* directions ever summarized (1 << dir) */
	struct accepted_entry *v;    /* sorted by dir, peer, proto, port */
	size_t n, cap;
};

struct accepted {
	char *state_dir;             /* NULL: memory only */
	struct accepted_ep *eps;     /* sorted by id */
	size_t n_eps, cap_eps;
	size_t n_entries, max_entries;
	uint64_t dropped;            /* summaries not kept: the bound was reached */
	uint64_t reads, read_failures;
	bool dirty;                  /* changed since the file was written */
};

/* @state_dir NULL: not kept on disk. */
struct accepted *accepted_new(const char *state_dir);
struct accepted *accepted_free(struct accepted *a);

/* Load the state dir's file (a missing one is no summary); a bad line is
 * an error naming it (file:line), the lines before it are kept. */
int accepted_load(struct accepted *a, struct mseg_err *err);
/* Write the file when something changed since the last write. */
int accepted_save(struct accepted *a, struct mseg_err *err);

/* Fold one read of endpoint @id's seen sets into its summaries: @seen,
 * @n elements of the table whose handle is @table_handle, read at @now_ns;
 * only the directions in @dirs (1 << dir) are taken. */
int accepted_fold(struct accepted *a, const char *id, uint64_t table_handle,
		  const struct ep_seen *seen, size_t n, unsigned dirs, uint64_t now_ns);

/* Read endpoint @id's table in @ns and fold it (@dirs as above). */
int accepted_read(struct accepted *a, struct netns *ns, const char *id, unsigned dirs,
		  struct mseg_err *err);

const struct accepted_ep *accepted_ep_find(const struct accepted *a, const char *id);
/* The summary of @ep for this key, or NULL. */
const struct accepted_entry *accepted_entry_find(const struct accepted_ep *ep, uint8_t dir,
						 const struct mseg_addr *peer, uint8_t proto,
						 uint16_t port);

/* The file's text (for tests): malloc'd, NULL on out of memory. */
char *accepted_text(const struct accepted *a, size_t *ret_len);
/* Parse @text (@path for errors) into @a. */
int accepted_parse(struct accepted *a, const char *path, FILE *f, struct mseg_err *err);

#endif
