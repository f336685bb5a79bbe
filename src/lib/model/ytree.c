/* YAML (and JSON, which is flow-style YAML) -> a small generic tree, from
 * libyaml's event parser, with hard limits for hostile input. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "mseg/model/names.h"
#include "model/ytree.h"

void ytree_init(struct ytree *t)
{
	arena_init(&t->arena);
	t->docs = NULL;
	t->n_docs = 0;
	t->cap_docs = 0;
}

void ytree_release(struct ytree *t)
{
	arena_release(&t->arena);
	free(t->docs);
	t->docs = NULL;
	t->n_docs = 0;
	t->cap_docs = 0;
}

/* ---- positions in the raw buffer ---- */

static bool is_utf8_cont(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

/* 1-based line and column (in characters, as libyaml counts) of byte @off. */
static void buf_pos(const char *buf, size_t len, size_t off, unsigned *ret_line,
		    unsigned *ret_col)
{
	unsigned line = 1, col = 1;
	size_t i;

	if (off > len)
		off = len;
	i = 0;
	if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3))
		i = 3;   /* a UTF-8 byte order mark is not a column */
	for (; i < off; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c == '\n' || (c == '\r' && (i + 1 >= len || buf[i + 1] != '\n'))) {
			line++;
			col = 1;
		} else if (c != '\r' && !is_utf8_cont(c)) {
			col++;
		}
	}
	*ret_line = line;
	*ret_col = col;
}

/* The byte at 0-based @line0:@col0 (libyaml's mark), or -1. */
static int buf_char_at(const char *buf, size_t len, size_t line0, size_t col0)
{
	size_t i = 0, line = 0, col = 0;

	if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3))
		i = 3;
	while (i < len && line < line0) {
		if (buf[i] == '\n' || (buf[i] == '\r' && (i + 1 >= len || buf[i + 1] != '\n')))
			line++;
		i++;
	}
	while (i < len && col < col0) {
		if (buf[i] == '\n' || buf[i] == '\r')
			return -1;
		i++;
		while (i < len && is_utf8_cont((unsigned char)buf[i]))
			i++;
		col++;
	}
	return i < len ? (unsigned char)buf[i] : -1;
}

/* ---- messages ---- */

const char *ytree_quote(const char *s, char *buf, size_t size)
{
	size_t n = strlen(s), max = size - 4, i;
	bool cut = false;

	if (n > max) {
		n = max;
		while (n > 0 && is_utf8_cont((unsigned char)s[n]))
			n--;
		cut = true;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		buf[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (cut) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

static int ytree_fail(const char *name, unsigned line, unsigned col, struct mseg_err *err,
		      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int ytree_fail(const char *name, unsigned line, unsigned col, struct mseg_err *err,
		      const char *fmt, ...)
{
	char msg[sizeof(err->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_set(err, name, line, col, EINVAL, "%s", msg);
}

/* ---- the builder ---- */

struct frame {
	struct ynode *node;
	struct ynode *first, *last;
	size_t count;
};

struct builder {
	struct ytree *t;
	const char *name;
	const char *buf;
	size_t len;
	const struct ytree_limits *lim;
	struct mseg_err *err;
	struct frame *stack;        /* lim->max_depth entries */
	unsigned depth;
	size_t nodes;
	struct ydoc *doc;           /* the open document */
	size_t mark_char, mark_byte; /* the last mark turned into a byte offset */
	size_t bom;                 /* bytes of a UTF-8 byte order mark (libyaml skips it) */
};

/* The byte offset in the buffer of libyaml's mark @m, whose index counts
 * characters (a CR LF counts two): walked forward from the last mark asked
 * for, so that the marks of a whole parse cost one pass. */
static size_t builder_offset(struct builder *b, const yaml_mark_t *m)
{
	if (m->index < b->mark_char) {
		b->mark_char = 0;
		b->mark_byte = b->bom;
	}
	while (b->mark_char < m->index && b->mark_byte < b->len) {
		b->mark_byte++;
		while (b->mark_byte < b->len && ((unsigned char)b->buf[b->mark_byte] & 0xc0) == 0x80)
			b->mark_byte++;
		b->mark_char++;
	}
	return b->mark_byte;
}

static int builder_fail(struct builder *b, const yaml_mark_t *m, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int builder_fail(struct builder *b, const yaml_mark_t *m, const char *fmt, ...)
{
	char msg[sizeof(b->err->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_set(b->err, b->name, (unsigned)m->line + 1, (unsigned)m->column + 1, EINVAL,
		       "%s", msg);
}

static int builder_doc_start(struct builder *b, const yaml_event_t *ev)
{
	struct ydoc *d;

	if (b->t->n_docs == b->t->cap_docs) {
		size_t cap = b->t->cap_docs ? 2 * b->t->cap_docs : 4;

		d = reallocarray(b->t->docs, cap, sizeof(*d));
		if (!d)
			return err_setf(b->err, ENOMEM, "out of memory");
		b->t->docs = d;
		b->t->cap_docs = cap;
	}
	d = &b->t->docs[b->t->n_docs++];
	memset(d, 0, sizeof(*d));
	d->line = (unsigned)ev->start_mark.line + 1;
	d->col = (unsigned)ev->start_mark.column + 1;
	d->start = builder_offset(b, &ev->start_mark);
	d->end = d->start;
	b->doc = d;
	return 0;
}

/* A new node for a scalar or collection start event, linked into its parent. */
static int builder_node(struct builder *b, const yaml_event_t *ev, enum ynode_kind kind,
			const yaml_char_t *anchor, const yaml_char_t *tag, struct ynode **ret)
{
	struct ynode *n;

	if (anchor)
		return builder_fail(b, &ev->start_mark, "YAML aliases/anchors are not supported");
	if (tag) {
		static const char core[] = "tag:yaml.org,2002:";
		const char *tg = (const char *)tag;
		char q[YQ_SIZE];

		/* show libyaml's resolved "tag:yaml.org,2002:str" as written: !!str */
		if (!strncmp(tg, core, sizeof(core) - 1))
			return builder_fail(b, &ev->start_mark, "YAML tags are not supported ('!!%s')",
					    ytree_quote(tg + sizeof(core) - 1, q, sizeof(q)));
		return builder_fail(b, &ev->start_mark, "YAML tags are not supported ('%s')",
				    ytree_quote(tg, q, sizeof(q)));
	}
	if (++b->nodes > b->lim->max_nodes)
		return builder_fail(b, &ev->start_mark, "too many YAML nodes (limit %zu)",
				    b->lim->max_nodes);
	if (!b->doc)
		return builder_fail(b, &ev->start_mark, "node outside a document");

	n = arena_alloc(&b->t->arena, sizeof(*n));
	if (!n)
		return err_setf(b->err, ENOMEM, "out of memory");
	n->kind = kind;
	n->line = (unsigned)ev->start_mark.line + 1;
	n->col = (unsigned)ev->start_mark.column + 1;
	n->start = builder_offset(b, &ev->start_mark);
	n->end = n->start;

	if (b->depth > 0) {
		struct frame *f = &b->stack[b->depth - 1];

		if (f->node->kind == YNODE_MAP && f->count % 2 == 0 && kind != YNODE_SCALAR)
			return builder_fail(b, &ev->start_mark,
					    "mapping keys must be strings, not %s",
					    kind == YNODE_MAP ? "mappings" : "sequences");
		if (f->last)
			f->last->next = n;
		else
			f->first = n;
		f->last = n;
		f->count++;
	} else if (!b->doc->root) {
		b->doc->root = n;
	} else {
		return builder_fail(b, &ev->start_mark, "more than one node in a document");
	}
	*ret = n;
	return 0;
}

static int builder_scalar(struct builder *b, const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	struct ynode *n;
	int r;

	r = builder_node(b, ev, YNODE_SCALAR, ev->data.scalar.anchor, ev->data.scalar.tag, &n);
	if (r < 0)
		return r;
	/* "\0" escapes in double-quoted strings */
	if (memchr(v, '\0', len))
		return builder_fail(b, &ev->start_mark, "NUL character in a string");
	n->str = arena_strndup(&b->t->arena, v, len);
	if (!n->str)
		return err_setf(b->err, ENOMEM, "out of memory");
	n->len = len;
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	n->end = builder_offset(b, &ev->end_mark);
	return 0;
}

static int builder_push(struct builder *b, const yaml_event_t *ev, enum ynode_kind kind)
{
	const yaml_char_t *anchor, *tag;
	struct ynode *n;
	struct frame *f;
	int r;

	if (kind == YNODE_MAP) {
		anchor = ev->data.mapping_start.anchor;
		tag = ev->data.mapping_start.tag;
	} else {
		anchor = ev->data.sequence_start.anchor;
		tag = ev->data.sequence_start.tag;
	}
	r = builder_node(b, ev, kind, anchor, tag, &n);
	if (r < 0)
		return r;
	if (b->depth >= b->lim->max_depth)
		return builder_fail(b, &ev->start_mark, "nesting too deep (limit %u levels)",
				    b->lim->max_depth);
	f = &b->stack[b->depth++];
	f->node = n;
	f->first = f->last = NULL;
	f->count = 0;
	return 0;
}

static int key_cmp(const void *pa, const void *pb)
{
	const struct ynode *a = *(const struct ynode *const *)pa;
	const struct ynode *b = *(const struct ynode *const *)pb;
	int r = strcmp(a->str, b->str);

	if (r)
		return r;
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	return a->col < b->col ? -1 : a->col > b->col;
}

static bool pos_before(const struct ynode *a, const struct ynode *b)
{
	return a->line < b->line || (a->line == b->line && a->col < b->col);
}

/* Report the duplicate key whose second occurrence comes first in the document. */
static int builder_map_check(struct builder *b, const struct ynode *map)
{
	const struct ynode *dup = NULL, *first = NULL;
	struct ynode **sorted;
	size_t i, run = 0;

	if (map->n < 2)
		return 0;
	sorted = arena_calloc(&b->t->arena, map->n, sizeof(*sorted));
	if (!sorted)
		return err_setf(b->err, ENOMEM, "out of memory");
	memcpy(sorted, map->keys, map->n * sizeof(*sorted));
	qsort(sorted, map->n, sizeof(*sorted), key_cmp);
	for (i = 1; i < map->n; i++) {
		if (strcmp(sorted[i]->str, sorted[run]->str) != 0) {
			run = i;
			continue;
		}
		if (!dup || pos_before(sorted[i], dup)) {
			dup = sorted[i];
			first = sorted[run];
		}
	}
	if (dup) {
		char q[YQ_SIZE];

		return ytree_fail(b->name, dup->line, dup->col, b->err,
				  "duplicate key '%s' (first at line %u, column %u)",
				  ytree_quote(dup->str, q, sizeof(q)), first->line, first->col);
	}
	return 0;
}

static int builder_pop(struct builder *b, const yaml_event_t *ev)
{
	struct frame *f = &b->stack[--b->depth];
	struct ynode *n = f->node, *c;
	size_t i;

	n->end = builder_offset(b, &ev->end_mark);
	if (n->kind == YNODE_MAP) {
		n->n = f->count / 2;
		n->keys = arena_calloc(&b->t->arena, n->n ? n->n : 1, sizeof(*n->keys));
		n->vals = arena_calloc(&b->t->arena, n->n ? n->n : 1, sizeof(*n->vals));
		if (!n->keys || !n->vals)
			return err_setf(b->err, ENOMEM, "out of memory");
		for (i = 0, c = f->first; i < n->n; i++) {
			n->keys[i] = c;
			n->vals[i] = c->next;
			c = c->next->next;
		}
		return builder_map_check(b, n);
	}
	n->n = f->count;
	n->vals = arena_calloc(&b->t->arena, n->n ? n->n : 1, sizeof(*n->vals));
	if (!n->vals)
		return err_setf(b->err, ENOMEM, "out of memory");
	for (i = 0, c = f->first; i < n->n; i++, c = c->next)
		n->vals[i] = c;
	return 0;
}

/* libyaml's own error, with the best position it gives. */
static int builder_yaml_error(struct builder *b, const yaml_parser_t *p)
{
	unsigned line, col;
	int c;

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		return err_setf(b->err, ENOMEM, "out of memory");
	case YAML_READER_ERROR:
		/* encoding problems: a byte offset, no mark */
		buf_pos(b->buf, b->len, p->problem_offset, &line, &col);
		if (strstr(p->problem, "UTF-8") && p->problem_offset < b->len)
			return ytree_fail(b->name, line, col, b->err, "%s (byte 0x%02X)", p->problem,
					  (unsigned char)b->buf[p->problem_offset]);
		if (p->problem_value != -1)
			return ytree_fail(b->name, line, col, b->err, "%s (#%X)", p->problem,
					  (unsigned)p->problem_value);
		return ytree_fail(b->name, line, col, b->err, "%s", p->problem);
	case YAML_SCANNER_ERROR:
	case YAML_PARSER_ERROR:
		c = buf_char_at(b->buf, b->len, p->problem_mark.line, p->problem_mark.column);
		if (c == '\t')
			return builder_fail(b, &p->problem_mark,
					    "tab character where YAML does not allow one "
					    "(indent with spaces)");
		if (!p->context)
			return builder_fail(b, &p->problem_mark, "%s", p->problem);
		if (p->context_mark.line == p->problem_mark.line &&
		    p->context_mark.column == p->problem_mark.column)
			return builder_fail(b, &p->problem_mark, "%s (%s)", p->problem, p->context);
		return builder_fail(b, &p->problem_mark, "%s (%s at line %zu, column %zu)",
				    p->problem, p->context, p->context_mark.line + 1,
				    p->context_mark.column + 1);
	default:
		return ytree_fail(b->name, 0, 0, b->err, "YAML error: %s",
				  p->problem ? p->problem : "unknown");
	}
}

static int builder_event(struct builder *b, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		return builder_doc_start(b, ev);
	case YAML_DOCUMENT_END_EVENT:
		if (b->doc)
			b->doc->end = builder_offset(b, &ev->end_mark);
		b->doc = NULL;
		return 0;
	case YAML_ALIAS_EVENT:
		return builder_fail(b, &ev->start_mark, "YAML aliases/anchors are not supported");
	case YAML_SCALAR_EVENT:
		return builder_scalar(b, ev);
	case YAML_SEQUENCE_START_EVENT:
		return builder_push(b, ev, YNODE_SEQ);
	case YAML_MAPPING_START_EVENT:
		return builder_push(b, ev, YNODE_MAP);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return builder_pop(b, ev);
	default:
		return 0;
	}
}

int ytree_parse(struct ytree *t, const char *name, const char *buf, size_t len,
		const struct ytree_limits *lim, struct mseg_err *err)
{
	struct builder b = {
		.t = t, .name = name, .buf = buf, .len = len, .lim = lim, .err = err,
		.bom = len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3) ? 3 : 0,
	};
	yaml_parser_t parser;
	const char *nul;
	bool done = false;
	int r = 0;

	if (len > lim->max_size)
		return err_set(err, name, 0, 0, EFBIG, "file too large (%zu bytes, limit %zu)",
			       len, lim->max_size);
	if (len >= 2 && (((unsigned char)buf[0] == 0xff && (unsigned char)buf[1] == 0xfe) ||
			 ((unsigned char)buf[0] == 0xfe && (unsigned char)buf[1] == 0xff)))
		return ytree_fail(name, 1, 1, err, "UTF-16 input is not supported (use UTF-8)");
	nul = memchr(buf, '\0', len);
	if (nul) {
		unsigned line, col;

		buf_pos(buf, len, (size_t)(nul - buf), &line, &col);
		return ytree_fail(name, line, col, err, "NUL byte in input");
	}
	b.mark_byte = b.bom;
	b.stack = arena_calloc(&t->arena, lim->max_depth ? lim->max_depth : 1, sizeof(*b.stack));
	if (!b.stack)
		return err_setf(err, ENOMEM, "out of memory");

	if (!yaml_parser_initialize(&parser))
		return err_setf(err, ENOMEM, "out of memory");
	/* no forced encoding: libyaml then skips a UTF-8 byte order mark; UTF-16
	 * was refused above (a BOM, or NUL bytes without one) */
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	while (!done) {
		yaml_event_t ev;

		if (!yaml_parser_parse(&parser, &ev)) {
			r = builder_yaml_error(&b, &parser);
			break;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		r = builder_event(&b, &ev);
		yaml_event_delete(&ev);
		if (r < 0)
			break;
	}
	yaml_parser_delete(&parser);
	if (r < 0)
		return r;
	/* libyaml gives every document a node; be safe anyway */
	for (size_t i = 0; i < t->n_docs; i++) {
		struct ydoc *d = &t->docs[i];

		if (d->root)
			continue;
		d->root = arena_alloc(&t->arena, sizeof(*d->root));
		if (!d->root)
			return err_setf(err, ENOMEM, "out of memory");
		d->root->kind = YNODE_SCALAR;
		d->root->plain = true;
		d->root->str = "";
		d->root->line = d->line;
		d->root->col = d->col;
	}
	return 0;
}

int ytree_load(struct ytree *t, const char *name, const char *buf, size_t len,
	       const struct ytree_limits *lim, struct mseg_err *err)
{
	size_t i, n = 0;
	int r;

	ytree_init(t);
	r = ytree_parse(t, name, buf, len, lim, err);
	if (r < 0)
		return r;
	for (i = 0; i < t->n_docs; i++)
		if (!ynode_is_null(t->docs[i].root))
			t->docs[n++] = t->docs[i];
	t->n_docs = n;
	return 0;
}

int ytree_file_read(const char *path, size_t max_size, char **ret_buf, size_t *ret_len,
		    struct mseg_err *err)
{
	struct stat st;
	size_t len = 0, cap;
	char *buf;
	int fd, r;

	/* O_NONBLOCK: opening a FIFO must not hang msegd's loop (it is then
	 * refused as not a regular file) */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return err_set(err, path, 0, 0, errno, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) < 0) {
		r = err_set(err, path, 0, 0, errno, "cannot stat: %s", strerror(errno));
		goto out_close;
	}
	if (S_ISDIR(st.st_mode)) {
		r = err_set(err, path, 0, 0, EISDIR, "is a directory");
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		r = err_set(err, path, 0, 0, EINVAL, "not a regular file");
		goto out_close;
	}
	if ((unsigned long long)st.st_size > max_size) {
		r = err_set(err, path, 0, 0, EFBIG, "file too large (%llu bytes, limit %zu)",
			    (unsigned long long)st.st_size, max_size);
		goto out_close;
	}
	/* room for one byte more than stat said, to notice a file that grew */
	cap = (size_t)st.st_size + 1;
	if (cap > max_size + 1)
		cap = max_size + 1;
	buf = malloc(cap + 1);
	if (!buf) {
		r = err_setf(err, ENOMEM, "out of memory");
		goto out_close;
	}
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *nb;

			if (cap > max_size) {
				r = err_set(err, path, 0, 0, EFBIG,
					    "file too large (more than %zu bytes, limit %zu)",
					    max_size, max_size);
				goto out_free;
			}
			cap = cap > (max_size + 1) / 2 ? max_size + 1 : 2 * cap;
			nb = realloc(buf, cap + 1);
			if (!nb) {
				r = err_setf(err, ENOMEM, "out of memory");
				goto out_free;
			}
			buf = nb;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = err_set(err, path, 0, 0, errno, "cannot read: %s", strerror(errno));
			goto out_free;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret_buf = buf;
	*ret_len = len;
	close(fd);
	return 0;

out_free:
	free(buf);
out_close:
	close(fd);
	return r;
}

/* ---- tree queries ---- */

bool ynode_is_null(const struct ynode *n)
{
	return n->kind == YNODE_SCALAR && n->plain &&
	       (n->len == 0 || !strcmp(n->str, "~") || !strcmp(n->str, "null") ||
		!strcmp(n->str, "Null") || !strcmp(n->str, "NULL"));
}

/* "a mapping", "a sequence" or "a string". */
static const char *kind_word(enum ynode_kind kind)
{
	switch (kind) {
	case YNODE_MAP:
		return "a mapping";
	case YNODE_SEQ:
		return "a sequence";
	case YNODE_SCALAR:
		break;
	}
	return "a string";
}

const char *ynode_kind_name(const struct ynode *n)
{
	if (n->kind == YNODE_SCALAR && ynode_is_null(n))
		return "an empty value";
	return kind_word(n->kind);
}

const struct ynode *ynode_map_get(const struct ynode *map, const char *key)
{
	size_t i;

	if (map->kind != YNODE_MAP)
		return NULL;
	for (i = 0; i < map->n; i++)
		if (!strcmp(map->keys[i]->str, key))
			return map->vals[i];
	return NULL;
}

/* ---- checks ---- */

/* "what: " or "" for the document root. */
static const char *sep(const char *what)
{
	return what && *what ? ": " : "";
}

void ycheck_whatf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

int ycheck_oom(const struct ycheck *c)
{
	return err_setf(c->err, ENOMEM, "out of memory");
}

int ycheck_strdup(const struct ycheck *c, struct arena *a, const char *s, const char **ret)
{
	char *d = arena_strdup(a, s);

	if (!d)
		return ycheck_oom(c);
	*ret = d;
	return 0;
}

int ycheck_fail(const struct ycheck *c, const struct ynode *n, const char *fmt, ...)
{
	char msg[sizeof(c->err->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_set(c->err, c->file, n->line, n->col, EINVAL, "%s", msg);
}

int ycheck_kind(const struct ycheck *c, const struct ynode *n, enum ynode_kind kind,
		const char *what)
{
	if (n->kind == kind && !(kind == YNODE_SCALAR && ynode_is_null(n)))
		return 0;
	return ycheck_fail(c, n, "%s%sexpected %s, got %s", what, sep(what), kind_word(kind),
			   ynode_kind_name(n));
}

int ycheck_keys(const struct ycheck *c, const struct ynode *map, const char *what,
		const char *const *allowed)
{
	size_t i, j;

	for (i = 0; i < map->n; i++) {
		const struct ynode *k = map->keys[i];
		char q[YQ_SIZE];

		for (j = 0; allowed[j]; j++)
			if (!strcmp(k->str, allowed[j]))
				break;
		if (!allowed[j])
			return ycheck_fail(c, k, "%s%sunknown key '%s'", what, sep(what),
					   ytree_quote(k->str, q, sizeof(q)));
	}
	return 0;
}

int ycheck_map(const struct ycheck *c, const struct ynode *n, const char *what,
	       const char *const *allowed)
{
	int r = ycheck_kind(c, n, YNODE_MAP, what);

	if (r < 0)
		return r;
	return ycheck_keys(c, n, what, allowed);
}

int ycheck_seq(const struct ycheck *c, const struct ynode *n, const char *what, bool nonempty)
{
	int r = ycheck_kind(c, n, YNODE_SEQ, what);

	if (r < 0)
		return r;
	if (nonempty && n->n == 0)
		return ycheck_fail(c, n, "%s%smust not be empty", what, sep(what));
	return 0;
}

int ycheck_require(const struct ycheck *c, const struct ynode *map, const char *key,
		   const char *what, const struct ynode **ret)
{
	const struct ynode *v = ynode_map_get(map, key);

	if (!v)
		return ycheck_fail(c, map, "%s%smissing required key '%s'", what, sep(what), key);
	*ret = v;
	return 0;
}

int ycheck_string(const struct ycheck *c, const struct ynode *n, const char *what,
		  bool nonempty, const char **ret)
{
	if (nonempty && (ynode_is_null(n) || (n->kind == YNODE_SCALAR && n->len == 0)))
		return ycheck_fail(c, n, "%s%smust not be empty", what, sep(what));
	if (n->kind != YNODE_SCALAR || ynode_is_null(n))
		return ycheck_fail(c, n, "%s%sexpected a string, got %s", what, sep(what),
				   ynode_kind_name(n));
	*ret = n->str;
	return 0;
}

int ycheck_enum(const struct ycheck *c, const struct ynode *n, const char *what,
		const char *noun, const char *const *names, unsigned *ret)
{
	char list[256] = "", q[YQ_SIZE];
	const char *s;
	size_t len = 0;
	unsigned i;
	int r;

	r = ycheck_string(c, n, what, true, &s);
	if (r < 0)
		return r;
	for (i = 0; names[i]; i++) {
		if (!strcmp(s, names[i])) {
			*ret = i;
			return 0;
		}
	}
	/* "a, b or c" */
	for (i = 0; names[i] && len < sizeof(list); i++)
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
					i == 0 ? "" : names[i + 1] ? ", " : " or ", names[i]);
	return ycheck_fail(c, n, "%s%sunknown %s '%s' (%s)", what, sep(what), noun,
			   ytree_quote(s, q, sizeof(q)), list);
}

int ycheck_uint(const struct ycheck *c, const struct ynode *n, const char *what,
		unsigned long lo, unsigned long hi, unsigned long *ret)
{
	unsigned long v = 0;
	char q[YQ_SIZE];
	size_t i;

	if (n->kind != YNODE_SCALAR || ynode_is_null(n) || !n->plain)
		return ycheck_fail(c, n, "%s%sexpected an integer, got %s", what, sep(what),
				   ynode_kind_name(n));
	for (i = 0; i < n->len; i++) {
		if (n->str[i] < '0' || n->str[i] > '9')
			return ycheck_fail(c, n, "%s%sexpected an integer, got '%s'", what,
					   sep(what), ytree_quote(n->str, q, sizeof(q)));
		if (v <= hi)
			v = v * 10 + (unsigned long)(n->str[i] - '0');
	}
	if (v < lo || v > hi)
		return ycheck_fail(c, n, "%s%s%s out of range (%lu-%lu)", what, sep(what),
				   ytree_quote(n->str, q, sizeof(q)), lo, hi);
	*ret = v;
	return 0;
}

/* ---- scalar syntax ---- */

int ycheck_label(const struct ycheck *c, const struct ynode *k, const struct ynode *v,
		 const char *what, const char *lwhat, const char **ret_value)
{
	char q[YQ_SIZE];
	const char *val;
	int r;

	if (!name_is_label_key(k->str))
		return ycheck_fail(c, k, "%s: '%s' is not a valid label key (%s)", what,
				   ytree_quote(k->str, q, sizeof(q)), NAME_LABEL_KEY_HINT);
	r = ycheck_string(c, v, lwhat, false, &val);
	if (r < 0)
		return r;
	if (!name_is_label_value(val))
		return ycheck_fail(c, v, "%s: '%s' is not a valid label value (%s)", lwhat,
				   ytree_quote(val, q, sizeof(q)), NAME_LABEL_VALUE_HINT);
	*ret_value = val;
	return 0;
}
