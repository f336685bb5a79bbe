/* render_nl: plan -> libnftnl objects -> netlink messages in a batch: the
 * `inet mseg` table of docs/ruleset.md, built expression by expression.
 *
 * What nft 1.0.6 sends for the same text is the reference (checked with
 * `nft --debug=netlink,mnl`), so that `nft list table inet mseg` prints our
 * table exactly as it prints the text renderer's (table_text.c):
 *  - set key types are nft datatype ids; a concatenation folds them
 *    (id << 6 | next), e.g. ipv4_addr . inet_proto . inet_service = 0x730d;
 *  - each field of a concatenation takes a 4-byte register slot: an IPv4
 *    address 4 bytes, the protocol 1 byte + 3 zero bytes, the port 2 bytes
 *    big-endian + 2 zero bytes;
 *  - concatenated interval sets (pipapo) carry flags interval|concat, the
 *    field lengths (NFTA_SET_DESC_CONCAT), and each element as KEY (low end of
 *    every field) and KEY_END (high end);
 *  - a plain interval set (one field, an address or a slot's port: rbtree)
 *    cannot take KEY_END:
 *    an interval is a start element at lo and an end element (flag
 *    INTERVAL_END) at hi + 1; an interval reaching the top address has no
 *    end element, and its start carries nft's "open interval" user data;
 *  - registers: a field at 32-bit word k sits in NFT_REG_1 + k/4 when k is
 *    a multiple of 4, else in NFT_REG32_00 + k (what nft and the kernel's
 *    dumps use).
 * nft also emits a no-op `byteorder` (1 byte, size 2) on `meta l4proto` for
 * interval lookups; we do not: the kernel does nothing with it and `nft
 * list` prints the rule the same. */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/x_tables.h>
#include <linux/netfilter/xt_NFQUEUE.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "mseg/compile/render_text.h"
#include "kernel/batch.h"
#include "kernel/render_nl.h"

#define LIMIT_NAME "flood"
#define ND_SET_NAME "__set%d"
/* element list nest: its length field is 16 bits */
#define ELEM_NEST_MAX (UINT16_MAX - 256u)
/* an element's attributes at most: nest, key and key end (each nested
 * value), flags, user data */
#define ELEM_MAX_BYTES 128u

/* ---- set layout ---- */

_Static_assert(NL_SLOTS == 2, "the set names below spell out two slots");

static const char *const set_names[MSEG_DIR_COUNT][NL_SETS_PER_DIR] = {
	{ "in4_port", "in4_port_iv", "in4_range0", "in4_range0_ports", "in4_range1",
	  "in4_range1_ports", "in4_proto", "in4_proto_iv", "in4_any", "in4_any_iv",
	  "in6_port", "in6_port_iv", "in6_range0", "in6_range0_ports", "in6_range1",
	  "in6_range1_ports", "in6_proto", "in6_proto_iv", "in6_any", "in6_any_iv" },
	{ "out4_port", "out4_port_iv", "out4_range0", "out4_range0_ports", "out4_range1",
	  "out4_range1_ports", "out4_proto", "out4_proto_iv", "out4_any", "out4_any_iv",
	  "out6_port", "out6_port_iv", "out6_range0", "out6_range0_ports", "out6_range1",
	  "out6_range1_ports", "out6_proto", "out6_proto_iv", "out6_any", "out6_any_iv" },
};

/* Position in a family's sets: port, port_iv, the slots' pairs, then
 * proto, proto_iv, any, any_iv (the slot rules come right after the
 * port_iv lookup). */
static size_t shape_pos(enum entry_shape shape)
{
	return shape <= SHAPE_PORT_IV ? (size_t)shape : (size_t)shape + 2 * NL_SLOTS;
}

void nl_set_spec_get(enum mseg_dir dir, size_t i, struct nl_set_spec *ret)
{
	bool v6 = i >= NL_SETS_PER_FAMILY;
	size_t pos = i % NL_SETS_PER_FAMILY;
	uint32_t atype = v6 ? NFT_TYPE_IP6ADDR : NFT_TYPE_IPADDR;
	uint8_t alen = v6 ? 16 : 4;
	enum entry_shape shape;

	memset(ret, 0, sizeof(*ret));
	ret->name = set_names[dir][i];
	ret->dir = dir;
	ret->family = v6 ? AF_INET6 : AF_INET;
	if (pos >= 2 && pos < 2 + 2 * NL_SLOTS) {
		ret->slot = (unsigned)(pos - 2) / 2;
		ret->shape = SHAPE_PORT_IV;   /* what its elements come from */
		if ((pos - 2) % 2 == 0) {
			/* ipv4_addr . inet_proto (hash) */
			ret->kind = NL_SET_SLOT_ADDR;
			ret->field_len[0] = alen;
			ret->field_len[1] = 1;
			ret->n_fields = 2;
			ret->key_type = atype << NFT_TYPE_BITS | NFT_TYPE_INET_PROTOCOL;
			ret->key_len = alen + 4u;
			ret->key_byteorder = NFT_BYTEORDER_INVALID;
		} else {
			/* inet_service; flags interval (rbtree) */
			ret->kind = NL_SET_SLOT_PORTS;
			ret->field_len[0] = 2;
			ret->n_fields = 1;
			ret->key_type = NFT_TYPE_INET_SERVICE;
			ret->key_len = 2;
			ret->key_byteorder = NFT_BYTEORDER_BIG_ENDIAN;
			ret->flags = NFT_SET_INTERVAL;
			ret->rbtree = true;
		}
		return;
	}
	shape = pos < 2 ? (enum entry_shape)pos : (enum entry_shape)(pos - 2 * NL_SLOTS);
	ret->kind = NL_SET_SHAPE;
	ret->shape = shape;
	ret->field_len[0] = alen;
	ret->key_type = atype;
	ret->n_fields = 1;
	switch (shape) {
	case SHAPE_PORT:
	case SHAPE_PORT_IV:
		ret->field_len[1] = 1;
		ret->field_len[2] = 2;
		ret->n_fields = 3;
		ret->key_type = ((atype << NFT_TYPE_BITS | NFT_TYPE_INET_PROTOCOL) << NFT_TYPE_BITS) |
				NFT_TYPE_INET_SERVICE;
		break;
	case SHAPE_PROTO:
	case SHAPE_PROTO_IV:
		ret->field_len[1] = 1;
		ret->n_fields = 2;
		ret->key_type = atype << NFT_TYPE_BITS | NFT_TYPE_INET_PROTOCOL;
		break;
	case SHAPE_ANY:
	case SHAPE_ANY_IV:
		break;
	}
	ret->key_len = alen + 4u * (ret->n_fields - 1u);
	ret->key_byteorder = ret->n_fields > 1 ? NFT_BYTEORDER_INVALID : NFT_BYTEORDER_BIG_ENDIAN;
	if (shape_is_interval(shape)) {
		ret->flags = NFT_SET_INTERVAL;
		if (ret->n_fields > 1)
			ret->flags |= NFT_SET_CONCAT;
		else
			ret->rbtree = true;
	}
}

static const char *const seen_names[MSEG_DIR_COUNT][NL_SEEN_SETS_PER_DIR] = {
	{ "in4_seen_port", "in4_seen_proto", "in6_seen_port", "in6_seen_proto" },
	{ "out4_seen_port", "out4_seen_proto", "out6_seen_port", "out6_seen_proto" },
};

void nl_seen_spec_get(enum mseg_dir dir, size_t i, struct nl_set_spec *ret)
{
	int family = i >= 2 ? AF_INET6 : AF_INET;
	enum entry_shape shape = i % 2 ? SHAPE_PROTO : SHAPE_PORT;

	nl_set_spec_get(dir, (size_t)nl_set_index(family, shape), ret);
	ret->name = seen_names[dir][i];
	ret->flags = NFT_SET_TIMEOUT | NFT_SET_EVAL;
	ret->seen = true;
}

bool nl_seen_spec_find(const char *name, struct nl_set_spec *ret)
{
	for (int d = 0; d < MSEG_DIR_COUNT; d++)
		for (size_t i = 0; i < NL_SEEN_SETS_PER_DIR; i++)
			if (strcmp(seen_names[d][i], name) == 0) {
				nl_seen_spec_get((enum mseg_dir)d, i, ret);
				return true;
			}
	return false;
}

int nl_set_index(int family, enum entry_shape shape)
{
	if ((unsigned)shape >= SHAPE_COUNT)
		return -1;
	if (family == AF_INET)
		return (int)shape_pos(shape);
	if (family == AF_INET6)
		return NL_SETS_PER_FAMILY + (int)shape_pos(shape);
	return -1;
}

int nl_slot_set_index(int family, unsigned slot, bool ports)
{
	int pos = 2 + 2 * (int)slot + (ports ? 1 : 0);

	if (slot >= NL_SLOTS)
		return -1;
	if (family == AF_INET)
		return pos;
	if (family == AF_INET6)
		return NL_SETS_PER_FAMILY + pos;
	return -1;
}

bool nl_set_spec_find(const char *name, struct nl_set_spec *ret)
{
	for (int d = 0; d < MSEG_DIR_COUNT; d++)
		for (size_t i = 0; i < NL_SETS_PER_DIR; i++)
			if (strcmp(set_names[d][i], name) == 0) {
				nl_set_spec_get((enum mseg_dir)d, i, ret);
				return true;
			}
	return false;
}

/* ---- element keys ---- */

size_t nl_entry_key(const struct nl_set_spec *s, const struct mseg_entry *e, bool hi,
		    uint8_t *buf)
{
	uint8_t alen = s->field_len[0];
	uint16_t port = hi ? e->port_hi : e->port_lo;

	memset(buf, 0, s->key_len);
	if (s->kind == NL_SET_SLOT_PORTS) {
		buf[0] = (uint8_t)(port >> 8);          /* big-endian */
		buf[1] = (uint8_t)port;
		return s->key_len;
	}
	memcpy(buf, hi ? e->hi.bytes : e->lo.bytes, alen);
	if (s->n_fields >= 2)
		buf[alen] = e->proto;                   /* 1 byte, then padding */
	if (s->n_fields >= 3) {
		buf[alen + 4] = (uint8_t)(port >> 8);   /* big-endian, then padding */
		buf[alen + 5] = (uint8_t)port;
	}
	return s->key_len;
}

/* @a + 1 over @n big-endian bytes; false when it wraps (a was all ones). */
static bool addr_inc(uint8_t *a, size_t n)
{
	for (size_t i = n; i-- > 0;)
		if (++a[i] != 0)
			return true;
	return false;
}

size_t nl_entry_elems(const struct nl_set_spec *s, const struct mseg_entry *e,
		      struct nl_elem out[2])
{
	if (e->lo.family != s->family || e->hi.family != s->family)
		return 0;
	switch (s->kind) {
	case NL_SET_SHAPE:
		if (entry_shape(e) != s->shape)
			return 0;
		break;
	case NL_SET_SLOT_ADDR:
		if (memcmp(e->lo.bytes, e->hi.bytes, sizeof(e->lo.bytes)) != 0 ||
		    !proto_has_ports(e->proto))
			return 0;
		break;
	case NL_SET_SLOT_PORTS:
		if (e->port_lo > e->port_hi)
			return 0;
		break;
	}
	memset(&out[0], 0, sizeof(out[0]));
	out[0].key_len = (uint32_t)nl_entry_key(s, e, false, out[0].key);
	if (!(s->flags & NFT_SET_INTERVAL))
		return 1;
	if (!s->rbtree) {
		nl_entry_key(s, e, true, out[0].key_end);
		out[0].has_key_end = true;
		return 1;
	}
	memset(&out[1], 0, sizeof(out[1]));
	out[1].key_len = (uint32_t)nl_entry_key(s, e, true, out[1].key);
	if (!addr_inc(out[1].key, s->field_len[0])) {
		out[0].open = true;
		return 1;
	}
	out[1].flags = NFT_SET_ELEM_INTERVAL_END;
	return 2;
}

const char *nl_elem_text(const struct nl_set_spec *s, const struct mseg_entry *e, char *buf,
			 size_t size)
{
	char addr[INET6_ADDRSTRLEN], proto[16];

	switch (s->kind) {
	case NL_SET_SHAPE:
		return render_text_entry(e, buf, size);
	case NL_SET_SLOT_ADDR:
		if (!inet_ntop(e->lo.family == AF_INET6 ? AF_INET6 : AF_INET, e->lo.bytes, addr,
			       sizeof(addr)))
			snprintf(addr, sizeof(addr), "?");
		snprintf(buf, size, "%s . %s", addr, render_text_proto(e->proto, proto, sizeof(proto)));
		return buf;
	case NL_SET_SLOT_PORTS:
		if (e->port_lo == e->port_hi)
			snprintf(buf, size, "%u", e->port_lo);
		else
			snprintf(buf, size, "%u-%u", e->port_lo, e->port_hi);
		return buf;
	}
	return buf;
}

/* ---- expressions: one helper each ---- */

/* A rule under construction; the first failure sticks. */
struct rb {
	struct nftnl_rule *r;
	int error;
};

static struct nftnl_expr *rb_expr(struct rb *rb, const char *name)
{
	struct nftnl_expr *e;

	if (rb->error)
		return NULL;
	e = nftnl_expr_alloc(name);
	if (!e)
		rb->error = -ENOMEM;
	return e;
}

static void rb_add(struct rb *rb, struct nftnl_expr *e)
{
	nftnl_rule_add_expr(rb->r, e);
}

/* Register of the 32-bit word @k of a concatenation (see the top). */
static uint32_t reg_word(unsigned k)
{
	return k % 4 == 0 ? NFT_REG_1 + k / 4 : NFT_REG32_00 + k;
}

/* meta load KEY => reg DREG      (meta nfproto, meta l4proto, iif, oif) */
static void x_meta_load(struct rb *rb, enum nft_meta_keys key, uint32_t dreg)
{
	struct nftnl_expr *e = rb_expr(rb, "meta");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
	rb_add(rb, e);
}

/* ct load KEY => reg DREG        (ct state) */
static void x_ct_load(struct rb *rb, enum nft_ct_keys key, uint32_t dreg)
{
	struct nftnl_expr *e = rb_expr(rb, "ct");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, dreg);
	rb_add(rb, e);
}

/* payload load LEN @ BASE header + OFFSET => reg DREG   (ip saddr, th dport) */
static void x_payload(struct rb *rb, enum nft_payload_bases base, uint32_t offset,
		      uint32_t len, uint32_t dreg)
{
	struct nftnl_expr *e = rb_expr(rb, "payload");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
	rb_add(rb, e);
}

/* cmp OP reg SREG DATA           (== / != a constant of @len bytes) */
static void x_cmp(struct rb *rb, enum nft_cmp_ops op, uint32_t sreg, const void *data,
		  uint32_t len)
{
	struct nftnl_expr *e = rb_expr(rb, "cmp");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, sreg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
	if (nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len) < 0) {
		nftnl_expr_free(e);
		rb->error = -EINVAL;
		return;
	}
	rb_add(rb, e);
}

/* bitwise reg R = (reg R & MASK) ^ 0    (a 4-byte flag test) */
static void x_bitwise_and(struct rb *rb, uint32_t reg, uint32_t mask)
{
	struct nftnl_expr *e = rb_expr(rb, "bitwise");
	uint32_t zero = 0;

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, reg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, reg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, sizeof(mask));
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, sizeof(mask));
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &zero, sizeof(zero));
	rb_add(rb, e);
}

/* lookup reg SREG set NAME       (@NAME; by id within the same batch) */
static void x_lookup_flags(struct rb *rb, uint32_t sreg, const char *set, uint32_t set_id,
			   uint32_t flags);

static void x_lookup(struct rb *rb, uint32_t sreg, const char *set, uint32_t set_id)
{
	x_lookup_flags(rb, sreg, set, set_id, 0);
}

/* lookup reg SREG set NAME [0x1]  (!= @NAME with NFT_LOOKUP_F_INV) */
static void x_lookup_flags(struct rb *rb, uint32_t sreg, const char *set, uint32_t set_id,
			   uint32_t flags)
{
	struct nftnl_expr *e = rb_expr(rb, "lookup");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, sreg);
	if (nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set) < 0) {
		nftnl_expr_free(e);
		rb->error = -ENOMEM;
		return;
	}
	if (set_id)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set_id);
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, flags);   /* the kernel dumps it */
	rb_add(rb, e);
}

/* dynset update reg_key SREG set NAME   (update @NAME { key }: the set's own
 * timeout and counter apply) */
static void x_dynset_update(struct rb *rb, uint32_t sreg, const char *set, uint32_t set_id)
{
	struct nftnl_expr *e = rb_expr(rb, "dynset");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SREG_KEY, sreg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
	nftnl_expr_set_u64(e, NFTNL_EXPR_DYNSET_TIMEOUT, 0);   /* the set's; the kernel dumps it */
	if (nftnl_expr_set_str(e, NFTNL_EXPR_DYNSET_SET_NAME, set) < 0) {
		nftnl_expr_free(e);
		rb->error = -ENOMEM;
		return;
	}
	if (set_id)
		nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SET_ID, set_id);
	rb_add(rb, e);
}

/* accept | drop                  (immediate reg 0 VERDICT) */
static void x_verdict(struct rb *rb, int verdict)
{
	struct nftnl_expr *e = rb_expr(rb, "immediate");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	rb_add(rb, e);
}

/* goto CHAIN                    (immediate reg 0 goto CHAIN) */
static void x_goto(struct rb *rb, const char *chain)
{
	struct nftnl_expr *e = rb_expr(rb, "immediate");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)NFT_GOTO);
	if (nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain) < 0) {
		nftnl_expr_free(e);
		rb->error = -ENOMEM;
		return;
	}
	rb_add(rb, e);
}

/* limit name "NAME" | counter name "NAME"   (objref type T name NAME) */
static void x_objref(struct rb *rb, uint32_t type, const char *name)
{
	struct nftnl_expr *e = rb_expr(rb, "objref");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_OBJREF_IMM_TYPE, type);
	if (nftnl_expr_set_str(e, NFTNL_EXPR_OBJREF_IMM_NAME, name) < 0) {
		nftnl_expr_free(e);
		rb->error = -ENOMEM;
		return;
	}
	rb_add(rb, e);
}

/* queue num N [bypass]           (native nft_queue) */
static void x_queue(struct rb *rb, uint16_t num, bool bypass)
{
	struct nftnl_expr *e = rb_expr(rb, "queue");

	if (!e)
		return;
	nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_NUM, num);
	nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_TOTAL, 1);
	if (bypass)
		nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_FLAGS, NFT_QUEUE_FLAG_BYPASS);
	rb_add(rb, e);
}

/* queue num N [bypass]           (xtables NFQUEUE v3 through nft_compat: what
 * `iptables-nft -j NFQUEUE` sends; `nft list` prints it as the line above) */
static void x_xt_nfqueue(struct rb *rb, uint16_t num, bool bypass)
{
	struct nftnl_expr *e = rb_expr(rb, "target");
	struct xt_NFQ_info_v3 *info;
	size_t len = XT_ALIGN(sizeof(*info));

	if (!e)
		return;
	/* libnftnl takes the buffer and sends XT_ALIGN(len) bytes of it */
	info = calloc(1, len);
	if (!info) {
		nftnl_expr_free(e);
		rb->error = -ENOMEM;
		return;
	}
	info->queuenum = num;
	info->queues_total = 1;
	info->flags = bypass ? NFQ_FLAG_BYPASS : 0;
	if (nftnl_expr_set_str(e, NFTNL_EXPR_TG_NAME, "NFQUEUE") < 0) {
		free(info);
		nftnl_expr_free(e);
		rb->error = -ENOMEM;
		return;
	}
	nftnl_expr_set_u32(e, NFTNL_EXPR_TG_REV, 3);
	nftnl_expr_set(e, NFTNL_EXPR_TG_INFO, info, (uint32_t)len);
	rb_add(rb, e);
}

/* log group N                    (NFLOG to msegd) */
static void x_log_group(struct rb *rb, uint16_t group)
{
	struct nftnl_expr *e = rb_expr(rb, "log");

	if (!e)
		return;
	nftnl_expr_set_u16(e, NFTNL_EXPR_LOG_GROUP, group);
	rb_add(rb, e);
}

/* ---- rules ---- */

static const char *chain_name(enum mseg_dir dir)
{
	return dir == MSEG_DIR_INGRESS ? "ingress" : "egress";
}

static int rb_init(struct rb *rb, const char *table, const char *chain)
{
	rb->error = 0;
	rb->r = nftnl_rule_alloc();
	if (!rb->r)
		return -ENOMEM;
	nftnl_rule_set_u32(rb->r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	if (nftnl_rule_set_str(rb->r, NFTNL_RULE_TABLE, table) < 0 ||
	    nftnl_rule_set_str(rb->r, NFTNL_RULE_CHAIN, chain) < 0)
		rb->error = -ENOMEM;
	return 0;
}

/* ct state established,related accept */
static void rule_ct_state(struct rb *rb, uint32_t states, int verdict)
{
	uint32_t zero = 0;

	x_ct_load(rb, NFT_CT_STATE, NFT_REG_1);
	x_bitwise_and(rb, NFT_REG_1, states);
	x_cmp(rb, NFT_CMP_NEQ, NFT_REG_1, &zero, sizeof(zero));
	x_verdict(rb, verdict);
}

/* ct state invalid counter name "in_invalid" drop: conntrack's refusals
 * never reach msegd, so they are counted here instead */
static void rule_invalid(struct rb *rb, enum mseg_dir dir)
{
	uint32_t zero = 0;

	x_ct_load(rb, NFT_CT_STATE, NFT_REG_1);
	x_bitwise_and(rb, NFT_REG_1, NF_CT_STATE_INVALID_BIT);
	x_cmp(rb, NFT_CMP_NEQ, NFT_REG_1, &zero, sizeof(zero));
	x_objref(rb, NFT_OBJECT_COUNTER, dir == MSEG_DIR_INGRESS ? "in_invalid" : "out_invalid");
	x_verdict(rb, NF_DROP);
}

/* iif "lo" accept   |   oif "lo" accept   (lo is ifindex 1 in every netns) */
static void rule_loopback(struct rb *rb, enum mseg_dir dir)
{
	uint32_t lo = 1;

	x_meta_load(rb, dir == MSEG_DIR_INGRESS ? NFT_META_IIF : NFT_META_OIF, NFT_REG_1);
	x_cmp(rb, NFT_CMP_EQ, NFT_REG_1, &lo, sizeof(lo));
	x_verdict(rb, NF_ACCEPT);
}

/* meta nfproto ipv4|ipv6        (the dependency nft adds in an inet table) */
static void match_nfproto(struct rb *rb, uint8_t nfproto)
{
	x_meta_load(rb, NFT_META_NFPROTO, NFT_REG_1);
	x_cmp(rb, NFT_CMP_EQ, NFT_REG_1, &nfproto, sizeof(nfproto));
}

/* icmpv6 type { mld-listener-query, mld-listener-report, mld-listener-done,
 *               nd-router-solicit, nd-router-advert, nd-neighbor-solicit,
 *               nd-neighbor-advert, nd-redirect, mld2-listener-report } accept */
static void rule_nd(struct rb *rb, uint32_t nd_set_id)
{
	uint8_t icmpv6 = IPPROTO_ICMPV6;

	match_nfproto(rb, NFPROTO_IPV6);
	x_meta_load(rb, NFT_META_L4PROTO, NFT_REG_1);
	x_cmp(rb, NFT_CMP_EQ, NFT_REG_1, &icmpv6, sizeof(icmpv6));
	x_payload(rb, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1);
	x_lookup(rb, NFT_REG_1, ND_SET_NAME, nd_set_id);
	x_verdict(rb, NF_ACCEPT);
}

/* ip saddr . meta l4proto . th dport @in4_port goto in4_seen
 * ip saddr . meta l4proto @in4_proto goto in4_seen
 * ip saddr @in4_any goto in4_seen
 * (ip6, daddr and the out* sets alike; the seen chain accepts) */
static void rule_set_lookup(struct rb *rb, const struct nl_set_spec *s)
{
	bool v6 = s->family == AF_INET6;
	bool in = s->dir == MSEG_DIR_INGRESS;
	uint32_t alen = s->field_len[0];
	/* IPv4: saddr at 12, daddr at 16; IPv6: saddr at 8, daddr at 24 */
	uint32_t off = v6 ? (in ? 8 : 24) : (in ? 12 : 16);

	match_nfproto(rb, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
	x_payload(rb, NFT_PAYLOAD_NETWORK_HEADER, off, alen, reg_word(0));
	if (s->n_fields >= 2)
		x_meta_load(rb, NFT_META_L4PROTO, reg_word(alen / 4));
	if (s->n_fields >= 3)
		x_payload(rb, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, reg_word(alen / 4 + 1));
	x_lookup(rb, reg_word(0), s->name, 0);
	x_goto(rb, nl_seen_chain_name(s->dir, s->family));
}

/* ip saddr . meta l4proto @in4_range0 th dport @in4_range0_ports goto in4_seen
 * (ip6, daddr and the out* sets alike): the address and protocol first,
 * then the port; @a is the slot's address set, @p its port set */
static void rule_slot_lookup(struct rb *rb, const struct nl_set_spec *a,
			     const struct nl_set_spec *p)
{
	bool v6 = a->family == AF_INET6;
	bool in = a->dir == MSEG_DIR_INGRESS;
	uint32_t alen = a->field_len[0];
	uint32_t off = v6 ? (in ? 8 : 24) : (in ? 12 : 16);

	match_nfproto(rb, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
	x_payload(rb, NFT_PAYLOAD_NETWORK_HEADER, off, alen, reg_word(0));
	x_meta_load(rb, NFT_META_L4PROTO, reg_word(alen / 4));
	x_lookup(rb, reg_word(0), a->name, 0);
	x_payload(rb, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1);
	x_lookup(rb, NFT_REG_1, p->name, 0);
	x_goto(rb, nl_seen_chain_name(a->dir, a->family));
}

/* meta l4proto { tcp, udp, sctp, udplite } update @in4_seen_port { ip saddr . meta l4proto . th dport }
 * meta l4proto != { tcp, udp, sctp, udplite } update @in4_seen_proto { ip saddr . meta l4proto }
 * (ip6, daddr and the out* sets alike), in the seen chain. No verdict: a
 * full set makes the update fail, which only ends this rule; the chain's
 * last rule accepts the packet all the same. */
static void rule_seen(struct rb *rb, const struct nl_set_spec *s, uint32_t l4_set_id)
{
	bool v6 = s->family == AF_INET6;
	bool in = s->dir == MSEG_DIR_INGRESS;
	uint32_t alen = s->field_len[0];
	uint32_t off = v6 ? (in ? 8 : 24) : (in ? 12 : 16);

	match_nfproto(rb, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
	x_meta_load(rb, NFT_META_L4PROTO, NFT_REG_1);
	x_lookup_flags(rb, NFT_REG_1, ND_SET_NAME, l4_set_id,
		       s->n_fields >= 3 ? 0 : NFT_LOOKUP_F_INV);
	x_payload(rb, NFT_PAYLOAD_NETWORK_HEADER, off, alen, reg_word(0));
	x_meta_load(rb, NFT_META_L4PROTO, reg_word(alen / 4));
	if (s->n_fields >= 3)
		x_payload(rb, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, reg_word(alen / 4 + 1));
	x_dynset_update(rb, reg_word(0), s->name, 0);
}

/* limit name "flood" counter name "in_overlimit" drop|accept */
static void rule_overlimit(struct rb *rb, enum mseg_dir dir, bool audit)
{
	x_objref(rb, NFT_OBJECT_LIMIT, LIMIT_NAME);
	x_objref(rb, NFT_OBJECT_COUNTER,
		 dir == MSEG_DIR_INGRESS ? "in_overlimit" : "out_overlimit");
	x_verdict(rb, audit ? NF_ACCEPT : NF_DROP);
}

/* queue num N [bypass]   |   log group N drop|accept */
static void rule_queue_step(struct rb *rb, const struct table_opts *opts, bool audit)
{
	switch (opts->queue) {
	case QUEUE_NATIVE:
		x_queue(rb, opts->queue_num, audit);
		break;
	case QUEUE_XT:
		x_xt_nfqueue(rb, opts->queue_num, audit);
		break;
	case QUEUE_NFLOG:
		x_log_group(rb, opts->queue_num);
		x_verdict(rb, audit ? NF_ACCEPT : NF_DROP);
		break;
	}
}

static int chain_rules(enum mseg_dir dir, enum mseg_mode mode, const struct table_opts *opts,
		       uint32_t nd_set_id, struct nftnl_rule **rules)
{
	bool audit = mode == MSEG_MODE_AUDIT;
	struct nl_set_spec spec, ports;
	size_t n = 0, set = 0;
	struct rb rb;
	int r = 0;

	for (size_t i = 0; i < NL_RULES_PER_CHAIN; i++) {
		r = rb_init(&rb, TABLE_NAME, chain_name(dir));
		if (r < 0)
			goto out_free;
		rules[n++] = rb.r;
		if (i == 0)
			rule_ct_state(&rb, NF_CT_STATE_BIT(IP_CT_ESTABLISHED) |
						   NF_CT_STATE_BIT(IP_CT_RELATED),
				      NF_ACCEPT);
		else if (i == 1)
			rule_invalid(&rb, dir);
		else if (i == 2)
			rule_loopback(&rb, dir);
		else if (i == 3)
			rule_nd(&rb, nd_set_id);
		else if (i < 4 + NL_LOOKUPS_PER_DIR) {
			/* one rule per set in table order, a slot's two sets in one */
			nl_set_spec_get(dir, set++, &spec);
			if (spec.kind == NL_SET_SLOT_ADDR) {
				nl_set_spec_get(dir, set++, &ports);
				rule_slot_lookup(&rb, &spec, &ports);
			} else {
				rule_set_lookup(&rb, &spec);
			}
		} else if (i == 4 + NL_LOOKUPS_PER_DIR)
			rule_overlimit(&rb, dir, audit);
		else
			rule_queue_step(&rb, opts, audit);
		if (rb.error) {
			r = rb.error;
			goto out_free;
		}
	}
	return 0;

out_free:
	while (n)
		nftnl_rule_free(rules[--n]);
	return r;
}

int render_nl_chain_rules(enum mseg_dir dir, enum mseg_mode mode, const struct table_opts *opts,
			  struct nftnl_rule **ret_rules)
{
	struct table_opts o;

	table_opts_normalize(&o, opts);
	return chain_rules(dir, mode, &o, 0, ret_rules);
}

const char *nl_seen_chain_name(enum mseg_dir dir, int family)
{
	static const char *const names[MSEG_DIR_COUNT][2] = {
		{ "in4_seen", "in6_seen" },
		{ "out4_seen", "out6_seen" },
	};

	return names[dir][family == AF_INET6];
}

/* @port_set_id, @proto_set_id: the protocol sets of the two update rules
 * (0 when not in a batch) */
static int seen_chain_rules(enum mseg_dir dir, int family, uint32_t port_set_id,
			    uint32_t proto_set_id, struct nftnl_rule **rules)
{
	const char *chain = nl_seen_chain_name(dir, family);
	size_t base = family == AF_INET6 ? 2 : 0, n = 0;
	struct nl_set_spec spec;
	struct rb rb;
	int r = 0;

	for (size_t i = 0; i < NL_RULES_PER_SEEN_CHAIN; i++) {
		r = rb_init(&rb, TABLE_NAME, chain);
		if (r < 0)
			goto out_free;
		rules[n++] = rb.r;
		if (i < 2) {
			nl_seen_spec_get(dir, base + i, &spec);
			rule_seen(&rb, &spec, i == 0 ? port_set_id : proto_set_id);
		} else {
			x_verdict(&rb, NF_ACCEPT);
		}
		if (rb.error) {
			r = rb.error;
			goto out_free;
		}
	}
	return 0;

out_free:
	while (n)
		nftnl_rule_free(rules[--n]);
	return r;
}

int render_nl_seen_chain_rules(enum mseg_dir dir, int family, struct nftnl_rule **ret_rules)
{
	return seen_chain_rules(dir, family, 0, 0, ret_rules);
}

/* ---- messages ---- */

/* add table inet NAME  |  delete table inet NAME */
static int msg_table(struct nl_batch *b, uint16_t type, const char *name)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;

	if (!t)
		return -ENOMEM;
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	if (nftnl_table_set_str(t, NFTNL_TABLE_NAME, name) < 0) {
		nftnl_table_free(t);
		return -ENOMEM;
	}
	if (type == NFT_MSG_NEWTABLE)
		nftnl_table_set_u32(t, NFTNL_TABLE_FLAGS, 0);   /* no owner flag */
	nlh = nl_batch_msg_start(b, type, NFPROTO_INET,
				 type == NFT_MSG_NEWTABLE ? NLM_F_CREATE : 0);
	if (nlh)
		nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	return nl_batch_msg_end(b, NL_MSG_TABLE,
				type == NFT_MSG_NEWTABLE ? "add table" : "delete table", name);
}

static int msg_obj(struct nl_batch *b, struct nftnl_obj *o, const char *name)
{
	struct nlmsghdr *nlh;

	nftnl_obj_set_u32(o, NFTNL_OBJ_FAMILY, NFPROTO_INET);
	nftnl_obj_set_str(o, NFTNL_OBJ_TABLE, TABLE_NAME);
	nftnl_obj_set_str(o, NFTNL_OBJ_NAME, name);
	if (!nftnl_obj_is_set(o, NFTNL_OBJ_TABLE) || !nftnl_obj_is_set(o, NFTNL_OBJ_NAME))
		return -ENOMEM;
	nlh = nl_batch_msg_start(b, NFT_MSG_NEWOBJ, NFPROTO_INET, NLM_F_CREATE);
	if (nlh)
		nftnl_obj_nlmsg_build_payload(nlh, o);
	return nl_batch_msg_end(b, NL_MSG_OBJ, "add object", name);
}

/* limit flood { rate over R/second burst B packets } */
static int msg_limit(struct nl_batch *b, const struct table_opts *opts)
{
	struct nftnl_obj *o = nftnl_obj_alloc();
	int r;

	if (!o)
		return -ENOMEM;
	nftnl_obj_set_u32(o, NFTNL_OBJ_TYPE, NFT_OBJECT_LIMIT);
	nftnl_obj_set_u64(o, NFTNL_OBJ_LIMIT_RATE, opts->rate);
	nftnl_obj_set_u64(o, NFTNL_OBJ_LIMIT_UNIT, 1);               /* per second */
	nftnl_obj_set_u32(o, NFTNL_OBJ_LIMIT_BURST, opts->burst);
	nftnl_obj_set_u32(o, NFTNL_OBJ_LIMIT_TYPE, NFT_LIMIT_PKTS);
	nftnl_obj_set_u32(o, NFTNL_OBJ_LIMIT_FLAGS, NFT_LIMIT_F_INV); /* "over" */
	r = msg_obj(b, o, LIMIT_NAME);
	nftnl_obj_free(o);
	return r;
}

/* counter in_overlimit { } */
static int msg_counter(struct nl_batch *b, const char *name)
{
	struct nftnl_obj *o = nftnl_obj_alloc();
	int r;

	if (!o)
		return -ENOMEM;
	nftnl_obj_set_u32(o, NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
	nftnl_obj_set_u64(o, NFTNL_OBJ_CTR_PKTS, 0);
	nftnl_obj_set_u64(o, NFTNL_OBJ_CTR_BYTES, 0);
	r = msg_obj(b, o, name);
	nftnl_obj_free(o);
	return r;
}

/* Set user data nft reads back: the key byte order. */
static int set_udata(struct nftnl_set *set, uint32_t byteorder)
{
	struct nftnl_udata_buf *ud = nftnl_udata_buf_alloc(64);
	int r = 0;

	if (!ud)
		return -ENOMEM;
	if (!nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_KEYBYTEORDER, byteorder) ||
	    nftnl_set_set_data(set, NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud),
			       nftnl_udata_buf_len(ud)) < 0)
		r = -ENOMEM;
	nftnl_udata_buf_free(ud);
	return r;
}

static int msg_set(struct nl_batch *b, struct nftnl_set *set, const char *name)
{
	struct nlmsghdr *nlh;

	nlh = nl_batch_msg_start(b, NFT_MSG_NEWSET, NFPROTO_INET, NLM_F_CREATE);
	if (nlh)
		nftnl_set_nlmsg_build_payload(nlh, set);
	return nl_batch_msg_end(b, NL_MSG_SET, "add set", name);
}

static struct nftnl_set *set_def(const char *name, uint32_t set_id)
{
	struct nftnl_set *set = nftnl_set_alloc();

	if (!set)
		return NULL;
	nftnl_set_set_u32(set, NFTNL_SET_FAMILY, NFPROTO_INET);
	if (nftnl_set_set_str(set, NFTNL_SET_TABLE, TABLE_NAME) < 0 ||
	    nftnl_set_set_str(set, NFTNL_SET_NAME, name) < 0) {
		nftnl_set_free(set);
		return NULL;
	}
	if (set_id)
		nftnl_set_set_u32(set, NFTNL_SET_ID, set_id);
	return set;
}

/* set in4_port_iv { type ipv4_addr . inet_proto . inet_service; flags interval; } */
static int msg_allow_set(struct nl_batch *b, const struct nl_set_spec *s, uint32_t set_id)
{
	struct nftnl_set *set = set_def(s->name, set_id);
	int r;

	if (!set)
		return -ENOMEM;
	nftnl_set_set_u32(set, NFTNL_SET_FLAGS, s->flags);
	nftnl_set_set_u32(set, NFTNL_SET_KEY_TYPE, s->key_type);
	nftnl_set_set_u32(set, NFTNL_SET_KEY_LEN, s->key_len);
	r = set_udata(set, s->key_byteorder);
	if (!r && (s->flags & NFT_SET_CONCAT) &&
	    nftnl_set_set_data(set, NFTNL_SET_DESC_CONCAT, s->field_len, s->n_fields) < 0)
		r = -EINVAL;
	if (!r)
		r = msg_set(b, set, s->name);
	nftnl_set_free(set);
	return r;
}

/* ICMPv6 control traffic IPv6 cannot work without: multicast listener
 * discovery (130-132, 143) and neighbour discovery (133-137). */
static const uint8_t icmpv6_control_types[] = { 130, 131, 132, 133, 134, 135, 136, 137, 143 };
#define N_ICMPV6_CONTROL (sizeof(icmpv6_control_types) / sizeof(icmpv6_control_types[0]))

/* An anonymous constant set of one-byte keys of nft type @key_type, for
 * the lookup of one rule (bound to it by @set_id within the batch). */
static int msg_anon_set(struct nl_batch *b, uint32_t set_id, uint32_t key_type,
			const uint8_t *keys, size_t n)
{
	struct nftnl_set *set = set_def(ND_SET_NAME, set_id);
	struct nftnl_set_elem *el;
	struct nlmsghdr *nlh;
	struct nlattr *nest, *en;
	int r;

	if (!set)
		return -ENOMEM;
	nftnl_set_set_u32(set, NFTNL_SET_FLAGS, NFT_SET_ANONYMOUS | NFT_SET_CONSTANT);
	nftnl_set_set_u32(set, NFTNL_SET_KEY_TYPE, key_type);
	nftnl_set_set_u32(set, NFTNL_SET_KEY_LEN, 1);
	nftnl_set_set_u32(set, NFTNL_SET_DESC_SIZE, (uint32_t)n);
	r = set_udata(set, NFT_BYTEORDER_BIG_ENDIAN);
	if (!r)
		r = msg_set(b, set, ND_SET_NAME);
	nftnl_set_unset(set, NFTNL_SET_USERDATA);
	if (r < 0)
		goto out_free_set;

	el = nftnl_set_elem_alloc();
	if (!el) {
		r = -ENOMEM;
		goto out_free_set;
	}
	nlh = nl_batch_msg_start(b, NFT_MSG_NEWSETELEM, NFPROTO_INET, NLM_F_CREATE);
	if (nlh) {
		nftnl_set_elems_nlmsg_build_payload(nlh, set);   /* table, set, id */
		nest = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
		for (size_t i = 0; i < n; i++) {
			nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, &keys[i], 1);
			en = mnl_attr_nest_start(nlh, (uint16_t)(i + 1));
			nftnl_set_elem_nlmsg_build_payload(nlh, el);
			mnl_attr_nest_end(nlh, en);
			r = nl_batch_elem_src(b, NULL);
			if (r < 0)
				break;
		}
		mnl_attr_nest_end(nlh, nest);
	}
	r = nl_batch_msg_end(b, NL_MSG_ELEM, "add elements", ND_SET_NAME);
	nftnl_set_elem_free(el);
out_free_set:
	nftnl_set_free(set);
	return r;
}

/* The anonymous constant set of the IPv6 control rule:
 * { mld-listener-query, mld-listener-report, mld-listener-done,
 *   nd-router-solicit, nd-router-advert, nd-neighbor-solicit,
 *   nd-neighbor-advert, nd-redirect, mld2-listener-report } */
static int msg_nd_set(struct nl_batch *b, uint32_t set_id)
{
	return msg_anon_set(b, set_id, NFT_TYPE_ICMP6_TYPE, icmpv6_control_types,
			    N_ICMPV6_CONTROL);
}

/* The protocols that have ports: { tcp, udp, sctp, udplite } */
static const uint8_t port_protos[] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, IPPROTO_UDPLITE };

static int msg_port_protos_set(struct nl_batch *b, uint32_t set_id)
{
	return msg_anon_set(b, set_id, NFT_TYPE_INET_PROTOCOL, port_protos,
			    sizeof(port_protos));
}

/* set in4_seen_port { type ipv4_addr . inet_proto . inet_service; size 4096;
 *                     flags dynamic,timeout; counter; timeout 86400s; } */
static int msg_seen_set(struct nl_batch *b, const struct nl_set_spec *s, uint32_t set_id)
{
	struct nftnl_set *set = set_def(s->name, set_id);
	struct nftnl_expr *ctr;
	int r;

	if (!set)
		return -ENOMEM;
	nftnl_set_set_u32(set, NFTNL_SET_FLAGS, s->flags);
	nftnl_set_set_u32(set, NFTNL_SET_KEY_TYPE, s->key_type);
	nftnl_set_set_u32(set, NFTNL_SET_KEY_LEN, s->key_len);
	nftnl_set_set_u64(set, NFTNL_SET_TIMEOUT, (uint64_t)SEEN_SET_TIMEOUT_S * 1000u);
	nftnl_set_set_u32(set, NFTNL_SET_DESC_SIZE, SEEN_SET_SIZE);
	ctr = nftnl_expr_alloc("counter");
	if (!ctr) {
		nftnl_set_free(set);
		return -ENOMEM;
	}
	nftnl_set_add_expr(set, ctr);   /* the set takes it */
	r = set_udata(set, s->key_byteorder);
	if (!r)
		r = msg_set(b, set, s->name);
	nftnl_set_free(set);
	return r;
}

/* Load @out into the reusable element object @el. */
static int elem_load(struct nftnl_set_elem *el, const struct nl_elem *x)
{
	static const uint8_t open_udata[] = {
		/* nftnl_udata: type NFTNL_UDATA_SET_ELEM_FLAGS, len 4,
		 * NFTNL_SET_ELEM_F_INTERVAL_OPEN as a host-order u32 */
		NFTNL_UDATA_SET_ELEM_FLAGS, 4, 0, 0, 0, 0,
	};
	uint8_t ud[sizeof(open_udata)];
	uint32_t open = NFTNL_SET_ELEM_F_INTERVAL_OPEN;

	if (nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, x->key, x->key_len) < 0)
		return -EINVAL;
	if (x->has_key_end) {
		if (nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY_END, x->key_end, x->key_len) < 0)
			return -EINVAL;
	} else {
		nftnl_set_elem_unset(el, NFTNL_SET_ELEM_KEY_END);
	}
	if (x->flags)
		nftnl_set_elem_set_u32(el, NFTNL_SET_ELEM_FLAGS, x->flags);
	else
		nftnl_set_elem_unset(el, NFTNL_SET_ELEM_FLAGS);
	if (x->open) {
		memcpy(ud, open_udata, sizeof(ud));
		memcpy(ud + 2, &open, sizeof(open));
		if (nftnl_set_elem_set(el, NFTNL_SET_ELEM_USERDATA, ud, sizeof(ud)) < 0)
			return -ENOMEM;
	} else {
		nftnl_set_elem_unset(el, NFTNL_SET_ELEM_USERDATA);
	}
	return 0;
}

int render_nl_elems(struct nl_batch *b, const struct nl_set_spec *s, uint32_t set_id,
		    const struct mseg_entry *const *ents, size_t n, bool del)
{
	struct nftnl_set *def;
	struct nftnl_set_elem *el;
	struct nl_elem x[2];
	size_t i = 0;
	int r = 0;

	if (!n)
		return 0;
	def = set_def(s->name, set_id);
	if (!def)
		return -ENOMEM;
	el = nftnl_set_elem_alloc();
	if (!el) {
		nftnl_set_free(def);
		return -ENOMEM;
	}
	while (i < n && r == 0) {
		struct nlmsghdr *nlh;
		struct nlattr *nest;
		uint16_t k = 0;

		nlh = nl_batch_msg_start(b, del ? NFT_MSG_DELSETELEM : NFT_MSG_NEWSETELEM,
					 NFPROTO_INET, del ? 0 : NLM_F_CREATE);
		if (!nlh) {
			r = -ENOMEM;
			break;
		}
		nftnl_set_elems_nlmsg_build_payload(nlh, def);   /* table, set [, id] */
		nest = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
		while (i < n &&
		       (size_t)((char *)mnl_nlmsg_get_payload_tail(nlh) - (char *)nest) +
				       2 * ELEM_MAX_BYTES <= ELEM_NEST_MAX) {
			size_t cnt = nl_entry_elems(s, ents[i], x);

			if (!cnt) {
				r = -EINVAL;   /* an entry of another set: a caller bug */
				break;
			}
			for (size_t j = 0; j < cnt && r == 0; j++) {
				struct nlattr *en;

				r = elem_load(el, &x[j]);
				if (r < 0)
					break;
				en = mnl_attr_nest_start(nlh, ++k);
				nftnl_set_elem_nlmsg_build_payload(nlh, el);
				mnl_attr_nest_end(nlh, en);
				r = nl_batch_elem_src(b, ents[i]);
			}
			i++;
		}
		mnl_attr_nest_end(nlh, nest);
		{
			int r2 = nl_batch_msg_end(b, NL_MSG_ELEM,
						  del ? "delete elements" : "add elements", s->name);
			if (!r)
				r = r2;
		}
	}
	nftnl_set_elem_free(el);
	nftnl_set_free(def);
	return r;
}

/* chain ingress { type filter hook input priority filter; policy accept; } */
static int msg_chain(struct nl_batch *b, const char *table, const char *name, uint32_t hook)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;

	if (!c)
		return -ENOMEM;
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	if (nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, table) < 0 ||
	    nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name) < 0 ||
	    nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter") < 0) {
		nftnl_chain_free(c);
		return -ENOMEM;
	}
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hook);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, 0);            /* priority filter */
	nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	nlh = nl_batch_msg_start(b, NFT_MSG_NEWCHAIN, NFPROTO_INET, NLM_F_CREATE);
	if (nlh)
		nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	return nl_batch_msg_end(b, NL_MSG_CHAIN, "add chain", name);
}

/* chain in4_seen { }   (a regular chain: no hook) */
static int msg_regular_chain(struct nl_batch *b, const char *name)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;

	if (!c)
		return -ENOMEM;
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	if (nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, TABLE_NAME) < 0 ||
	    nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name) < 0) {
		nftnl_chain_free(c);
		return -ENOMEM;
	}
	nlh = nl_batch_msg_start(b, NFT_MSG_NEWCHAIN, NFPROTO_INET, NLM_F_CREATE);
	if (nlh)
		nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	return nl_batch_msg_end(b, NL_MSG_CHAIN, "add chain", name);
}

static int msg_rule(struct nl_batch *b, struct nftnl_rule *rule, const char *name)
{
	struct nlmsghdr *nlh;

	nlh = nl_batch_msg_start(b, NFT_MSG_NEWRULE, NFPROTO_INET, NLM_F_APPEND | NLM_F_CREATE);
	if (nlh)
		nftnl_rule_nlmsg_build_payload(nlh, rule);
	return nl_batch_msg_end(b, NL_MSG_RULE, "add rule to chain", name);
}

int render_nl_table_remove(struct nl_batch *b)
{
	int r = msg_table(b, NFT_MSG_NEWTABLE, TABLE_NAME);

	return r < 0 ? r : msg_table(b, NFT_MSG_DELTABLE, TABLE_NAME);
}

static int entry_ptr_cmp(const void *a, const void *b);

/* The range entries of one family and their slots. */
struct fam_ranges {
	const struct mseg_entry **v;
	size_t n;
	struct slot_assign sa;
};

/* The same slot member (address, protocol) as @a: a range entry of a slot
 * has a single address, and a member's entries are adjacent. */
static bool same_member(const struct mseg_entry *a, const struct mseg_entry *b)
{
	return a->proto == b->proto && memcmp(a->lo.bytes, b->lo.bytes, sizeof(a->lo.bytes)) == 0;
}

/* Build the image of @dp; @only_family: 0 = every entry, else only the
 * SHAPE_PORT_IV entries of that family, in the slots of @choice when not
 * NULL (else chosen from them). */
static int parts_build(struct nl_parts *p, const struct mseg_dir_plan *dp, int only_family,
		       const struct slot_assign *choice)
{
	size_t count[NL_SETS_PER_DIR] = { 0 }, pos[NL_SETS_PER_DIR], n_synth = 0, n_v = 0;
	struct fam_ranges fr[2] = { 0 };
	struct mseg_entry *syn;
	uint8_t *idx;
	int r = -ENOMEM;

	memset(p, 0, sizeof(*p));
	idx = malloc(dp->n_entries ? dp->n_entries : 1);
	for (int f = 0; f < 2; f++)
		fr[f].v = malloc((dp->n_entries ? dp->n_entries : 1) * sizeof(*fr[f].v));
	if (!idx || !fr[0].v || !fr[1].v)
		goto out_free;
	/* UINT8_MAX: a range entry, placed below; UINT8_MAX - 1: left out */
	for (size_t i = 0; i < dp->n_entries; i++) {
		const struct mseg_entry *e = &dp->entries[i];
		enum entry_shape shape = entry_shape(e);
		int k = e->hi.family == e->lo.family ? nl_set_index(e->lo.family, shape) : -1;

		if (k < 0) {
			r = -EINVAL;
			goto out_free;
		}
		if (only_family && (shape != SHAPE_PORT_IV || e->lo.family != only_family)) {
			idx[i] = UINT8_MAX - 1;
		} else if (shape == SHAPE_PORT_IV) {
			struct fam_ranges *x = &fr[e->lo.family == AF_INET6];

			x->v[x->n++] = e;
			idx[i] = UINT8_MAX;
		} else {
			idx[i] = (uint8_t)k;
			count[k]++;
			n_v++;
		}
	}
	for (int f = 0; f < 2; f++) {
		struct fam_ranges *x = &fr[f];
		int family = f ? AF_INET6 : AF_INET;
		size_t k = 1;

		while (k < x->n && addr_entry_cmp(x->v[k - 1], x->v[k]) <= 0)
			k++;
		if (k < x->n)
			qsort(x->v, x->n, sizeof(*x->v), entry_ptr_cmp);
		if (choice && family == only_family)
			r = slots_assign_with(x->v, x->n, choice, &x->sa);
		else
			r = slots_assign(x->v, x->n, NL_SLOTS, &x->sa);
		if (r < 0)
			goto out_free;
		for (size_t i = 0; i < x->n; i++) {
			int8_t sl = x->sa.slot[i];

			if (sl < 0) {
				count[nl_set_index(family, SHAPE_PORT_IV)]++;
				n_v++;
			} else if (i == 0 || x->sa.slot[i - 1] != sl ||
				   !same_member(x->v[i - 1], x->v[i])) {
				/* the first entry of its (address, protocol) */
				count[nl_slot_set_index(family, (unsigned)sl, false)]++;
				n_synth++;
			}
		}
		for (size_t j = 0; j < x->sa.n_used; j++) {
			count[nl_slot_set_index(family, (unsigned)j, true)] += x->sa.sig_n[j];
			n_synth += x->sa.sig_n[j];
		}
	}
	n_v += n_synth;
	p->v = malloc((n_v ? n_v : 1) * sizeof(*p->v));
	p->synth = calloc(n_synth ? n_synth : 1, sizeof(*p->synth));
	if (!p->v || !p->synth) {
		r = -ENOMEM;
		goto out_free;
	}
	for (size_t i = 0; i < NL_SETS_PER_DIR; i++) {
		p->off[i + 1] = p->off[i] + count[i];
		pos[i] = p->off[i];
	}
	for (size_t i = 0; i < dp->n_entries; i++)
		if (idx[i] < UINT8_MAX - 1)
			p->v[pos[idx[i]]++] = &dp->entries[i];
	syn = p->synth;
	for (int f = 0; f < 2; f++) {
		struct fam_ranges *x = &fr[f];
		int family = f ? AF_INET6 : AF_INET;
		const struct mseg_entry *first_of[NL_SLOTS] = { 0 };

		for (size_t i = 0; i < x->n; i++) {
			const struct mseg_entry *e = x->v[i];
			int8_t sl = x->sa.slot[i];

			if (sl < 0) {
				p->v[pos[nl_set_index(family, SHAPE_PORT_IV)]++] = e;
				continue;
			}
			if (!first_of[sl])
				first_of[sl] = e;
			if (i > 0 && x->sa.slot[i - 1] == sl && same_member(x->v[i - 1], e))
				continue;   /* the same (address, protocol) */
			/* 10.0.0.1 . tcp */
			*syn = *e;
			syn->port_lo = syn->port_hi = 0;
			p->v[pos[nl_slot_set_index(family, (unsigned)sl, false)]++] = syn++;
		}
		for (size_t j = 0; j < x->sa.n_used; j++) {
			const struct slot_range *rg = x->sa.ranges + x->sa.sig_off[j];

			for (size_t m = 0; m < x->sa.sig_n[j]; m++) {
				/* 8000-8100, with the provenance of a member */
				memset(syn, 0, sizeof(*syn));
				syn->lo.family = syn->hi.family = (uint8_t)family;
				syn->port_lo = rg[m].lo;
				syn->port_hi = rg[m].hi;
				syn->policy = first_of[j] ? first_of[j]->policy : 0;
				syn->rule = first_of[j] ? first_of[j]->rule : 0;
				p->v[pos[nl_slot_set_index(family, (unsigned)j, true)]++] = syn++;
			}
		}
	}
	r = 0;

out_free:
	free(idx);
	for (int f = 0; f < 2; f++) {
		free(fr[f].v);
		slot_assign_release(&fr[f].sa);
	}
	if (r < 0)
		nl_parts_release(p);
	return r;
}

int nl_parts_build(struct nl_parts *p, const struct mseg_dir_plan *dp)
{
	return parts_build(p, dp, 0, NULL);
}

int nl_parts_build_ranges(struct nl_parts *p, const struct mseg_dir_plan *dp, int family,
			  const struct slot_assign *choice)
{
	return parts_build(p, dp, family, choice);
}

void nl_parts_release(struct nl_parts *p)
{
	free(p->v);
	free(p->synth);
	memset(p, 0, sizeof(*p));
}

static int entry_ptr_cmp(const void *a, const void *b)
{
	return addr_entry_cmp(*(const struct mseg_entry *const *)a,
			    *(const struct mseg_entry *const *)b);
}

void nl_parts_sort(struct nl_parts *p)
{
	for (size_t i = 0; i < NL_SETS_PER_DIR; i++) {
		const struct mseg_entry **v = p->v + p->off[i];
		size_t n = p->off[i + 1] - p->off[i], k = 1;

		/* the compiler hands them over sorted: check in O(n) first */
		while (k < n && addr_entry_cmp(v[k - 1], v[k]) <= 0)
			k++;
		if (k < n)
			qsort(v, n, sizeof(*v), entry_ptr_cmp);
	}
}

/* The sets of direction @d with their elements. */
static int msgs_dir_sets(struct nl_batch *b, enum mseg_dir d, const struct nl_parts *parts,
			 uint32_t *set_id)
{
	for (size_t i = 0; i < NL_SETS_PER_DIR; i++) {
		struct nl_set_spec s;
		int r;

		nl_set_spec_get(d, i, &s);
		r = msg_allow_set(b, &s, ++*set_id);
		if (r < 0)
			return r;
		r = render_nl_elems(b, &s, *set_id, parts->v + parts->off[i],
				    parts->off[i + 1] - parts->off[i], false);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < NL_SEEN_SETS_PER_DIR; i++) {
		struct nl_set_spec s;
		int r;

		nl_seen_spec_get(d, i, &s);
		r = msg_seen_set(b, &s, ++*set_id);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The seen chains of direction @d (each with the protocol sets of its two
 * rules), then the direction's chain, the anonymous set of its neighbour
 * discovery rule, and its rules. */
static int msgs_dir_chain(struct nl_batch *b, enum mseg_dir d, enum mseg_mode mode,
			  const struct table_opts *o, uint32_t *set_id)
{
	struct nftnl_rule *rules[NL_RULES_PER_CHAIN];
	uint32_t nd_id = ++*set_id;
	int r;

	/* the seen chains first: the lookups go to them */
	for (int fi = 0; fi < 2; fi++) {
		int family = fi ? AF_INET6 : AF_INET;
		struct nftnl_rule *seen[NL_RULES_PER_SEEN_CHAIN];
		uint32_t port_id = ++*set_id, proto_id = ++*set_id;

		r = msg_regular_chain(b, nl_seen_chain_name(d, family));
		if (r == 0)
			r = msg_port_protos_set(b, port_id);
		if (r == 0)
			r = msg_port_protos_set(b, proto_id);
		if (r == 0)
			r = seen_chain_rules(d, family, port_id, proto_id, seen);
		if (r < 0)
			return r;
		for (size_t i = 0; i < NL_RULES_PER_SEEN_CHAIN; i++) {
			if (r == 0)
				r = msg_rule(b, seen[i], nl_seen_chain_name(d, family));
			nftnl_rule_free(seen[i]);
		}
		if (r < 0)
			return r;
	}
	r = msg_chain(b, TABLE_NAME, chain_name(d),
		      d == MSEG_DIR_INGRESS ? NF_INET_LOCAL_IN : NF_INET_LOCAL_OUT);
	if (r == 0)
		r = msg_nd_set(b, nd_id);
	if (r == 0)
		r = chain_rules(d, mode, o, nd_id, rules);
	if (r < 0)
		return r;
	for (size_t i = 0; i < NL_RULES_PER_CHAIN; i++) {
		if (r == 0)
			r = msg_rule(b, rules[i], chain_name(d));
		nftnl_rule_free(rules[i]);
	}
	return r;
}

int render_nl_table_replace(struct nl_batch *b, const struct mseg_ep_plan *plan,
			    const struct table_opts *opts)
{
	struct nl_parts parts[MSEG_DIR_COUNT] = { 0 };
	struct table_opts o;
	uint32_t set_id = 0;
	int r = 0;

	table_opts_normalize(&o, opts);
	for (int d = 0; d < MSEG_DIR_COUNT && r == 0; d++)
		if (plan->dir[d].isolated)
			r = nl_parts_build(&parts[d], &plan->dir[d]);
	/* add, delete, add: works whether or not the table existed, and
	 * takes its sets along (`flush table` would not) */
	if (r == 0)
		r = render_nl_table_remove(b);
	if (r == 0)
		r = msg_table(b, NFT_MSG_NEWTABLE, TABLE_NAME);
	if (r == 0)
		r = msg_limit(b, &o);
	for (int d = 0; d < MSEG_DIR_COUNT && r == 0; d++)
		if (plan->dir[d].isolated)
			r = msg_counter(b, d == MSEG_DIR_INGRESS ? "in_overlimit" : "out_overlimit");
	for (int d = 0; d < MSEG_DIR_COUNT && r == 0; d++)
		if (plan->dir[d].isolated)
			r = msg_counter(b, d == MSEG_DIR_INGRESS ? "in_invalid" : "out_invalid");
	for (int d = 0; d < MSEG_DIR_COUNT && r == 0; d++)
		if (plan->dir[d].isolated)
			r = msgs_dir_sets(b, (enum mseg_dir)d, &parts[d], &set_id);
	for (int d = 0; d < MSEG_DIR_COUNT && r == 0; d++)
		if (plan->dir[d].isolated)
			r = msgs_dir_chain(b, (enum mseg_dir)d, plan->dir[d].mode, &o, &set_id);
	for (int d = 0; d < MSEG_DIR_COUNT; d++) {
		/* the batch names the slot elements in its errors: it keeps them */
		int r2 = nl_batch_adopt(b, parts[d].synth);

		parts[d].synth = NULL;
		if (r == 0)
			r = r2;
		nl_parts_release(&parts[d]);
	}
	return r;
}

int render_nl_probe_queue(struct nl_batch *b, const struct table_opts *opts, bool audit)
{
	struct rb rb;
	int r;

	r = msg_table(b, NFT_MSG_NEWTABLE, TABLE_NAME);
	if (r < 0)
		return r;
	r = msg_chain(b, TABLE_NAME, "probe", NF_INET_LOCAL_IN);
	if (r < 0)
		return r;
	r = rb_init(&rb, TABLE_NAME, "probe");
	if (r < 0)
		return r;
	rule_queue_step(&rb, opts, audit);
	r = rb.error ? rb.error : msg_rule(b, rb.r, "probe");
	nftnl_rule_free(rb.r);
	return r;
}

int render_nl_probe_concat(struct nl_batch *b)
{
	struct mseg_entry e = {
		.lo = { .family = AF_INET, .bytes = { 10, 0, 0, 0 } },
		.hi = { .family = AF_INET, .bytes = { 10, 0, 0, 255 } },
		.proto = IPPROTO_TCP, .port_lo = 80, .port_hi = 90,
	};
	const struct mseg_entry *ents[1] = { &e };
	struct nl_set_spec s;
	int r;

	nl_set_spec_get(MSEG_DIR_INGRESS, (size_t)nl_set_index(AF_INET, SHAPE_PORT_IV), &s);
	r = msg_table(b, NFT_MSG_NEWTABLE, TABLE_NAME);
	if (r < 0)
		return r;
	r = msg_allow_set(b, &s, 1);
	if (r < 0)
		return r;
	return render_nl_elems(b, &s, 1, ents, 1, false);
}

/* ---- rule text, for comparisons ---- */

/* "__set123" -> "__set%d" in place */
static void normalize_anon_sets(char *s)
{
	char *p = s;

	while ((p = strstr(p, "__set")) != NULL) {
		char *q = p + 5;
		char *end = q;

		while (*end >= '0' && *end <= '9')
			end++;
		if (end > q) {
			memmove(q + 2, end, strlen(end) + 1);
			q[0] = '%';
			q[1] = 'd';
		}
		p = q;
	}
}

const char *render_nl_rule_text(const struct nftnl_rule *r, char *buf, size_t size)
{
	struct nftnl_expr_iter *it;
	struct nftnl_expr *e;
	size_t off = 0;

	if (!size)
		return buf;
	buf[0] = '\0';
	it = nftnl_expr_iter_create(r);
	if (!it)
		return buf;
	while ((e = nftnl_expr_iter_next(it)) != NULL && off + 1 < size) {
		const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
		char body[512];
		int n;

		body[0] = '\0';
		nftnl_expr_snprintf(body, sizeof(body), e, NFTNL_OUTPUT_DEFAULT, 0);
		n = snprintf(buf + off, size - off, "%s[ %s %s]", off ? " " : "", name ? name : "?",
			     body);
		if (n < 0)
			break;
		off += (size_t)n < size - off ? (size_t)n : size - off - 1;
		if (name && strcmp(name, "target") == 0 && nftnl_expr_is_set(e, NFTNL_EXPR_TG_INFO)) {
			uint32_t len = 0;
			const uint8_t *info = nftnl_expr_get(e, NFTNL_EXPR_TG_INFO, &len);

			for (uint32_t i = 0; info && i < len && off + 3 < size; i++) {
				snprintf(buf + off, size - off, "%02x", info[i]);
				off += 2;
			}
		}
	}
	nftnl_expr_iter_destroy(it);
	normalize_anon_sets(buf);
	return buf;
}
