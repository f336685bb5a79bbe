/* Flow records: the ring with its aggregation hash, JSON, the log file
 * (see include/mseg/flow.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mseg/model/addr.h"
#include "mseg/packet/flow.h"

#define NIL UINT32_MAX

/* ---- endpoints ---- */

static uint32_t hash_str(const char *s)
{
	uint32_t h = 2166136261u;   /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

struct flow_ep *flow_ep_new(const char *id, const char *name, const char *ns)
{
	struct flow_ep *ep;

	if (!id)
		return NULL;
	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return NULL;
	ep->refs = 1;
	ep->id = strdup(id);
	ep->name = strdup(name ? name : "");
	ep->ns = strdup(ns ? ns : "");
	if (!ep->id || !ep->name || !ep->ns) {
		ep->refs = 1;
		return flow_ep_unref(ep);
	}
	ep->hash = hash_str(id);
	return ep;
}

struct flow_ep *flow_ep_ref(struct flow_ep *ep)
{
	if (ep)
		ep->refs++;
	return ep;
}

struct flow_ep *flow_ep_unref(struct flow_ep *ep)
{
	if (!ep || --ep->refs > 0)
		return NULL;
	free(ep->id);
	free(ep->name);
	free(ep->ns);
	free(ep);
	return NULL;
}

void flow_record_release(struct flow_record *rec)
{
	if (!rec)
		return;
	rec->ep = flow_ep_unref(rec->ep);
}

/* ---- names and times ---- */

const char *flow_dir_name(enum mseg_dir dir)
{
	return dir == MSEG_DIR_EGRESS ? "egress" : "ingress";
}

const char *flow_verdict_name(enum flow_verdict v)
{
	return v == FLOW_AUDITED ? "audited" : "dropped";
}

int flow_dir_parse(const char *s, enum mseg_dir *ret)
{
	if (strcmp(s, "ingress") == 0)
		*ret = MSEG_DIR_INGRESS;
	else if (strcmp(s, "egress") == 0)
		*ret = MSEG_DIR_EGRESS;
	else
		return -EINVAL;
	return 0;
}

int flow_verdict_parse(const char *s, enum flow_verdict *ret)
{
	if (strcmp(s, "dropped") == 0)
		*ret = FLOW_DROPPED;
	else if (strcmp(s, "audited") == 0)
		*ret = FLOW_AUDITED;
	else
		return -EINVAL;
	return 0;
}

const char *flow_time_format(uint64_t ns, char *buf, size_t size)
{
	time_t sec = (time_t)(ns / 1000000000u);
	unsigned ms = (unsigned)(ns / 1000000u % 1000u);
	struct tm tm;

	if (!gmtime_r(&sec, &tm) ||
	    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms) < 0)
		snprintf(buf, size, "1970-01-01T00:00:00.000Z");
	return buf;
}

/* @n digits at *s into *ret; advances *s. */
static bool digits(const char **s, int n, int *ret)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if ((*s)[i] < '0' || (*s)[i] > '9')
			return false;
		v = v * 10 + ((*s)[i] - '0');
	}
	*s += n;
	*ret = v;
	return true;
}

static bool lit(const char **s, char c)
{
	if (**s != c)
		return false;
	(*s)++;
	return true;
}

int flow_time_parse(const char *s, uint64_t *ret_ns)
{
	struct tm tm = { 0 };
	int y, mo, d, h, mi, sec, oh, om, ndig = 0;
	long long frac = 0, off = 0;
	time_t t;

	if (!digits(&s, 4, &y) || !lit(&s, '-') || !digits(&s, 2, &mo) || !lit(&s, '-') ||
	    !digits(&s, 2, &d) || !(lit(&s, 'T') || lit(&s, 't') || lit(&s, ' ')) ||
	    !digits(&s, 2, &h) || !lit(&s, ':') || !digits(&s, 2, &mi) || !lit(&s, ':') ||
	    !digits(&s, 2, &sec))
		return -EINVAL;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	if (lit(&s, '.')) {
		while (*s >= '0' && *s <= '9') {
			if (ndig < 9) {
				frac = frac * 10 + (*s - '0');
				ndig++;
			}
			s++;
		}
		if (ndig == 0)
			return -EINVAL;
		for (int i = ndig; i < 9; i++)
			frac *= 10;
	}
	if (lit(&s, 'Z') || lit(&s, 'z')) {
		off = 0;
	} else if (*s == '+' || *s == '-') {
		int sign = *s == '-' ? -1 : 1;

		s++;
		if (!digits(&s, 2, &oh) || !lit(&s, ':') || !digits(&s, 2, &om) || oh > 23 ||
		    om > 59)
			return -EINVAL;
		off = sign * (oh * 3600LL + om * 60LL);
	} else {
		return -EINVAL;
	}
	if (*s)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t)-1 || (long long)t - off < 0)
		return -EINVAL;
	*ret_ns = (uint64_t)((long long)t - off) * 1000000000u + (uint64_t)frac;
	return 0;
}

/* ---- JSON ---- */

/* Set, remembering a failure (jansson frees @v on failure too). */
static void put(json_t *o, const char *key, json_t *v, bool *ok)
{
	if (json_object_set_new(o, key, v) < 0)
		*ok = false;
}

json_t *flow_record_to_json(const struct flow_record *r)
{
	char t[FLOW_TIME_MAX], a[INET6_ADDRSTRLEN];
	json_t *o = json_object(), *ep;
	const char *pname = pkt_proto_name(r->proto);
	bool ok = o != NULL;

	if (!o)
		return NULL;
	put(o, "id", json_integer((json_int_t)r->id), &ok);
	put(o, "time", json_string(flow_time_format(r->last_ns, t, sizeof(t))), &ok);
	ep = json_object();
	if (ep && r->ep) {
		put(ep, "id", json_string(r->ep->id), &ok);
		put(ep, "name", json_string(r->ep->name), &ok);
		put(ep, "namespace", json_string(r->ep->ns), &ok);
	}
	put(o, "endpoint", ep, &ok);
	put(o, "direction", json_string(flow_dir_name(r->dir)), &ok);
	put(o, "src", json_string(addr_format(&r->src, a, sizeof(a))), &ok);
	if (r->flags & FLOW_F_PORTS)
		put(o, "sport", json_integer(r->sport), &ok);
	if ((r->flags & FLOW_F_PORTS) && r->sports > 1)
		put(o, "sports", json_integer(r->sports), &ok);
	put(o, "dst", json_string(addr_format(&r->dst, a, sizeof(a))), &ok);
	if (r->flags & FLOW_F_PORTS)
		put(o, "dport", json_integer(r->dport), &ok);
	put(o, "proto", pname ? json_string(pname) : json_integer(r->proto), &ok);
	if (r->flags & FLOW_F_ICMP) {
		put(o, "icmp_type", json_integer(r->icmp_type), &ok);
		put(o, "icmp_code", json_integer(r->icmp_code), &ok);
	}
	put(o, "verdict", json_string(flow_verdict_name(r->verdict)), &ok);
	if (r->flags & FLOW_F_UID)
		put(o, "uid", json_integer(r->uid), &ok);
	if (r->flags & FLOW_F_GID)
		put(o, "gid", json_integer(r->gid), &ok);
	put(o, "count", json_integer((json_int_t)r->count), &ok);
	put(o, "first_seen", json_string(flow_time_format(r->first_ns, t, sizeof(t))), &ok);
	put(o, "last_seen", json_string(flow_time_format(r->last_ns, t, sizeof(t))), &ok);
	if (r->err != PKT_OK)
		put(o, "error", json_string(pkt_err_name(r->err)), &ok);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int get_str(const json_t *o, const char *key, bool required, const char **ret)
{
	json_t *v = json_object_get(o, key);

	if (!v) {
		*ret = NULL;
		return required ? -EINVAL : 0;
	}
	if (!json_is_string(v))
		return -EINVAL;
	*ret = json_string_value(v);
	return 0;
}

/* An integer in [lo, hi]; 0 with *present false when absent. */
static int get_int(const json_t *o, const char *key, json_int_t lo, json_int_t hi,
		   bool *present, json_int_t *ret)
{
	json_t *v = json_object_get(o, key);

	*present = v != NULL;
	*ret = 0;
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return -EINVAL;
	*ret = json_integer_value(v);
	return 0;
}

static int get_time(const json_t *o, const char *key, uint64_t *ret)
{
	const char *s;
	int r = get_str(o, key, true, &s);

	return r < 0 ? r : flow_time_parse(s, ret);
}

int flow_record_from_json(const json_t *o, struct flow_record *ret)
{
	struct flow_record rec = { 0 };
	const char *s, *epid, *epname, *epns;
	const json_t *ep, *pv;
	json_int_t v, v2;
	bool has, has2;
	enum mseg_dir dir;
	enum flow_verdict verdict;

	memset(ret, 0, sizeof(*ret));
	if (!json_is_object(o))
		return -EINVAL;
	if (get_int(o, "id", 1, INT64_MAX, &has, &v) < 0 || !has)
		return -EINVAL;
	rec.id = (uint64_t)v;
	ep = json_object_get(o, "endpoint");
	if (!json_is_object(ep) || get_str(ep, "id", true, &epid) < 0 ||
	    get_str(ep, "name", false, &epname) < 0 || get_str(ep, "namespace", false, &epns) < 0)
		return -EINVAL;
	if (get_str(o, "direction", true, &s) < 0 || flow_dir_parse(s, &dir) < 0)
		return -EINVAL;
	rec.dir = (uint8_t)dir;
	if (get_str(o, "verdict", true, &s) < 0 || flow_verdict_parse(s, &verdict) < 0)
		return -EINVAL;
	rec.verdict = (uint8_t)verdict;
	if (get_str(o, "src", true, &s) < 0 || addr_parse(s, &rec.src) < 0 ||
	    get_str(o, "dst", true, &s) < 0 || addr_parse(s, &rec.dst) < 0 ||
	    rec.src.family != rec.dst.family)
		return -EINVAL;
	pv = json_object_get(o, "proto");
	if (json_is_string(pv)) {
		if (pkt_proto_parse(json_string_value(pv), &rec.proto) < 0)
			return -EINVAL;
	} else if (json_is_integer(pv) && json_integer_value(pv) >= 0 &&
		   json_integer_value(pv) <= 255) {
		rec.proto = (uint8_t)json_integer_value(pv);
	} else {
		return -EINVAL;
	}
	if (get_int(o, "sport", 0, 65535, &has, &v) < 0 ||
	    get_int(o, "dport", 0, 65535, &has2, &v2) < 0 || has != has2)
		return -EINVAL;
	if (has) {
		rec.flags |= FLOW_F_PORTS;
		rec.sport = rec.sport_last = (uint16_t)v;
		rec.dport = (uint16_t)v2;
		rec.sports = 1;
		if (get_int(o, "sports", 1, UINT32_MAX, &has, &v) < 0)
			return -EINVAL;
		if (has)
			rec.sports = (uint32_t)v;
	}
	if (get_int(o, "icmp_type", 0, 255, &has, &v) < 0 ||
	    get_int(o, "icmp_code", 0, 255, &has2, &v2) < 0 || has != has2)
		return -EINVAL;
	if (has) {
		rec.flags |= FLOW_F_ICMP;
		rec.icmp_type = (uint8_t)v;
		rec.icmp_code = (uint8_t)v2;
	}
	if (get_int(o, "uid", 0, UINT32_MAX, &has, &v) < 0)
		return -EINVAL;
	if (has) {
		rec.flags |= FLOW_F_UID;
		rec.uid = (uint32_t)v;
	}
	if (get_int(o, "gid", 0, UINT32_MAX, &has, &v) < 0)
		return -EINVAL;
	if (has) {
		rec.flags |= FLOW_F_GID;
		rec.gid = (uint32_t)v;
	}
	if (get_int(o, "count", 1, INT64_MAX, &has, &v) < 0 || !has)
		return -EINVAL;
	rec.count = (uint64_t)v;
	if (get_time(o, "first_seen", &rec.first_ns) < 0 ||
	    get_time(o, "last_seen", &rec.last_ns) < 0)
		return -EINVAL;
	if (get_str(o, "error", false, &s) < 0)
		return -EINVAL;
	if (s) {
		/* malformed for a reason this version does not know by name:
		 * keep it malformed */
		rec.err = PKT_E_EMPTY;
		for (unsigned e = 1; e < PKT_E_COUNT; e++)
			if (strcmp(s, pkt_err_name(e)) == 0)
				rec.err = (uint8_t)e;
	}
	rec.ep = flow_ep_new(epid, epname, epns);
	if (!rec.ep)
		return -ENOMEM;
	*ret = rec;
	return 0;
}

/* ---- the ring ---- */

struct slot {
	struct flow_record rec;
	uint32_t hnext, hprev;   /* hash chain (slot indices), NIL-terminated */
	uint32_t hash;
	bool open;               /* in the hash, aggregating */
	bool dirty;              /* packets since the sink saw it */
};

struct flow_ring {
	struct slot *slots;
	size_t cap;
	size_t count;
	uint64_t total;          /* records ever added: absolute index of the next */
	uint64_t expire_pos;     /* absolute index; every record before it is closed */
	uint32_t *buckets;
	uint32_t mask;
	uint64_t window_ns;
	uint64_t next_id;
	uint64_t seq;
	flow_sink_fn sink;
	void *sink_data;
	struct flow_ring_stats stats;
};

struct flow_key {
	const struct flow_ep *ep;
	uint8_t dir, verdict, proto, kflags, err;
	uint16_t port;
	const struct mseg_addr *src, *dst;
};

static uint16_t rec_port(const struct flow_record *r)
{
	if (r->flags & FLOW_F_PORTS)
		return r->dport;
	if (r->flags & FLOW_F_ICMP)
		return (uint16_t)(r->icmp_type << 8 | r->icmp_code);
	return 0;
}

static uint64_t mix64(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	h *= 0xff51afd7ed558ccdull;
	return h ^ (h >> 32);
}

static uint64_t addr_mix(uint64_t h, const struct mseg_addr *a)
{
	uint64_t w[2];

	memcpy(w, a->bytes, sizeof(w));
	return mix64(mix64(mix64(h, a->family), w[0]), w[1]);
}

static uint32_t key_hash(const struct flow_key *k)
{
	uint64_t h = k->ep->hash;

	h = mix64(h, (uint64_t)k->dir | (uint64_t)k->verdict << 8 | (uint64_t)k->proto << 16 |
			     (uint64_t)k->kflags << 24 | (uint64_t)k->port << 32 |
			     (uint64_t)k->err << 48);
	h = addr_mix(h, k->src);
	h = addr_mix(h, k->dst);
	return (uint32_t)(h ^ (h >> 32));
}

static bool key_match(const struct flow_key *k, const struct flow_record *r)
{
	return r->dir == k->dir && r->verdict == k->verdict && r->proto == k->proto &&
	       r->err == k->err &&
	       (r->flags & (FLOW_F_PORTS | FLOW_F_ICMP)) == k->kflags && rec_port(r) == k->port &&
	       addr_eq(&r->src, k->src) && addr_eq(&r->dst, k->dst) &&
	       (r->ep == k->ep ||
		(r->ep->hash == k->ep->hash && strcmp(r->ep->id, k->ep->id) == 0));
}

struct flow_ring *flow_ring_new(size_t capacity, uint64_t window_ms)
{
	struct flow_ring *r;
	size_t nb = 16;

	if (capacity == 0)
		capacity = FLOW_RING_DEFAULT_CAPACITY;
	if (capacity >= NIL / 2)
		return NULL;
	while (nb < capacity * 2)
		nb <<= 1;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->slots = calloc(capacity, sizeof(*r->slots));
	r->buckets = malloc(nb * sizeof(*r->buckets));
	if (!r->slots || !r->buckets)
		return flow_ring_free(r);
	for (size_t i = 0; i < nb; i++)
		r->buckets[i] = NIL;
	r->cap = capacity;
	r->mask = (uint32_t)(nb - 1);
	r->window_ns = window_ms * 1000000u;
	r->next_id = 1;
	return r;
}

struct flow_ring *flow_ring_free(struct flow_ring *r)
{
	if (!r)
		return NULL;
	if (r->slots)
		for (size_t i = 0; i < r->cap; i++)
			flow_ep_unref(r->slots[i].rec.ep);
	free(r->slots);
	free(r->buckets);
	free(r);
	return NULL;
}

void flow_ring_set_sink(struct flow_ring *r, flow_sink_fn fn, void *data)
{
	r->sink = fn;
	r->sink_data = data;
}

size_t flow_ring_count(const struct flow_ring *r)
{
	return r->count;
}

size_t flow_ring_capacity(const struct flow_ring *r)
{
	return r->cap;
}

uint64_t flow_ring_seq(const struct flow_ring *r)
{
	return r->seq;
}

void flow_ring_stats_get(const struct flow_ring *r, struct flow_ring_stats *ret)
{
	*ret = r->stats;
}

static uint32_t slot_of(const struct flow_ring *r, uint64_t abs)
{
	return (uint32_t)(abs % r->cap);
}

static void hash_insert(struct flow_ring *r, uint32_t i)
{
	struct slot *s = &r->slots[i];
	uint32_t *head = &r->buckets[s->hash & r->mask];

	s->hprev = NIL;
	s->hnext = *head;
	if (*head != NIL)
		r->slots[*head].hprev = i;
	*head = i;
}

static void hash_remove(struct flow_ring *r, uint32_t i)
{
	struct slot *s = &r->slots[i];

	if (s->hprev != NIL)
		r->slots[s->hprev].hnext = s->hnext;
	else
		r->buckets[s->hash & r->mask] = s->hnext;
	if (s->hnext != NIL)
		r->slots[s->hnext].hprev = s->hprev;
	s->hnext = s->hprev = NIL;
}

/* End a record's aggregation window. */
static void slot_close(struct flow_ring *r, uint32_t i)
{
	struct slot *s = &r->slots[i];

	if (!s->open)
		return;
	hash_remove(r, i);
	s->open = false;
	r->stats.closed++;
	r->stats.open--;
	if (s->dirty) {
		s->dirty = false;
		if (r->sink)
			r->sink(&s->rec, FLOW_CHANGE_FINAL, r->sink_data);
	}
}

/* A slot for a new record at the head, pushing out the oldest if full. */
static uint32_t slot_take(struct flow_ring *r)
{
	uint32_t i;

	if (r->count == r->cap) {
		i = slot_of(r, r->total - r->count);
		slot_close(r, i);
		r->slots[i].rec.ep = flow_ep_unref(r->slots[i].rec.ep);
		r->count--;
		r->stats.overwritten++;
	}
	i = slot_of(r, r->total);
	r->total++;
	r->count++;
	if (r->expire_pos < r->total - r->count)
		r->expire_pos = r->total - r->count;
	memset(&r->slots[i], 0, sizeof(r->slots[i]));
	r->slots[i].hnext = r->slots[i].hprev = NIL;
	return i;
}

int flow_ring_add(struct flow_ring *r, const struct flow_event *ev,
		  const struct flow_record **ret_rec)
{
	const struct pkt_info *p = ev->pkt;
	struct flow_key k;
	struct flow_record *rec;
	struct slot *s;
	uint32_t h, i;

	if (!p || !ev->ep || (p->family != AF_INET && p->family != AF_INET6))
		return -EINVAL;
	k.ep = ev->ep;
	k.dir = (uint8_t)ev->dir;
	k.verdict = (uint8_t)ev->verdict;
	k.proto = p->proto;
	k.kflags = (uint8_t)(((p->flags & PKT_F_PORTS) ? FLOW_F_PORTS : 0) |
			     ((p->flags & PKT_F_ICMP) ? FLOW_F_ICMP : 0));
	k.err = p->err;
	k.port = (p->flags & PKT_F_PORTS) ? p->dport :
		 (p->flags & PKT_F_ICMP) ? (uint16_t)(p->icmp_type << 8 | p->icmp_code) : 0;
	k.src = &p->src;
	k.dst = &p->dst;
	h = key_hash(&k);
	r->stats.packets++;

	if (r->window_ns) {
		for (i = r->buckets[h & r->mask]; i != NIL; i = r->slots[i].hnext) {
			s = &r->slots[i];
			if (s->hash != h || !key_match(&k, &s->rec))
				continue;
			/* a clock stepping back keeps the window open */
			if (ev->time_ns >= s->rec.first_ns &&
			    ev->time_ns - s->rec.first_ns >= r->window_ns) {
				slot_close(r, i);
				break;
			}
			s->rec.count++;
			if ((p->flags & PKT_F_PORTS) && p->sport != s->rec.sport_last) {
				s->rec.sport_last = p->sport;
				if (s->rec.sports < UINT32_MAX)
					s->rec.sports++;
			}
			if (ev->time_ns > s->rec.last_ns)
				s->rec.last_ns = ev->time_ns;
			s->rec.seq = ++r->seq;
			s->dirty = true;
			r->stats.aggregated++;
			if (ret_rec)
				*ret_rec = &s->rec;
			return 0;
		}
	}

	i = slot_take(r);
	s = &r->slots[i];
	rec = &s->rec;
	rec->id = r->next_id++;
	rec->seq = ++r->seq;
	rec->ep = flow_ep_ref(ev->ep);
	rec->dir = k.dir;
	rec->verdict = k.verdict;
	rec->proto = p->proto;
	rec->flags = k.kflags;
	rec->err = p->err;
	rec->src = p->src;
	rec->dst = p->dst;
	if (p->flags & PKT_F_PORTS) {
		rec->sport = rec->sport_last = p->sport;
		rec->sports = 1;
		rec->dport = p->dport;
	}
	if (p->flags & PKT_F_ICMP) {
		rec->icmp_type = p->icmp_type;
		rec->icmp_code = p->icmp_code;
	}
	if (ev->has_uid) {
		rec->flags |= FLOW_F_UID;
		rec->uid = ev->uid;
	}
	if (ev->has_gid) {
		rec->flags |= FLOW_F_GID;
		rec->gid = ev->gid;
	}
	rec->count = 1;
	rec->first_ns = rec->last_ns = ev->time_ns;
	s->hash = h;
	if (r->window_ns) {
		s->open = true;
		hash_insert(r, i);
		r->stats.open++;
	}
	r->stats.created++;
	if (r->sink)
		r->sink(rec, FLOW_CHANGE_NEW, r->sink_data);
	if (ret_rec)
		*ret_rec = rec;
	return 1;
}

void flow_ring_expire(struct flow_ring *r, uint64_t now_ns)
{
	uint64_t oldest = r->total - r->count;

	if (r->expire_pos < oldest)
		r->expire_pos = oldest;
	while (r->expire_pos < r->total) {
		uint32_t i = slot_of(r, r->expire_pos);
		struct slot *s = &r->slots[i];

		if (s->open) {
			if (now_ns < s->rec.first_ns || now_ns - s->rec.first_ns < r->window_ns)
				break;
			slot_close(r, i);
		}
		r->expire_pos++;
	}
}

void flow_ring_close_all(struct flow_ring *r)
{
	for (uint64_t a = r->total - r->count; a < r->total; a++)
		slot_close(r, slot_of(r, a));
	r->expire_pos = r->total;
}

int flow_ring_insert(struct flow_ring *r, const struct flow_record *rec)
{
	struct slot *s;

	if (!rec->ep || rec->id < r->next_id || rec->id == UINT64_MAX)
		return -EINVAL;
	s = &r->slots[slot_take(r)];
	s->rec = *rec;
	s->rec.ep = flow_ep_ref(rec->ep);
	s->rec.seq = ++r->seq;
	r->next_id = rec->id + 1;
	return 0;
}

void flow_filter_init(struct flow_filter *f)
{
	memset(f, 0, sizeof(*f));
	f->dir = -1;
	f->verdict = -1;
	f->proto = -1;
	f->port = -1;
}

bool flow_filter_match(const struct flow_filter *f, const struct flow_record *r)
{
	if (f->after_seq && r->seq <= f->after_seq)
		return false;
	if (f->upto_seq && r->seq > f->upto_seq)
		return false;
	if (f->since_ns && r->last_ns < f->since_ns)
		return false;
	if (f->dir >= 0 && r->dir != f->dir)
		return false;
	if (f->verdict >= 0 && r->verdict != f->verdict)
		return false;
	if (f->proto >= 0 && r->proto != f->proto)
		return false;
	if (f->port >= 0 && (!(r->flags & FLOW_F_PORTS) || r->dport != f->port))
		return false;
	if (f->endpoint && (!r->ep || strcmp(r->ep->id, f->endpoint) != 0))
		return false;
	if (f->ns && (!r->ep || strcmp(r->ep->ns, f->ns) != 0))
		return false;
	return true;
}

int flow_ring_query(const struct flow_ring *r, const struct flow_filter *f,
		    flow_query_fn fn, void *data)
{
	uint64_t pos = 0;

	return flow_ring_query_from(r, f, &pos, fn, data);
}

int flow_ring_query_from(const struct flow_ring *r, const struct flow_filter *f,
			 uint64_t *pos, flow_query_fn fn, void *data)
{
	uint64_t oldest = r->total - r->count, start = oldest;
	int ret;

	if (f && f->limit) {
		size_t n = 0;

		for (uint64_t a = r->total; a-- > oldest;) {
			if (!flow_filter_match(f, &r->slots[slot_of(r, a)].rec))
				continue;
			start = a;
			if (++n == f->limit)
				break;
		}
		if (n == 0) {
			*pos = r->total;
			return 0;
		}
	}
	if (*pos > start)
		start = *pos;
	for (uint64_t a = start; a < r->total; a++) {
		const struct flow_record *rec = &r->slots[slot_of(r, a)].rec;

		if (f && !flow_filter_match(f, rec))
			continue;
		ret = fn(rec, data);
		if (ret) {
			*pos = a + 1;
			return ret;
		}
	}
	*pos = r->total;
	return 0;
}

/* ---- the log file ---- */

struct flow_log {
	char *path;
	int fd;                  /* -1: reopen on next write */
	uint64_t max_size;
	unsigned max_files;
	char *buf;
	size_t buflen, bufsize;
	char *line;              /* scratch for one serialized record */
	size_t linesize;
	uint64_t size;           /* of the current file, buffered bytes included */
	struct flow_log_stats stats;
};

void flow_log_opts_init(struct flow_log_opts *o, const char *path)
{
	memset(o, 0, sizeof(*o));
	o->path = path;
	o->max_size = FLOW_LOG_DEFAULT_MAX_SIZE;
	o->max_files = FLOW_LOG_DEFAULT_MAX_FILES;
	o->buffer_size = FLOW_LOG_DEFAULT_BUFFER;
}

static int log_fail(struct flow_log *log, int r)
{
	log->stats.write_errors++;
	log->stats.last_error = r;
	return r;
}

static int log_reopen(struct flow_log *log)
{
	struct stat st;

	if (log->fd >= 0)
		return 0;
	log->fd = open(log->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (log->fd < 0)
		return -errno;
	if (fstat(log->fd, &st) < 0) {
		int r = -errno;

		close(log->fd);
		log->fd = -1;
		return r;
	}
	log->size = (uint64_t)st.st_size + log->buflen;
	return 0;
}

int flow_log_open(const struct flow_log_opts *o, struct flow_log **ret_log)
{
	struct flow_log *log;
	int r;

	if (!o || !o->path || !*o->path)
		return -EINVAL;
	log = calloc(1, sizeof(*log));
	if (!log)
		return -ENOMEM;
	log->fd = -1;
	log->max_size = o->max_size ? o->max_size : FLOW_LOG_DEFAULT_MAX_SIZE;
	log->max_files = o->max_files;
	log->bufsize = o->buffer_size ? o->buffer_size : FLOW_LOG_DEFAULT_BUFFER;
	log->linesize = 1024;
	log->path = strdup(o->path);
	log->buf = malloc(log->bufsize);
	log->line = malloc(log->linesize);
	if (!log->path || !log->buf || !log->line) {
		r = -ENOMEM;
		goto out_free;
	}
	r = log_reopen(log);
	if (r < 0)
		goto out_free;
	*ret_log = log;
	return 0;

out_free:
	flow_log_free(log);
	return r;
}

struct flow_log *flow_log_free(struct flow_log *log)
{
	if (!log)
		return NULL;
	if (log->fd >= 0) {
		(void)flow_log_flush(log);
		close(log->fd);
	}
	free(log->path);
	free(log->buf);
	free(log->line);
	free(log);
	return NULL;
}

int flow_log_flush(struct flow_log *log)
{
	size_t off = 0;
	int r = 0;

	if (log->buflen == 0)
		return 0;
	r = log_reopen(log);
	if (r < 0)
		return log_fail(log, r);
	while (off < log->buflen) {
		ssize_t w = write(log->fd, log->buf + off, log->buflen - off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			r = log_fail(log, -errno);
			break;
		}
		off += (size_t)w;
		log->stats.bytes_written += (uint64_t)w;
		log->stats.writes++;
	}
	memmove(log->buf, log->buf + off, log->buflen - off);
	log->buflen -= off;
	return r;
}

/* FILE.@n into @buf. */
static int numbered(char *buf, size_t size, const char *path, unsigned n)
{
	int len = snprintf(buf, size, "%s.%u", path, n);

	return len < 0 || (size_t)len >= size ? -ENAMETOOLONG : 0;
}

int flow_log_rotate(struct flow_log *log)
{
	char from[PATH_MAX], to[PATH_MAX];
	int r;

	r = flow_log_flush(log);
	if (r < 0)
		return r;
	if (log->max_files == 0) {
		if (unlink(log->path) < 0 && errno != ENOENT)
			return log_fail(log, -errno);
	} else {
		for (unsigned n = log->max_files; n > 1; n--) {
			if (numbered(from, sizeof(from), log->path, n - 1) < 0 ||
			    numbered(to, sizeof(to), log->path, n) < 0)
				return log_fail(log, -ENAMETOOLONG);
			if (rename(from, to) < 0 && errno != ENOENT)
				return log_fail(log, -errno);
		}
		if (numbered(to, sizeof(to), log->path, 1) < 0)
			return log_fail(log, -ENAMETOOLONG);
		if (rename(log->path, to) < 0 && errno != ENOENT)
			return log_fail(log, -errno);
	}
	if (log->fd >= 0)
		close(log->fd);
	log->fd = -1;
	log->size = 0;
	log->stats.rotations++;
	r = log_reopen(log);
	return r < 0 ? log_fail(log, r) : 0;
}

/* Serialize @rec into log->line; returns the length (without newline). */
static int log_serialize(struct flow_log *log, const struct flow_record *rec, size_t *ret_len)
{
	json_t *o = flow_record_to_json(rec);
	size_t n;

	if (!o)
		return -ENOMEM;
	n = json_dumpb(o, log->line, log->linesize, JSON_COMPACT);
	if (n >= log->linesize) {
		size_t want = n + 1 > log->linesize * 2 ? n + 1 : log->linesize * 2;
		char *p = realloc(log->line, want);

		if (!p) {
			json_decref(o);
			return -ENOMEM;
		}
		log->line = p;
		log->linesize = want;
		n = json_dumpb(o, log->line, log->linesize, JSON_COMPACT);
	}
	json_decref(o);
	if (n == 0 || n >= log->linesize)
		return -ENOMEM;
	log->line[n++] = '\n';
	*ret_len = n;
	return 0;
}

int flow_log_append(struct flow_log *log, const struct flow_record *rec)
{
	size_t n;
	int r;

	r = log_serialize(log, rec, &n);
	if (r < 0)
		goto out_lost;
	/* rotate before this line would pass the limit (an empty file takes
	 * any line) */
	if (log->size > 0 && log->size + n > log->max_size)
		(void)flow_log_rotate(log);   /* counted; keep writing where we are */
	if (n > log->bufsize - log->buflen) {
		r = flow_log_flush(log);
		if (n > log->bufsize - log->buflen) {
			if (r == 0)
				r = -EMSGSIZE;  /* longer than the whole buffer */
			goto out_lost;
		}
	}
	memcpy(log->buf + log->buflen, log->line, n);
	log->buflen += n;
	log->size += n;
	log->stats.lines++;
	return 0;

out_lost:
	log->stats.lost_lines++;
	log->stats.last_error = r;
	return r;
}

void flow_log_sink(const struct flow_record *rec, enum flow_change what, void *log)
{
	(void)what;
	(void)flow_log_append(log, rec);
}

void flow_log_stats_get(const struct flow_log *log, struct flow_log_stats *ret)
{
	*ret = log->stats;
	ret->size = log->size;
}

/* ---- reading the log back ---- */

#define TAIL_CHUNK (64u << 10)

/* Called per line, newest first; nonzero stops. */
typedef int (*line_fn)(const char *line, size_t len, void *data);

/* Lines of @fd from the end backwards, without their newline; empty lines
 * are left out. A line longer than FLOW_LOG_MAX_LINE is passed as NULL (to
 * be counted as bad). */
static int lines_backwards(int fd, line_fn fn, void *data)
{
	struct stat st;
	char *carry = NULL, *buf = NULL;
	size_t carry_len = 0;
	bool overlong = false;    /* the carried line was too long: drop it */
	off_t pos;
	int r = 0;

	if (fstat(fd, &st) < 0)
		return -errno;
	pos = st.st_size;
	while (pos > 0) {
		size_t n = pos > (off_t)TAIL_CHUNK ? TAIL_CHUNK : (size_t)pos;
		size_t total, got = 0, line_end;

		pos -= (off_t)n;
		buf = malloc(n + carry_len);
		if (!buf) {
			r = -ENOMEM;
			goto out_free;
		}
		while (got < n) {
			ssize_t k = pread(fd, buf + got, n - got, pos + (off_t)got);

			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0) {
				r = k < 0 ? -errno : -EIO;
				goto out_free;
			}
			got += (size_t)k;
		}
		if (carry_len)
			memcpy(buf + n, carry, carry_len);
		total = n + carry_len;
		free(carry);
		carry = NULL;
		carry_len = 0;
		line_end = total;
		for (size_t i = total; i-- > 0;) {
			if (buf[i] != '\n')
				continue;
			if (overlong) {
				overlong = false;
				r = fn(NULL, 0, data);
			} else if (line_end > i + 1) {
				r = fn(buf + i + 1, line_end - i - 1, data);
			}
			if (r)
				goto out_free;
			line_end = i;
		}
		if (pos == 0) {
			if (overlong)
				r = fn(NULL, 0, data);
			else if (line_end > 0)
				r = fn(buf, line_end, data);
			goto out_free;
		}
		if (line_end > FLOW_LOG_MAX_LINE || overlong) {
			overlong = true;
		} else if (line_end > 0) {
			carry = malloc(line_end);
			if (!carry) {
				r = -ENOMEM;
				goto out_free;
			}
			memcpy(carry, buf, line_end);
			carry_len = line_end;
		}
		free(buf);
		buf = NULL;
	}

out_free:
	free(buf);
	free(carry);
	return r < 0 ? r : 0;
}

/* Reading backwards, the newest line of a record comes first. A record's
 * lines are its creation (count 1), written in id order, and at most one
 * final line (count > 1) written later. So once a creation line with an id
 * at or below (highest id - wanted) has been read, every record that can
 * be among the newest @want has been seen: stop there. */
struct tail_state {
	struct flow_record *recs;   /* seq holds the order read, for dedup */
	size_t n, cap, want;
	uint64_t max_id;
	size_t skipped;
	bool done;               /* nothing older is needed */
	int err;
};

static int tail_line(const char *line, size_t len, void *data)
{
	struct tail_state *t = data;
	struct flow_record rec;
	json_t *o;
	int r;

	if (!line) {
		t->skipped++;     /* overlong */
		return 0;
	}
	while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
		len--;
	if (len == 0)
		return 0;
	o = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
	if (!o) {
		t->skipped++;
		return 0;
	}
	r = flow_record_from_json(o, &rec);
	json_decref(o);
	if (r == -ENOMEM) {
		t->err = r;
		return 1;
	}
	if (r < 0) {
		t->skipped++;
		return 0;
	}
	if (rec.id > t->max_id)
		t->max_id = rec.id;
	if (t->max_id >= t->want && rec.id <= t->max_id - t->want) {
		/* too old to be kept */
		flow_record_release(&rec);
		/* a creation line: every newer record has been seen */
		t->done = rec.count == 1;
		return t->done;
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct flow_record *p = realloc(t->recs, cap * sizeof(*p));

		if (!p) {
			flow_record_release(&rec);
			t->err = -ENOMEM;
			return 1;
		}
		t->recs = p;
		t->cap = cap;
	}
	rec.seq = t->n;
	t->recs[t->n++] = rec;
	return 0;
}

/* By id, and for one id the line read first (the newest) first. */
static int rec_cmp_id(const void *a, const void *b)
{
	const struct flow_record *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int flow_log_load_tail(const char *path, unsigned max_files, struct flow_ring *ring,
		       size_t *ret_loaded, size_t *ret_skipped)
{
	struct tail_state t = { 0 };
	char name[PATH_MAX];
	size_t n = 0, first;
	int r = 0;

	if (ret_loaded)
		*ret_loaded = 0;
	if (ret_skipped)
		*ret_skipped = 0;
	if (ring->count != 0)
		return -EBUSY;
	t.want = ring->cap;
	for (unsigned f = 0; f <= max_files && !t.done; f++) {
		int fd;

		if (f == 0)
			snprintf(name, sizeof(name), "%s", path);
		else if (numbered(name, sizeof(name), path, f) < 0)
			break;
		fd = open(name, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			r = -errno;
			goto out_free;
		}
		r = lines_backwards(fd, tail_line, &t);
		close(fd);
		if (r < 0)
			goto out_free;
		if (t.err < 0) {
			r = t.err;
			goto out_free;
		}
	}
	/* dedup: keep the newest line of each id, in the front */
	if (t.n)
		qsort(t.recs, t.n, sizeof(*t.recs), rec_cmp_id);
	for (size_t i = 0; i < t.n; i++) {
		if (n > 0 && t.recs[n - 1].id == t.recs[i].id) {
			flow_record_release(&t.recs[i]);
			continue;
		}
		t.recs[n++] = t.recs[i];
	}
	t.n = n;
	first = n > t.want ? n - t.want : 0;
	for (size_t i = first; i < n; i++) {
		r = flow_ring_insert(ring, &t.recs[i]);
		if (r < 0)
			goto out_free;
	}
	/* ids of lines we did not keep are taken too */
	if (t.max_id >= ring->next_id)
		ring->next_id = t.max_id + 1;
	if (ret_loaded)
		*ret_loaded = n - first;
	if (ret_skipped)
		*ret_skipped = t.skipped;

out_free:
	for (size_t i = 0; i < t.n; i++)
		flow_record_release(&t.recs[i]);
	free(t.recs);
	return r;
}
