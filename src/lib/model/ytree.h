/* A small generic YAML tree, built from libyaml events, for the document
 * loaders (policy.c, inventory.c), and the checks both use to turn a tree
 * into validated objects with "file:line:col: message" errors.
 *
 * The parser is deliberately strict: anchors, aliases and tags are refused
 * (no alias bombs, no type games), mapping keys must be scalars and unique,
 * input must be UTF-8 without NUL bytes, and size, nesting depth and node
 * count are bounded. Private to libmseg. */
#ifndef MSEG_YTREE_H
#define MSEG_YTREE_H

#include <stdbool.h>
#include <stddef.h>

#include "mseg/util/arena.h"
#include "mseg/util/err.h"

enum ynode_kind { YNODE_SCALAR, YNODE_MAP, YNODE_SEQ };

struct ynode {
	enum ynode_kind kind;
	bool plain;              /* SCALAR: plain style (80, true, null), not quoted */
	unsigned line, col;      /* 1-based, where the node starts */
	size_t start, end;       /* its bytes in the buffer: [start, end) (a block
	                          * collection ends where the next token starts) */
	const char *str;         /* SCALAR: the text, NUL-terminated, no NUL inside */
	size_t len;
	size_t n;                /* MAP: pairs; SEQ: items */
	struct ynode **keys;     /* MAP: scalar keys, unique */
	struct ynode **vals;     /* MAP: values; SEQ: items */
	struct ynode *next;      /* sibling link, used while building */
};

struct ydoc {
	struct ynode *root;      /* never NULL: an empty document is a null scalar */
	unsigned line, col;      /* where the document starts */
	size_t start, end;       /* its bytes in the buffer: [start, end) */
};

struct ytree {
	struct arena arena;      /* every node and string */
	struct ydoc *docs;
	size_t n_docs, cap_docs;
};

struct ytree_limits {
	size_t max_size;         /* bytes */
	unsigned max_depth;      /* nesting of mappings and sequences */
	size_t max_nodes;        /* scalars, mappings and sequences */
};

void ytree_init(struct ytree *t);
void ytree_release(struct ytree *t);

/* Parse every document of @buf into @t (initialized, empty). Errors name
 * @name and the position: "name:line:col: message". */
int ytree_parse(struct ytree *t, const char *name, const char *buf, size_t len,
		const struct ytree_limits *lim, struct mseg_err *err);

/* ytree_init() and ytree_parse(), keeping only the documents with content:
 * an empty one (a trailing "---", a file of comments) is dropped from
 * t->docs. Release @t in any case. */
int ytree_load(struct ytree *t, const char *name, const char *buf, size_t len,
	       const struct ytree_limits *lim, struct mseg_err *err);

/* Read a whole regular file of at most @max_size bytes (malloc'd, NUL
 * appended). Errors name @path. */
int ytree_file_read(const char *path, size_t max_size, char **ret_buf, size_t *ret_len,
		    struct mseg_err *err);

/* A plain empty, "~" or "null" scalar. */
bool ynode_is_null(const struct ynode *n);

/* "a mapping", "a sequence", "a string", "an empty value", ... for messages. */
const char *ynode_kind_name(const struct ynode *n);

/* The value of @key in mapping @map, or NULL. */
const struct ynode *ynode_map_get(const struct ynode *map, const char *key);

/* Copy @s into @buf for an error message: control characters become '?',
 * and long strings are cut (at a character boundary) with "...". */
const char *ytree_quote(const char *s, char *buf, size_t size);
#define YQ_SIZE 100

/* Where errors go while checking one document. */
struct ycheck {
	const char *file;
	struct mseg_err *err;
};

/* snprintf for the "what" prefixes of messages; cut when absurdly long. */
void ycheck_whatf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* "out of memory", -ENOMEM. */
int ycheck_oom(const struct ycheck *c);

/* Copy @s into @a: 0, or ycheck_oom(). */
int ycheck_strdup(const struct ycheck *c, struct arena *a, const char *s, const char **ret);

/* Set the error at @n's position and return -EINVAL. */
int ycheck_fail(const struct ycheck *c, const struct ynode *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* "WHAT: expected a mapping, got a sequence" unless @n is of @kind.
 * @what may be "" for the document root. */
int ycheck_kind(const struct ycheck *c, const struct ynode *n, enum ynode_kind kind,
		const char *what);

/* "WHAT: unknown key 'k'" for the first key of @map (in document order)
 * that is not in @allowed (NULL-terminated). */
int ycheck_keys(const struct ycheck *c, const struct ynode *map, const char *what,
		const char *const *allowed);

/* A mapping with no key outside @allowed: ycheck_kind() and ycheck_keys(). */
int ycheck_map(const struct ycheck *c, const struct ynode *n, const char *what,
	       const char *const *allowed);

/* A sequence, with at least one item when @nonempty: "WHAT: must not be empty". */
int ycheck_seq(const struct ycheck *c, const struct ynode *n, const char *what, bool nonempty);

/* The value of @key, which must be present: "WHAT: missing required key 'k'". */
int ycheck_require(const struct ycheck *c, const struct ynode *map, const char *key,
		   const char *what, const struct ynode **ret);

/* A string (plain or quoted scalar; plain 80 is the string "80"). With
 * @nonempty, "" is refused: "WHAT: must not be empty". A null is
 * "WHAT: expected a string, got an empty value" (or "must not be empty"
 * when @nonempty). */
int ycheck_string(const struct ycheck *c, const struct ynode *n, const char *what,
		  bool nonempty, const char **ret);

/* A string that is one of @names (NULL-terminated; its index in *@ret):
 * "WHAT: unknown NOUN 's' (a, b or c)". */
int ycheck_enum(const struct ycheck *c, const struct ynode *n, const char *what,
		const char *noun, const char *const *names, unsigned *ret);

/* A plain decimal integer in lo..hi: "WHAT: expected an integer, got a string". */
int ycheck_uint(const struct ycheck *c, const struct ynode *n, const char *what,
		unsigned long lo, unsigned long hi, unsigned long *ret);

/* One label of a mapping of labels, key @k and value @v: a valid label key
 * ("WHAT: 'k' is not a valid label key (...)") whose value is a string
 * that is a valid label value (errors named @lwhat, "WHAT: label 'k'"). */
int ycheck_label(const struct ycheck *c, const struct ynode *k, const struct ynode *v,
		 const char *what, const char *lwhat, const char **ret_value);

#endif
