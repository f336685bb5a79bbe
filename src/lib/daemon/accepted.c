/* Accepted-connection summaries: the kernel's seen-set counters folded into
 * per-endpoint summaries that outlive a table replace and a restart
 * (include/mseg/daemon/accepted.h). The file, one block per endpoint:
 *
 *   ep ID TABLE_HANDLE
 *   DIR PEER PROTO PORT|- CONNECTIONS FIRST_NS LAST_NS KCOUNT
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/util/clock.h"
#include "mseg/model/addr.h"
#include "mseg/kernel/nft.h"
#include "mseg/daemon/accepted.h"
#include "mseg/daemon/store.h"
#include "util/vec.h"

struct accepted *accepted_new(const char *state_dir)
{
	struct accepted *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->max_entries = ACCEPTED_MAX_ENTRIES;
	if (state_dir) {
		a->state_dir = strdup(state_dir);
		if (!a->state_dir) {
			free(a);
			return NULL;
		}
	}
	return a;
}

struct accepted *accepted_free(struct accepted *a)
{
	if (!a)
		return NULL;
	for (size_t i = 0; i < a->n_eps; i++) {
		free(a->eps[i].id);
		free(a->eps[i].v);
	}
	free(a->eps);
	free(a->state_dir);
	free(a);
	return NULL;
}

static size_t ep_index(const struct accepted *a, const char *id, bool *ret_found)
{
	return VEC_STR_INDEX(a->eps, a->n_eps, id, id, ret_found);
}

const struct accepted_ep *accepted_ep_find(const struct accepted *a, const char *id)
{
	bool found;
	size_t i;

	if (!a)
		return NULL;
	i = ep_index(a, id, &found);
	return found ? &a->eps[i] : NULL;
}

static struct accepted_ep *ep_get(struct accepted *a, const char *id)
{
	bool found;
	size_t i = ep_index(a, id, &found);
	char *copy;

	if (found)
		return &a->eps[i];
	copy = strdup(id);
	if (!copy || VEC_RESERVE(a->eps, a->cap_eps, a->n_eps + 1) < 0) {
		free(copy);
		return NULL;
	}
	memmove(&a->eps[i + 1], &a->eps[i], (a->n_eps - i) * sizeof(*a->eps));
	memset(&a->eps[i], 0, sizeof(a->eps[i]));
	a->eps[i].id = copy;
	a->n_eps++;
	return &a->eps[i];
}

static int key_cmp(uint8_t dir_a, const struct mseg_addr *pa, uint8_t proto_a, uint16_t port_a,
		   uint8_t dir_b, const struct mseg_addr *pb, uint8_t proto_b, uint16_t port_b)
{
	int c;

	if (dir_a != dir_b)
		return dir_a < dir_b ? -1 : 1;
	if (pa->family != pb->family)
		return pa->family < pb->family ? -1 : 1;
	if ((c = memcmp(pa->bytes, pb->bytes, sizeof(pa->bytes))))
		return c;
	if (proto_a != proto_b)
		return proto_a < proto_b ? -1 : 1;
	return port_a < port_b ? -1 : port_a > port_b;
}

static int entry_cmp(const struct accepted_entry *x, const struct accepted_entry *y)
{
	return key_cmp(x->dir, &x->peer, x->proto, x->port, y->dir, &y->peer, y->proto, y->port);
}

static int seen_cmp(const void *pa, const void *pb)
{
	const struct ep_seen *x = pa, *y = pb;

	return key_cmp((uint8_t)x->dir, &x->peer, x->proto, x->has_port ? x->port : 0,
		       (uint8_t)y->dir, &y->peer, y->proto, y->has_port ? y->port : 0);
}

const struct accepted_entry *accepted_entry_find(const struct accepted_ep *ep, uint8_t dir,
						 const struct mseg_addr *peer, uint8_t proto,
						 uint16_t port)
{
	size_t lo = 0, hi = ep ? ep->n : 0;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct accepted_entry *e = &ep->v[mid];
		int c = key_cmp(e->dir, &e->peer, e->proto, e->port, dir, peer, proto, port);

		if (c == 0)
			return e;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Merge the sorted kernel elements @s into @ep's sorted summaries. */
int accepted_fold(struct accepted *a, const char *id, uint64_t table_handle,
		  const struct ep_seen *seen, size_t n, unsigned dirs, uint64_t now_ns)
{
	struct accepted_ep *ep = ep_get(a, id);
	struct ep_seen *s = NULL;
	struct accepted_entry *out;
	size_t ns = 0, i = 0, j = 0, k = 0;

	if (!ep)
		return -ENOMEM;
	if (n) {
		s = malloc(n * sizeof(*s));
		if (!s)
			return -ENOMEM;
		for (size_t x = 0; x < n; x++)
			if ((unsigned)seen[x].dir < MSEG_DIR_COUNT && (dirs & (1u << seen[x].dir)))
				s[ns++] = seen[x];
		qsort(s, ns, sizeof(*s), seen_cmp);
	}
	out = malloc((ep->n + ns + 1) * sizeof(*out));
	if (!out) {
		free(s);
		return -ENOMEM;
	}
	if (ep->table_handle != table_handle) {
		/* a new table: its counters started from zero */
		for (size_t x = 0; x < ep->n; x++)
			ep->v[x].kcount = 0;
		ep->table_handle = table_handle;
		a->dirty = true;
	}
	while (i < ep->n || j < ns) {
		struct accepted_entry e = { 0 };
		const struct ep_seen *x = j < ns ? &s[j] : NULL;
		uint64_t at = 0;
		int c;

		if (x) {
			e.dir = (uint8_t)x->dir;
			e.peer = x->peer;
			e.proto = x->proto;
			e.has_port = x->has_port;
			e.port = x->has_port ? x->port : 0;
			at = now_ns > x->idle_ms * 1000000ull ? now_ns - x->idle_ms * 1000000ull : 0;
		}
		c = i == ep->n ? 1 : !x ? -1 : entry_cmp(&ep->v[i], &e);
		if (c < 0) {
			/* not in the kernel (any more): its element timed out, a new
			 * one counts from zero */
			out[k] = ep->v[i++];
			if ((dirs & (1u << out[k].dir)) && out[k].kcount) {
				out[k].kcount = 0;
				a->dirty = true;
			}
			k++;
			continue;
		}
		if (c == 0) {
			struct accepted_entry *o = &ep->v[i++];
			uint64_t delta = x->connections >= o->kcount ? x->connections - o->kcount
								     : x->connections;

			j++;
			out[k] = *o;
			out[k].kcount = x->connections;
			if (delta) {
				out[k].connections += delta;
				if (at > out[k].last_ns)
					out[k].last_ns = at;
			}
			if (delta || o->kcount != x->connections)
				a->dirty = true;
			k++;
			continue;
		}
		j++;
		if (!x->connections)
			continue;
		if (a->n_entries >= a->max_entries) {
			a->dropped++;
			continue;
		}
		e.connections = x->connections;
		e.kcount = x->connections;
		e.first_ns = e.last_ns = at;
		out[k++] = e;
		a->n_entries++;
		a->dirty = true;
	}
	free(ep->v);
	free(s);
	ep->cap = ep->n + ns + 1;   /* out's size */
	ep->v = out;
	ep->n = k;
	ep->dirs |= dirs;
	ep->read_ns = now_ns;
	return 0;
}

struct read_ctx {
	struct ep_seen *v;
	size_t n, cap;
};

static int read_cb(const struct ep_seen *s, void *data)
{
	struct read_ctx *c = data;

	if (VEC_RESERVE(c->v, c->cap, c->n + 1) < 0)
		return -ENOMEM;
	c->v[c->n++] = *s;
	return 0;
}

int accepted_read(struct accepted *a, struct netns *ns, const char *id, unsigned dirs,
		  struct mseg_err *err)
{
	struct read_ctx c = { 0 };
	uint64_t handle = 0;
	int r;

	a->reads++;
	r = ep_table_handle_read(ns, &handle, err);
	if (r == 0 && handle)
		r = ep_table_seen_read(ns, read_cb, &c, err);
	if (r == 0 && handle) {
		r = accepted_fold(a, id, handle, c.v, c.n, dirs, clock_real_ns());
		if (r < 0)
			err_setf(err, -r, "out of memory");
	}
	if (r < 0)
		a->read_failures++;
	free(c.v);
	return r;
}

/* ---- the file ---- */

char *accepted_text(const struct accepted *a, size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	for (size_t i = 0; i < a->n_eps; i++) {
		const struct accepted_ep *ep = &a->eps[i];

		if (!ep->n)
			continue;
		fprintf(f, "ep %s %" PRIu64 "\n", ep->id, ep->table_handle);
		for (size_t k = 0; k < ep->n; k++) {
			const struct accepted_entry *e = &ep->v[k];
			char peer[64];

			fprintf(f, "%s %s %u ", e->dir == MSEG_DIR_INGRESS ? "in" : "out",
				addr_format(&e->peer, peer, sizeof(peer)), e->proto);
			if (e->has_port)
				fprintf(f, "%u", e->port);
			else
				fputc('-', f);
			fprintf(f, " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", e->connections,
				e->first_ns, e->last_ns, e->kcount);
		}
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	*ret_len = len;
	return buf;
}

int accepted_save(struct accepted *a, struct mseg_err *err)
{
	size_t len = 0;
	char *text;
	int r;

	if (!a->dirty || !a->state_dir)
		return 0;
	text = accepted_text(a, &len);
	if (!text)
		return err_setf(err, ENOMEM, "out of memory");
	r = store_write_atomic(a->state_dir, ACCEPTED_FILE, text, len, err);
	free(text);
	if (r == 0)
		a->dirty = false;
	return r;
}

static int entry_line(struct accepted_ep *ep, const char *line, struct accepted_entry *e)
{
	char dir[8], peer[64], port[8];
	unsigned proto;
	unsigned long p;
	char *end;

	memset(e, 0, sizeof(*e));
	if (sscanf(line, "%7s %63s %u %7s %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64, dir, peer,
		   &proto, port, &e->connections, &e->first_ns, &e->last_ns, &e->kcount) != 8)
		return -EINVAL;
	if (strcmp(dir, "in") == 0)
		e->dir = MSEG_DIR_INGRESS;
	else if (strcmp(dir, "out") == 0)
		e->dir = MSEG_DIR_EGRESS;
	else
		return -EINVAL;
	if (addr_parse(peer, &e->peer) < 0 || proto > 255)
		return -EINVAL;
	e->proto = (uint8_t)proto;
	if (strcmp(port, "-") != 0) {
		errno = 0;
		p = strtoul(port, &end, 10);
		if (errno || *end || p > 65535)
			return -EINVAL;
		e->has_port = true;
		e->port = (uint16_t)p;
	}
	if (ep->n && entry_cmp(&ep->v[ep->n - 1], e) >= 0)
		return -EINVAL;   /* out of order, or twice */
	return 0;
}

int accepted_parse(struct accepted *a, const char *path, FILE *f, struct mseg_err *err)
{
	struct accepted_ep *ep = NULL;
	char line[512];
	unsigned lineno = 0;

	while (fgets(line, sizeof(line), f)) {
		struct accepted_entry e;
		char id[256];
		uint64_t handle;

		lineno++;
		if (strncmp(line, "ep ", 3) == 0) {
			if (sscanf(line, "ep %255s %" SCNu64, id, &handle) != 2 || accepted_ep_find(a, id))
				return err_setf(err, EINVAL, "%s:%u: not 'ep ID TABLE_HANDLE' (or a "
						"second block for it)", path, lineno);
			ep = ep_get(a, id);
			if (!ep)
				return err_setf(err, ENOMEM, "out of memory");
			ep->table_handle = handle;
			continue;
		}
		if (!ep || entry_line(ep, line, &e) < 0)
			return err_setf(err, EINVAL, "%s:%u: not 'in|out PEER PROTO PORT|- "
					"CONNECTIONS FIRST_NS LAST_NS KCOUNT' after an 'ep' line",
					path, lineno);
		if (a->n_entries >= a->max_entries) {
			a->dropped++;
			continue;
		}
		if (VEC_RESERVE(ep->v, ep->cap, ep->n + 1) < 0)
			return err_setf(err, ENOMEM, "out of memory");
		ep->v[ep->n++] = e;
		ep->dirs |= 1u << e.dir;
		a->n_entries++;
	}
	return 0;
}

int accepted_load(struct accepted *a, struct mseg_err *err)
{
	char path[4096];
	FILE *f;
	int r;

	if (!a->state_dir)
		return 0;
	snprintf(path, sizeof(path), "%s/%s", a->state_dir, ACCEPTED_FILE);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : err_setf(err, errno, "%s: %s", path, strerror(errno));
	r = accepted_parse(a, path, f, err);
	fclose(f);
	return r;
}
