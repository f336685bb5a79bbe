/* readback: the table as the kernel holds it (table, objects, sets and
 * their elements, chains and rules, dumped with libnftnl), compared with
 * what ep_table_replace() would program for a plan.
 *
 * Elements are compared as entries: hash elements and concatenated
 * intervals decode one to one; a plain interval set's start and end
 * elements are paired back into intervals. Rules are compared expression
 * by expression in libnftnl's text form (render_nl_rule_text()), built for
 * the desired rules with the same code that programs them. */
#include <errno.h>
#include <arpa/inet.h>
#include <inttypes.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/gen.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include "mseg/kernel/nft.h"
#include "mseg/kernel/readback.h"
#include "mseg/compile/render_text.h"
#include "kernel/batch.h"
#include "kernel/ep_shape.h"
#include "kernel/netns.h"
#include "kernel/render_nl.h"
#include "util/vec.h"

#define READ_RETRIES 5
#define RULE_TEXT_MAX 2048
#define REQ_BUF_SIZE 8192
#define ELEM_REREADS 3
#define ELEM_REREAD_US 50000

/* ---- generation ---- */

/* The named counters of an isolated direction: over the rate limit, and
 * refused by conntrack as invalid. */
static const char *const counter_names[MSEG_DIR_COUNT][2] = {
	[MSEG_DIR_INGRESS] = { "in_overlimit", "in_invalid" },
	[MSEG_DIR_EGRESS] = { "out_overlimit", "out_invalid" },
};

static int gen_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_gen *g = nftnl_gen_alloc();
	uint32_t *id = data;

	if (!g)
		return MNL_CB_ERROR;
	if (nftnl_gen_nlmsg_parse(nlh, g) == 0)
		*id = nftnl_gen_get_u32(g, NFTNL_GEN_ID);
	nftnl_gen_free(g);
	return MNL_CB_OK;
}

static int genid_read(struct netns *ns, uint32_t *ret)
{
	char buf[REQ_BUF_SIZE] = { 0 };
	struct nlmsghdr *nlh;

	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETGEN, AF_UNSPEC, 0, netns_seq_reserve(ns, 1));
	return nl_request(ns, nlh, gen_cb, ret);
}

int nft_genid_get(struct netns *ns, uint32_t *ret_genid, struct mseg_err *err)
{
	int r = genid_read(ns, ret_genid);

	if (r < 0)
		return err_setf(err, -r, "netns %s: reading the ruleset generation: %s",
				netns_path(ns), strerror(-r));
	return 0;
}

/* ---- what the kernel holds ---- */

struct kelem {
	uint8_t key[NL_KEY_MAX], key_end[NL_KEY_MAX];
	uint32_t flags;
	bool has_end;
};

struct kset {
	char *name;
	uint32_t flags, key_type, key_len;
	struct kelem *elems;
	size_t n_elems, cap_elems;
};

struct kchain {
	char *name, *type;
	bool base;
	uint32_t hook, policy;
	int32_t prio;
	char **rules;                /* render_nl_rule_text() of each rule */
	size_t n_rules, cap_rules;
};

struct kobj {
	char *name;
	uint32_t type;
	uint64_t pkts, bytes;        /* counter */
	uint64_t rate, unit;         /* limit */
	uint32_t burst, ltype, lflags;
};

struct kstate {
	bool table;
	uint32_t table_flags;
	struct kset *sets;
	size_t n_sets, cap_sets;
	struct kchain *chains;
	size_t n_chains, cap_chains;
	struct kobj *objs;
	size_t n_objs, cap_objs;
	int error;                   /* first failure inside a callback */
};

static void kstate_release(struct kstate *k)
{
	for (size_t i = 0; i < k->n_sets; i++) {
		free(k->sets[i].name);
		free(k->sets[i].elems);
	}
	for (size_t i = 0; i < k->n_chains; i++) {
		free(k->chains[i].name);
		free(k->chains[i].type);
		for (size_t j = 0; j < k->chains[i].n_rules; j++)
			free(k->chains[i].rules[j]);
		free(k->chains[i].rules);
	}
	for (size_t i = 0; i < k->n_objs; i++)
		free(k->objs[i].name);
	free(k->sets);
	free(k->chains);
	free(k->objs);
	memset(k, 0, sizeof(*k));
}

static char *xstrdup(const char *s)
{
	return strdup(s ? s : "");
}

/* The answer of a dump callback to libmnl: out of memory stops the dump. */
static int kstate_cb_end(struct kstate *k, int r)
{
	if (r < 0) {
		k->error = r;
		return MNL_CB_ERROR;
	}
	return MNL_CB_OK;
}

/* libnftnl 1.2.4 copies the names in a reply with strdup() and trusts
 * them to end in a NUL, as the kernel's do: a reply whose name attributes
 * (the top-level ones of @types, @n of them) are not NUL-terminated
 * strings is not parsed. */
static bool names_terminated(const struct nlmsghdr *nlh, const uint16_t *types, size_t n)
{
	const struct nlattr *a;

	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
		for (size_t i = 0; i < n; i++)
			if (mnl_attr_get_type(a) == types[i] &&
			    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
				return false;
	return true;
}

#define NAMES_TERMINATED(nlh, ...)                                                  \
	names_terminated(nlh, (const uint16_t[]){ __VA_ARGS__ },                    \
			 sizeof((const uint16_t[]){ __VA_ARGS__ }) / sizeof(uint16_t))

/* libnftnl 1.2.4 (Debian 12) takes an expression's name without checking
 * that it is there, and dereferences NULL when it is not (rules, sets and
 * set elements carry expressions): a reply with an expression without a
 * NUL-terminated name is not parsed (the kernel names every one). */
static bool expr_named(const struct nlattr *expr)
{
	const struct nlattr *x;

	mnl_attr_for_each_nested(x, expr)
		if (mnl_attr_get_type(x) == NFTA_EXPR_NAME)
			return mnl_attr_validate(x, MNL_TYPE_NUL_STRING) == 0;
	return false;
}

/* Every expression of a list of them (NFTA_LIST_ELEM nests). */
static bool exprs_named(const struct nlattr *list)
{
	const struct nlattr *e;

	mnl_attr_for_each_nested(e, list)
		if (!expr_named(e))
			return false;
	return true;
}

/* @one and @list: the attribute types of a single expression and of a
 * list of them among @attrs' nested attributes (or the message's own
 * attributes when @attrs is NULL). */
static bool attrs_exprs_named(const struct nlmsghdr *nlh, const struct nlattr *attrs,
			      uint16_t one, uint16_t list)
{
	const struct nlattr *a;

	if (!attrs) {
		mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
			if ((one && mnl_attr_get_type(a) == one && !expr_named(a)) ||
			    (list && mnl_attr_get_type(a) == list && !exprs_named(a)))
				return false;
		return true;
	}
	mnl_attr_for_each_nested(a, attrs)
		if ((one && mnl_attr_get_type(a) == one && !expr_named(a)) ||
		    (list && mnl_attr_get_type(a) == list && !exprs_named(a)))
			return false;
	return true;
}

static bool rule_exprs_named(const struct nlmsghdr *nlh)
{
	return attrs_exprs_named(nlh, NULL, 0, NFTA_RULE_EXPRESSIONS);
}

/* libnftnl 1.2.4 parses a verdict (NFTA_DATA_VERDICT in any data
 * attribute: an immediate's, a cmp's, a set element's key or data) into
 * an attribute table it does not clear, then reads its code, and for a
 * jump or goto its chain, whether they were there or not: garbage
 * pointers. A verdict without a u32 code, or a jump or goto without a
 * NUL-terminated chain, is not parsed (the kernel's always have them).
 * @data: an attribute libnftnl hands to its data parser. */
static bool data_verdict_ok(const struct nlattr *data)
{
	const struct nlattr *d, *v;

	mnl_attr_for_each_nested(d, data) {
		const struct nlattr *code = NULL, *chain = NULL;

		if (mnl_attr_get_type(d) != NFTA_DATA_VERDICT)
			continue;
		mnl_attr_for_each_nested(v, d) {
			if (mnl_attr_get_type(v) == NFTA_VERDICT_CODE)
				code = v;
			else if (mnl_attr_get_type(v) == NFTA_VERDICT_CHAIN)
				chain = v;
		}
		if (!code || mnl_attr_validate(code, MNL_TYPE_U32) < 0)
			return false;
		switch ((int)ntohl(mnl_attr_get_u32(code))) {
		case NFT_JUMP:
		case NFT_GOTO:
			if (!chain || mnl_attr_validate(chain, MNL_TYPE_NUL_STRING) < 0)
				return false;
			break;
		}
	}
	return true;
}

/* The data attributes of a rule's expressions (by expression name: the
 * attribute types are per expression) hold whole verdicts. */
static bool rule_verdicts_ok(const struct nlmsghdr *nlh)
{
	static const struct {
		const char *name;
		uint16_t types[2];
	} data_attrs[] = {
		{ "immediate", { NFTA_IMMEDIATE_DATA, 0 } },
		{ "cmp", { NFTA_CMP_DATA, 0 } },
		{ "bitwise", { NFTA_BITWISE_MASK, NFTA_BITWISE_XOR } },
		{ "range", { NFTA_RANGE_FROM_DATA, NFTA_RANGE_TO_DATA } },
	};
	const struct nlattr *a, *e, *x, *y;

	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
		if (mnl_attr_get_type(a) != NFTA_RULE_EXPRESSIONS)
			continue;
		mnl_attr_for_each_nested(e, a) {
			const char *name = NULL;
			const struct nlattr *body = NULL;

			mnl_attr_for_each_nested(x, e) {
				if (mnl_attr_get_type(x) == NFTA_EXPR_NAME &&
				    mnl_attr_validate(x, MNL_TYPE_NUL_STRING) == 0)
					name = mnl_attr_get_str(x);
				else if (mnl_attr_get_type(x) == NFTA_EXPR_DATA)
					body = x;
			}
			if (!name || !body)
				continue;
			for (size_t i = 0; i < sizeof(data_attrs) / sizeof(data_attrs[0]); i++) {
				if (strcmp(name, data_attrs[i].name) != 0)
					continue;
				mnl_attr_for_each_nested(y, body)
					for (size_t t = 0; t < 2 && data_attrs[i].types[t]; t++)
						if (mnl_attr_get_type(y) == data_attrs[i].types[t] &&
						    !data_verdict_ok(y))
							return false;
			}
		}
	}
	return true;
}

/* libnftnl 1.2.4 stores a set's concatenated field lengths in an array of
 * NFT_REG32_COUNT without counting them: more fields overrun the set
 * object on the heap. The kernel allows at most that many. */
static bool set_desc_ok(const struct nlmsghdr *nlh)
{
	const struct nlattr *a, *d, *el, *f;
	size_t n = 0;

	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
		if (mnl_attr_get_type(a) != NFTA_SET_DESC)
			continue;
		mnl_attr_for_each_nested(d, a) {
			if (mnl_attr_get_type(d) != NFTA_SET_DESC_CONCAT)
				continue;
			mnl_attr_for_each_nested(el, d)
				mnl_attr_for_each_nested(f, el)
					n += mnl_attr_get_type(f) == NFTA_SET_FIELD_LEN;
		}
	}
	return n <= NFT_REG32_COUNT;
}

static bool set_reply_ok(const struct nlmsghdr *nlh)
{
	return attrs_exprs_named(nlh, NULL, NFTA_SET_EXPR, NFTA_SET_EXPRESSIONS) && set_desc_ok(nlh);
}

/* Set elements: expressions named, and (libnftnl 1.2.4 checks an
 * element's attribute types against NFTA_SET_MAX, then stores them in an
 * array of NFTA_SET_ELEM_MAX + 1 on the stack) no attribute type beyond
 * NFTA_SET_ELEM_MAX. */
static bool elems_reply_ok(const struct nlmsghdr *nlh)
{
	const struct nlattr *a, *el, *x;

	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
		if (mnl_attr_get_type(a) != NFTA_SET_ELEM_LIST_ELEMENTS)
			continue;
		mnl_attr_for_each_nested(el, a) {
			mnl_attr_for_each_nested(x, el) {
				uint16_t t = mnl_attr_get_type(x);

				if (t > NFTA_SET_ELEM_MAX)
					return false;
				if ((t == NFTA_SET_ELEM_KEY || t == NFTA_SET_ELEM_KEY_END ||
				     t == NFTA_SET_ELEM_DATA) && !data_verdict_ok(x))
					return false;
			}
			if (!attrs_exprs_named(nlh, el, NFTA_SET_ELEM_EXPR, NFTA_SET_ELEM_EXPRESSIONS))
				return false;
		}
	}
	return true;
}

static int table_cb(const struct nlmsghdr *nlh, void *data)
{
	struct kstate *k = data;
	struct nftnl_table *t = nftnl_table_alloc();

	if (!t)
		return kstate_cb_end(k, -ENOMEM);
	if (NAMES_TERMINATED(nlh, NFTA_TABLE_NAME) && nftnl_table_nlmsg_parse(nlh, t) == 0) {
		k->table = true;
		k->table_flags = nftnl_table_get_u32(t, NFTNL_TABLE_FLAGS);
	}
	nftnl_table_free(t);
	return MNL_CB_OK;
}

static bool in_our_table(const char *table)
{
	return table && strcmp(table, TABLE_NAME) == 0;
}

/* A zeroed record at the end of one of kstate's arrays, which the caller
 * fills and then counts; NULL when out of memory. */
#define KSTATE_NEXT(v, n, cap) \
	(VEC_RESERVE(v, cap, (n) + 1) < 0 ? NULL : memset(&(v)[n], 0, sizeof(*(v))))

static int kobj_add(struct kstate *k, struct nftnl_obj *o)
{
	struct kobj *x = KSTATE_NEXT(k->objs, k->n_objs, k->cap_objs);

	if (!x || !(x->name = xstrdup(nftnl_obj_get_str(o, NFTNL_OBJ_NAME))))
		return -ENOMEM;
	k->n_objs++;
	x->type = nftnl_obj_get_u32(o, NFTNL_OBJ_TYPE);
	if (x->type == NFT_OBJECT_COUNTER) {
		x->pkts = nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_PKTS);
		x->bytes = nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_BYTES);
	} else if (x->type == NFT_OBJECT_LIMIT) {
		x->rate = nftnl_obj_get_u64(o, NFTNL_OBJ_LIMIT_RATE);
		x->unit = nftnl_obj_get_u64(o, NFTNL_OBJ_LIMIT_UNIT);
		x->burst = nftnl_obj_get_u32(o, NFTNL_OBJ_LIMIT_BURST);
		x->ltype = nftnl_obj_get_u32(o, NFTNL_OBJ_LIMIT_TYPE);
		x->lflags = nftnl_obj_get_u32(o, NFTNL_OBJ_LIMIT_FLAGS);
	}
	return 0;
}

static int obj_cb(const struct nlmsghdr *nlh, void *data)
{
	struct kstate *k = data;
	struct nftnl_obj *o = nftnl_obj_alloc();
	int r = 0;

	if (!o)
		return kstate_cb_end(k, -ENOMEM);
	if (NAMES_TERMINATED(nlh, NFTA_OBJ_TABLE, NFTA_OBJ_NAME) &&
	    nftnl_obj_nlmsg_parse(nlh, o) >= 0 && in_our_table(nftnl_obj_get_str(o, NFTNL_OBJ_TABLE)))
		r = kobj_add(k, o);
	nftnl_obj_free(o);
	return kstate_cb_end(k, r);
}

static int kset_add(struct kstate *k, struct nftnl_set *s)
{
	struct kset *x = KSTATE_NEXT(k->sets, k->n_sets, k->cap_sets);

	if (!x || !(x->name = xstrdup(nftnl_set_get_str(s, NFTNL_SET_NAME))))
		return -ENOMEM;
	k->n_sets++;
	x->flags = nftnl_set_get_u32(s, NFTNL_SET_FLAGS);
	x->key_type = nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE);
	x->key_len = nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN);
	return 0;
}

static int set_cb(const struct nlmsghdr *nlh, void *data)
{
	struct kstate *k = data;
	struct nftnl_set *s = nftnl_set_alloc();
	int r = 0;

	if (!s)
		return kstate_cb_end(k, -ENOMEM);
	if (NAMES_TERMINATED(nlh, NFTA_SET_TABLE, NFTA_SET_NAME) && set_reply_ok(nlh) &&
	    nftnl_set_nlmsg_parse(nlh, s) >= 0 && in_our_table(nftnl_set_get_str(s, NFTNL_SET_TABLE)))
		r = kset_add(k, s);
	nftnl_set_free(s);
	return kstate_cb_end(k, r);
}

/* Call @fn for each element of a set-elements reply @nlh (a reply that is
 * not one is skipped). @fn returns 0 or an MNL_CB_ERROR to stop. */
static int elems_foreach(const struct nlmsghdr *nlh,
			 int (*fn)(struct nftnl_set_elem *e, void *data), void *data)
{
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;
	int r = MNL_CB_OK;

	if (!s)
		return MNL_CB_ERROR;
	if (!NAMES_TERMINATED(nlh, NFTA_SET_ELEM_LIST_TABLE, NFTA_SET_ELEM_LIST_SET) ||
	    !elems_reply_ok(nlh) || nftnl_set_elems_nlmsg_parse(nlh, s) < 0) {
		nftnl_set_free(s);
		return MNL_CB_OK;
	}
	it = nftnl_set_elems_iter_create(s);
	if (!it) {
		nftnl_set_free(s);
		return MNL_CB_ERROR;
	}
	while (r == MNL_CB_OK && (e = nftnl_set_elems_iter_next(it)) != NULL)
		if (fn(e, data) != 0)
			r = MNL_CB_ERROR;
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	return r;
}

static int kelem_add(struct nftnl_set_elem *e, void *data)
{
	struct kset *x = data;
	struct kelem *ke;
	uint32_t len = 0;
	const void *key;

	if (VEC_RESERVE(x->elems, x->cap_elems, x->n_elems + 1) < 0)
		return MNL_CB_ERROR;
	ke = &x->elems[x->n_elems];
	memset(ke, 0, sizeof(*ke));
	key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
	if (key)
		memcpy(ke->key, key, len < NL_KEY_MAX ? len : NL_KEY_MAX);
	key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY_END, &len);
	if (key) {
		memcpy(ke->key_end, key, len < NL_KEY_MAX ? len : NL_KEY_MAX);
		ke->has_end = true;
	}
	if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_FLAGS))
		ke->flags = nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS);
	x->n_elems++;
	return 0;
}

static int elem_cb(const struct nlmsghdr *nlh, void *data)
{
	return elems_foreach(nlh, kelem_add, data);
}

static int kchain_add(struct kstate *k, struct nftnl_chain *c)
{
	struct kchain *x = KSTATE_NEXT(k->chains, k->n_chains, k->cap_chains);

	if (!x)
		return -ENOMEM;
	x->name = xstrdup(nftnl_chain_get_str(c, NFTNL_CHAIN_NAME));
	x->type = xstrdup(nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE));
	if (!x->name || !x->type) {
		free(x->name);
		free(x->type);
		return -ENOMEM;
	}
	k->n_chains++;
	x->base = nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM);
	x->hook = nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM);
	x->prio = nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO);
	x->policy = nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY);
	return 0;
}

static int chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct kstate *k = data;
	struct nftnl_chain *c = nftnl_chain_alloc();
	int r = 0;

	if (!c)
		return kstate_cb_end(k, -ENOMEM);
	if (NAMES_TERMINATED(nlh, NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME, NFTA_CHAIN_TYPE) &&
	    nftnl_chain_nlmsg_parse(nlh, c) >= 0 &&
	    in_our_table(nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE)))
		r = kchain_add(k, c);
	nftnl_chain_free(c);
	return kstate_cb_end(k, r);
}

static struct kchain *kchain_find(struct kstate *k, const char *name)
{
	for (size_t i = 0; i < k->n_chains; i++)
		if (strcmp(k->chains[i].name, name) == 0)
			return &k->chains[i];
	return NULL;
}

static int krule_add(struct kstate *k, struct nftnl_rule *r)
{
	const char *chain = nftnl_rule_get_str(r, NFTNL_RULE_CHAIN);
	struct kchain *c = chain ? kchain_find(k, chain) : NULL;
	char *text;

	if (!c)
		return 0;   /* not in a chain we read: not compared */
	text = malloc(RULE_TEXT_MAX);
	if (!text || VEC_RESERVE(c->rules, c->cap_rules, c->n_rules + 1) < 0) {
		free(text);
		return -ENOMEM;
	}
	c->rules[c->n_rules++] = (char *)render_nl_rule_text(r, text, RULE_TEXT_MAX);
	return 0;
}

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct kstate *k = data;
	struct nftnl_rule *r;
	int ret = 0;

	if (!rule_exprs_named(nlh) || !rule_verdicts_ok(nlh) ||
	    !NAMES_TERMINATED(nlh, NFTA_RULE_TABLE, NFTA_RULE_CHAIN))
		return MNL_CB_OK;
	r = nftnl_rule_alloc();
	if (!r)
		return kstate_cb_end(k, -ENOMEM);
	if (nftnl_rule_nlmsg_parse(nlh, r) >= 0 && in_our_table(nftnl_rule_get_str(r, NFTNL_RULE_TABLE)))
		ret = krule_add(k, r);
	nftnl_rule_free(r);
	return kstate_cb_end(k, ret);
}

/* A dump (or get) request for our table's objects of one kind. */
static struct nlmsghdr *req_start(struct netns *ns, char *buf, uint16_t type, uint16_t flags)
{
	return nftnl_nlmsg_build_hdr(buf, type, NFPROTO_INET, flags, netns_seq_reserve(ns, 1));
}

static int req_table(struct netns *ns, struct kstate *k)
{
	char buf[REQ_BUF_SIZE] = { 0 };
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;
	int r;

	if (!t)
		return -ENOMEM;
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, TABLE_NAME);
	nlh = req_start(ns, buf, NFT_MSG_GETTABLE, 0);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	r = nl_request(ns, nlh, table_cb, k);
	return r == -ENOENT ? 0 : r;
}

static int req_objs(struct netns *ns, struct kstate *k, uint32_t type)
{
	char buf[REQ_BUF_SIZE] = { 0 };
	struct nftnl_obj *o = nftnl_obj_alloc();
	struct nlmsghdr *nlh;

	if (!o)
		return -ENOMEM;
	nftnl_obj_set_str(o, NFTNL_OBJ_TABLE, TABLE_NAME);
	if (type)
		nftnl_obj_set_u32(o, NFTNL_OBJ_TYPE, type);
	nlh = req_start(ns, buf, NFT_MSG_GETOBJ, NLM_F_DUMP);
	nftnl_obj_nlmsg_build_payload(nlh, o);
	nftnl_obj_free(o);
	return nl_request(ns, nlh, obj_cb, k);
}

/* Our table's sets (@x NULL, into @k), or the elements of set @x. */
static int req_sets(struct netns *ns, struct kstate *k, struct kset *x)
{
	char buf[REQ_BUF_SIZE] = { 0 };
	struct nftnl_set *s = nftnl_set_alloc();
	struct nlmsghdr *nlh;

	if (!s)
		return -ENOMEM;
	nftnl_set_set_str(s, NFTNL_SET_TABLE, TABLE_NAME);
	if (x) {
		nftnl_set_set_str(s, NFTNL_SET_NAME, x->name);
		nlh = req_start(ns, buf, NFT_MSG_GETSETELEM, NLM_F_DUMP);
		nftnl_set_elems_nlmsg_build_payload(nlh, s);
	} else {
		nlh = req_start(ns, buf, NFT_MSG_GETSET, NLM_F_DUMP);
		nftnl_set_nlmsg_build_payload(nlh, s);
	}
	nftnl_set_free(s);
	return x ? nl_request(ns, nlh, elem_cb, x) : nl_request(ns, nlh, set_cb, k);
}

static int req_chains(struct netns *ns, struct kstate *k)
{
	char buf[REQ_BUF_SIZE] = { 0 };
	struct nlmsghdr *nlh = req_start(ns, buf, NFT_MSG_GETCHAIN, NLM_F_DUMP);

	return nl_request(ns, nlh, chain_cb, k);
}

static int req_rules(struct netns *ns, struct kstate *k)
{
	char buf[REQ_BUF_SIZE] = { 0 };
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nlmsghdr *nlh;

	if (!r)
		return -ENOMEM;
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, TABLE_NAME);
	nlh = req_start(ns, buf, NFT_MSG_GETRULE, NLM_F_DUMP);
	nftnl_rule_nlmsg_build_payload(nlh, r);
	nftnl_rule_free(r);
	return nl_request(ns, nlh, rule_cb, k);
}

/* One consistent read: the generation is the same before and after. */
static int kstate_read(struct netns *ns, struct kstate *k, uint32_t *ret_gen)
{
	uint32_t g0, g1;
	int r = 0;

	for (int attempt = 0; attempt < READ_RETRIES; attempt++) {
		kstate_release(k);
		r = genid_read(ns, &g0);
		if (r == 0)
			r = req_table(ns, k);
		if (r == 0 && k->table) {
			r = req_objs(ns, k, 0);
			if (r == 0)
				r = req_sets(ns, k, NULL);
			for (size_t i = 0; r == 0 && i < k->n_sets; i++) {
				struct nl_set_spec seen;

				if (nl_seen_spec_find(k->sets[i].name, &seen))
					continue;   /* the kernel's, not compared */
				r = req_sets(ns, k, &k->sets[i]);
			}
			if (r == 0)
				r = req_chains(ns, k);
			if (r == 0)
				r = req_rules(ns, k);
		}
		if (k->error)
			r = k->error;
		if (r == 0)
			r = genid_read(ns, &g1);
		if (r == 0 && g0 == g1) {
			*ret_gen = g0;
			return 0;
		}
		if (r < 0 && r != -EINTR)   /* EINTR: the dump saw a change */
			break;
		r = -EAGAIN;
	}
	return r;
}

/* ---- comparison ---- */

struct report {
	char *text;
	size_t len, cap;
	size_t n_diffs;
	size_t elem_diffs;           /* of which missing/unexpected elements */
	int error;
};

static void __attribute__((format(printf, 2, 3))) diff(struct report *rep, const char *fmt, ...)
{
	char line[768];
	va_list ap;
	int n;

	rep->n_diffs++;
	if (rep->n_diffs > EP_REPORT_MAX_LINES || rep->error)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	if (VEC_RESERVE(rep->text, rep->cap, rep->len + (size_t)n + 2) < 0) {
		rep->error = -ENOMEM;
		return;
	}
	memcpy(rep->text + rep->len, line, (size_t)n);
	rep->len += (size_t)n;
	rep->text[rep->len++] = '\n';
	rep->text[rep->len] = '\0';
}

/* Compare chain @c's rules in the kernel with the @n rules rendered for it
 * (freed here); @text: a RULE_TEXT_MAX scratch buffer. */
static void chain_rules_compare(struct report *rep, const struct kchain *c,
				struct nftnl_rule **rules, size_t n, char *text)
{
	for (size_t i = 0; i < n; i++) {
		render_nl_rule_text(rules[i], text, RULE_TEXT_MAX);
		if (i >= c->n_rules)
			diff(rep, "chain %s: rule %zu is missing: %s", c->name, i + 1, text);
		else if (strcmp(text, c->rules[i]) != 0)
			diff(rep, "chain %s: rule %zu is %s, expected %s", c->name, i + 1,
			     c->rules[i], text);
		nftnl_rule_free(rules[i]);
	}
	for (size_t i = n; i < c->n_rules; i++)
		diff(rep, "chain %s: unexpected rule %zu: %s", c->name, i + 1, c->rules[i]);
}

static struct kset *kset_find(struct kstate *k, const char *name)
{
	for (size_t i = 0; i < k->n_sets; i++)
		if (strcmp(k->sets[i].name, name) == 0)
			return &k->sets[i];
	return NULL;
}

static struct kobj *kobj_find(struct kstate *k, const char *name, uint32_t type)
{
	for (size_t i = 0; i < k->n_objs; i++)
		if (k->objs[i].type == type && strcmp(k->objs[i].name, name) == 0)
			return &k->objs[i];
	return NULL;
}

static void key_decode(const struct nl_set_spec *s, const uint8_t *key, struct mseg_entry *e,
		       bool hi)
{
	struct mseg_addr *a = hi ? &e->hi : &e->lo;
	uint8_t alen = s->field_len[0];

	memset(a, 0, sizeof(*a));
	a->family = (uint8_t)s->family;
	if (s->kind == NL_SET_SLOT_PORTS) {
		/* a port set's element: the port range alone (nl_parts_build()) */
		uint16_t port = (uint16_t)(key[0] << 8 | key[1]);

		if (hi)
			e->port_hi = port;
		else
			e->port_lo = port;
		return;
	}
	memcpy(a->bytes, key, alen);
	if (s->n_fields >= 2)
		e->proto = key[alen];
	if (s->n_fields >= 3) {
		uint16_t port = (uint16_t)(key[alen + 4] << 8 | key[alen + 5]);

		if (hi)
			e->port_hi = port;
		else
			e->port_lo = port;
	}
}

static int kelem_cmp(const void *pa, const void *pb)
{
	const struct kelem *a = pa, *b = pb;
	int c = memcmp(a->key, b->key, sizeof(a->key));
	bool ea = a->flags & NFT_SET_ELEM_INTERVAL_END, eb = b->flags & NFT_SET_ELEM_INTERVAL_END;

	if (c)
		return c;
	return ea == eb ? 0 : ea ? -1 : 1;   /* an end before a start at one key */
}

static bool addr_dec(uint8_t *a, size_t n)
{
	for (size_t i = n; i-- > 0;)
		if (a[i]-- != 0)
			return true;
	return false;
}

/* The kernel's elements of @x as entries (sorted). */
static int kset_entries(const struct nl_set_spec *s, struct kset *x, struct mseg_entry **ret,
			size_t *ret_n)
{
	struct mseg_entry *v = calloc(x->n_elems ? x->n_elems : 1, sizeof(*v));
	size_t n = 0, alen = s->field_len[0];

	if (!v)
		return -ENOMEM;
	if (s->rbtree) {
		if (x->n_elems)
			qsort(x->elems, x->n_elems, sizeof(*x->elems), kelem_cmp);
		for (size_t i = 0; i < x->n_elems; i++) {
			const struct kelem *ke = &x->elems[i];
			struct mseg_entry *e = &v[n];

			if (ke->flags & NFT_SET_ELEM_INTERVAL_END)
				continue;   /* an end with no start (nft's leading 0) */
			key_decode(s, ke->key, e, false);
			if (i + 1 < x->n_elems) {
				/* up to the next element, end or start */
				uint8_t end[NL_KEY_MAX];

				memcpy(end, x->elems[i + 1].key, alen);
				addr_dec(end, alen);
				key_decode(s, end, e, true);
				if (x->elems[i + 1].flags & NFT_SET_ELEM_INTERVAL_END)
					i++;
			} else {
				uint8_t top[NL_KEY_MAX];

				memset(top, 0xff, alen);   /* open: to the top */
				key_decode(s, top, e, true);
			}
			n++;
		}
	} else {
		for (size_t i = 0; i < x->n_elems; i++) {
			const struct kelem *ke = &x->elems[i];

			key_decode(s, ke->key, &v[n], false);
			key_decode(s, ke->has_end ? ke->key_end : ke->key, &v[n], true);
			n++;
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	return addr_entry_cmp(a, b);
}

static void compare_elems(struct report *rep, const struct nl_set_spec *s, struct kset *x,
			  const struct mseg_entry *const *want, size_t n_want)
{
	struct mseg_entry *have = NULL;
	size_t n_have = 0, i = 0, j = 0;
	char el[RENDER_TEXT_ENTRY_MAX];
	int r;

	r = kset_entries(s, x, &have, &n_have);
	if (r < 0) {
		rep->error = r;
		return;
	}
	if (n_have) {
		size_t u = 1;

		qsort(have, n_have, sizeof(*have), entry_cmp);
		/* a dump that raced with a hash table resize may repeat elements */
		for (size_t k = 1; k < n_have; k++)
			if (addr_entry_cmp(&have[k], &have[u - 1]) != 0)
				have[u++] = have[k];
		n_have = u;
	}
	while (i < n_want || j < n_have) {
		int c = i == n_want ? 1 : j == n_have ? -1 : addr_entry_cmp(want[i], &have[j]);

		if (c < 0) {
			rep->elem_diffs++;
			diff(rep, "set %s: missing element %s", s->name,
			     nl_elem_text(s, want[i], el, sizeof(el)));
			i++;
		} else if (c > 0) {
			rep->elem_diffs++;
			diff(rep, "set %s: unexpected element %s", s->name,
			     nl_elem_text(s, &have[j], el, sizeof(el)));
			j++;
		} else {
			i++;
			j++;
		}
	}
	free(have);
}

static void compare(struct report *rep, struct kstate *k, const struct mseg_ep_plan *plan,
		    const struct table_opts *opts_in)
{
	struct nftnl_rule *rules[NL_RULES_PER_CHAIN];
	char *text = NULL;
	struct table_opts opts;
	bool want_table = ep_plan_has_table(plan);
	size_t expect_objs = 1;

	table_opts_normalize(&opts, opts_in);
	if (!want_table) {
		if (k->table)
			diff(rep, "table inet %s exists, but no direction is isolated", TABLE_NAME);
		return;
	}
	if (!k->table) {
		diff(rep, "table inet %s is missing", TABLE_NAME);
		return;
	}
	if (k->table_flags)
		diff(rep, "table inet %s has flags 0x%x (expected none)", TABLE_NAME, k->table_flags);

	/* objects */
	{
		struct kobj *o = kobj_find(k, "flood", NFT_OBJECT_LIMIT);

		if (!o)
			diff(rep, "limit flood is missing");
		else if (o->rate != opts.rate || o->unit != 1 || o->burst != opts.burst ||
			 o->ltype != NFT_LIMIT_PKTS || o->lflags != NFT_LIMIT_F_INV)
			diff(rep, "limit flood is %s%" PRIu64 "/%" PRIu64 "s burst %u (type %u), "
				  "expected rate over %u/second burst %u packets",
			     o->lflags & NFT_LIMIT_F_INV ? "over " : "", o->rate, o->unit, o->burst,
			     o->ltype, opts.rate, opts.burst);
	}
	for (int d = 0; d < MSEG_DIR_COUNT; d++) {
		if (!plan->dir[d].isolated)
			continue;
		for (int c = 0; c < 2; c++) {
			const char *cname = counter_names[d][c];

			expect_objs++;
			if (!kobj_find(k, cname, NFT_OBJECT_COUNTER))
				diff(rep, "counter %s is missing", cname);
		}
	}
	if (k->n_objs > expect_objs)
		for (size_t i = 0; i < k->n_objs; i++) {
			struct kobj *o = &k->objs[i];
			bool known = o->type == NFT_OBJECT_LIMIT && strcmp(o->name, "flood") == 0;

			for (int d = 0; d < MSEG_DIR_COUNT && !known; d++)
				for (int c = 0; c < 2; c++)
					if (o->type == NFT_OBJECT_COUNTER && plan->dir[d].isolated &&
					    strcmp(o->name, counter_names[d][c]) == 0)
						known = true;
			if (!known)
				diff(rep, "unexpected object %s (type %u)", o->name, o->type);
		}

	/* sets and elements */
	for (int d = 0; d < MSEG_DIR_COUNT; d++) {
		struct nl_parts parts;
		int r;

		if (!plan->dir[d].isolated)
			continue;
		r = nl_parts_build(&parts, &plan->dir[d]);
		if (r < 0) {
			rep->error = r;
			return;
		}
		nl_parts_sort(&parts);
		for (size_t i = 0; i < NL_SETS_PER_DIR; i++) {
			struct nl_set_spec s;
			struct kset *x;

			nl_set_spec_get((enum mseg_dir)d, i, &s);
			x = kset_find(k, s.name);
			if (!x) {
				diff(rep, "set %s is missing", s.name);
				continue;
			}
			if ((x->flags & ~(uint32_t)NFT_SET_EVAL) != s.flags || x->key_type != s.key_type ||
			    x->key_len != s.key_len) {
				diff(rep, "set %s has flags 0x%x type 0x%x length %u, expected flags "
					  "0x%x type 0x%x length %u",
				     s.name, x->flags, x->key_type, x->key_len, s.flags, s.key_type,
				     s.key_len);
				continue;
			}
			compare_elems(rep, &s, x, parts.v + parts.off[i],
				      parts.off[i + 1] - parts.off[i]);
		}
		nl_parts_release(&parts);
		/* the seen sets: their elements are the kernel's own */
		for (size_t i = 0; i < NL_SEEN_SETS_PER_DIR; i++) {
			struct nl_set_spec s;
			struct kset *x;

			nl_seen_spec_get((enum mseg_dir)d, i, &s);
			x = kset_find(k, s.name);
			if (!x)
				diff(rep, "set %s is missing", s.name);
			else if ((x->flags & ~(uint32_t)NFT_SET_EVAL) != (s.flags & ~(uint32_t)NFT_SET_EVAL) ||
				 x->key_type != s.key_type || x->key_len != s.key_len)
				diff(rep, "set %s has flags 0x%x type 0x%x length %u, expected flags "
					  "0x%x type 0x%x length %u",
				     s.name, x->flags, x->key_type, x->key_len, s.flags, s.key_type,
				     s.key_len);
		}
	}
	for (size_t i = 0; i < k->n_sets; i++) {
		struct nl_set_spec s;
		const char *name = k->sets[i].name;

		if (strncmp(name, "__set", 5) == 0)
			continue;   /* the anonymous sets of rules */
		if ((!nl_set_spec_find(name, &s) && !nl_seen_spec_find(name, &s)) ||
		    !plan->dir[s.dir].isolated)
			diff(rep, "unexpected set %s", name);
	}

	/* chains and rules */
	text = malloc(RULE_TEXT_MAX);
	if (!text) {
		rep->error = -ENOMEM;
		return;
	}
	for (int d = 0; d < MSEG_DIR_COUNT; d++) {
		const char *cname = d == MSEG_DIR_INGRESS ? "ingress" : "egress";
		uint32_t hook = d == MSEG_DIR_INGRESS ? NF_INET_LOCAL_IN : NF_INET_LOCAL_OUT;
		struct kchain *c;
		int r;

		if (!plan->dir[d].isolated)
			continue;
		c = kchain_find(k, cname);
		if (!c) {
			diff(rep, "chain %s is missing", cname);
			continue;
		}
		if (!c->base || c->hook != hook || c->prio != 0 || c->policy != NF_ACCEPT ||
		    strcmp(c->type, "filter") != 0)
			diff(rep, "chain %s is not 'type filter hook %s priority filter; policy "
				  "accept;'",
			     cname, d == MSEG_DIR_INGRESS ? "input" : "output");
		r = render_nl_chain_rules((enum mseg_dir)d, plan->dir[d].mode, &opts, rules);
		if (r < 0) {
			rep->error = r;
			break;
		}
		chain_rules_compare(rep, c, rules, NL_RULES_PER_CHAIN, text);
	}
	/* the seen chains the lookups go to */
	for (int d = 0; d < MSEG_DIR_COUNT && text; d++) {
		if (!plan->dir[d].isolated)
			continue;
		for (int fi = 0; fi < 2; fi++) {
			struct nftnl_rule *seen[NL_RULES_PER_SEEN_CHAIN];
			const char *cname = nl_seen_chain_name((enum mseg_dir)d, fi ? AF_INET6 : AF_INET);
			struct kchain *c = kchain_find(k, cname);
			int r;

			if (!c) {
				diff(rep, "chain %s is missing", cname);
				continue;
			}
			if (c->base)
				diff(rep, "chain %s has a hook (expected a regular chain)", cname);
			r = render_nl_seen_chain_rules((enum mseg_dir)d, fi ? AF_INET6 : AF_INET, seen);
			if (r < 0) {
				rep->error = r;
				break;
			}
			chain_rules_compare(rep, c, seen, NL_RULES_PER_SEEN_CHAIN, text);
		}
	}
	free(text);
	for (size_t i = 0; i < k->n_chains; i++) {
		const char *name = k->chains[i].name;
		bool known = (strcmp(name, "ingress") == 0 && plan->dir[MSEG_DIR_INGRESS].isolated) ||
			     (strcmp(name, "egress") == 0 && plan->dir[MSEG_DIR_EGRESS].isolated);

		for (int d = 0; d < MSEG_DIR_COUNT && !known; d++)
			known = plan->dir[d].isolated &&
				(strcmp(name, nl_seen_chain_name((enum mseg_dir)d, AF_INET)) == 0 ||
				 strcmp(name, nl_seen_chain_name((enum mseg_dir)d, AF_INET6)) == 0);

		if (!known)
			diff(rep, "unexpected chain %s", name);
	}
}

/* @rep (taken) as the caller's report, with the summary line. */
static int report_finish(struct report *rep, uint32_t gen, struct ep_table_report *ret,
			 struct mseg_err *err)
{
	if (rep->error) {
		free(rep->text);
		return err_setf(err, -rep->error, "out of memory");
	}
	if (rep->n_diffs > EP_REPORT_MAX_LINES) {
		char more[64];
		size_t n = (size_t)snprintf(more, sizeof(more), "... and %zu more differences\n",
					    rep->n_diffs - EP_REPORT_MAX_LINES);

		if (VEC_RESERVE(rep->text, rep->cap, rep->len + n + 1) == 0) {
			memcpy(rep->text + rep->len, more, n + 1);
			rep->len += n;
		}
	}
	if (!rep->text) {
		rep->text = strdup("");
		if (!rep->text)
			return err_setf(err, ENOMEM, "out of memory");
	}
	ret->in_sync = rep->n_diffs == 0;
	ret->n_diffs = rep->n_diffs;
	ret->text = rep->text;
	ret->genid = gen;
	return 0;
}

void ep_table_report_release(struct ep_table_report *rep)
{
	if (!rep)
		return;
	free(rep->text);
	memset(rep, 0, sizeof(*rep));
}

int ep_table_verify(struct netns *ns, const struct mseg_ep_plan *plan,
		    const struct table_opts *opts, struct ep_table_report *ret,
		    struct mseg_err *err)
{
	struct kstate k = { 0 };
	struct report rep = { 0 };
	uint32_t gen = 0;
	int r;

	memset(ret, 0, sizeof(*ret));
	for (int attempt = 0;; attempt++) {
		r = kstate_read(ns, &k, &gen);
		if (r < 0) {
			kstate_release(&k);
			return err_setf(err, -r, "netns %s: reading the table back: %s",
					netns_path(ns), strerror(-r));
		}
		compare(&rep, &k, plan, opts);
		kstate_release(&k);
		/* The kernel grows a hash set in the background after a large
		 * load, and an element dump that spans a resize can miss
		 * elements (the generation does not change). When elements
		 * are all that differs, look again before calling it drift. */
		if (rep.error || rep.n_diffs == 0 || rep.n_diffs != rep.elem_diffs ||
		    attempt >= ELEM_REREADS)
			break;
		free(rep.text);
		memset(&rep, 0, sizeof(rep));
		usleep(ELEM_REREAD_US * (useconds_t)(attempt + 1));
	}
	r = report_finish(&rep, gen, ret, err);
	if (r < 0)
		return r;
	if (ret->in_sync)
		ep_shape_of(&ns->programmed, plan, opts);   /* adopted */
	else
		ns->programmed.known = false;
	return 0;
}

int ep_table_counters_read(struct netns *ns, struct ep_table_counters *ret, struct mseg_err *err)
{
	struct kstate k = { 0 };
	int r;

	memset(ret, 0, sizeof(*ret));
	r = req_table(ns, &k);
	if (r == 0 && k.table)
		r = req_objs(ns, &k, NFT_OBJECT_COUNTER);
	if (r == 0 && k.error)
		r = k.error;
	if (r < 0) {
		kstate_release(&k);
		return err_setf(err, -r, "netns %s: reading counters: %s", netns_path(ns),
				strerror(-r));
	}
	for (int d = 0; d < MSEG_DIR_COUNT; d++) {
		struct kobj *o = kobj_find(&k, counter_names[d][0], NFT_OBJECT_COUNTER);
		struct kobj *inv = kobj_find(&k, counter_names[d][1], NFT_OBJECT_COUNTER);

		if (o) {
			ret->present[d] = true;
			ret->packets[d] = o->pkts;
			ret->bytes[d] = o->bytes;
		}
		if (inv)
			ret->invalid_packets[d] = inv->pkts;
	}
	kstate_release(&k);
	return 0;
}

/* ---- the seen sets ---- */

struct seen_ctx {
	const struct nl_set_spec *spec;
	struct ep_seen *v;
	size_t n, cap;
	int error;
};

static int seen_counter_cb(struct nftnl_expr *e, void *data)
{
	uint64_t *pkts = data;
	const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);

	if (name && strcmp(name, "counter") == 0)
		*pkts = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
	return 0;
}

static int seen_add(struct nftnl_set_elem *e, void *data)
{
	struct seen_ctx *c = data;
	const struct nl_set_spec *sp = c->spec;
	uint32_t len = 0;
	const uint8_t *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
	uint8_t alen = sp->field_len[0];
	uint64_t timeout = SEEN_SET_TIMEOUT_S * 1000ull, left = 0;
	struct ep_seen *x;

	if (!key || len != sp->key_len)
		return 0;
	if (VEC_RESERVE(c->v, c->cap, c->n + 1) < 0) {
		c->error = -ENOMEM;
		return MNL_CB_ERROR;
	}
	x = &c->v[c->n++];
	memset(x, 0, sizeof(*x));
	x->dir = sp->dir;
	x->peer.family = (uint8_t)sp->family;
	memcpy(x->peer.bytes, key, alen);
	x->proto = key[alen];
	if (sp->n_fields >= 3) {
		x->has_port = true;
		x->port = (uint16_t)(key[alen + 4] << 8 | key[alen + 5]);
	}
	nftnl_set_elem_expr_foreach(e, seen_counter_cb, &x->connections);
	if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_TIMEOUT))
		timeout = nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_TIMEOUT);
	if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_EXPIRATION))
		left = nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_EXPIRATION);
	x->idle_ms = timeout > left ? timeout - left : 0;
	return 0;
}

static int seen_elem_cb(const struct nlmsghdr *nlh, void *data)
{
	return elems_foreach(nlh, seen_add, data);
}

int ep_table_seen_read(struct netns *ns, ep_seen_fn fn, void *data, struct mseg_err *err)
{
	struct seen_ctx c = { 0 };
	int r = 0;

	for (int d = 0; d < MSEG_DIR_COUNT && r == 0; d++)
		for (size_t i = 0; i < NL_SEEN_SETS_PER_DIR && r == 0; i++) {
			char buf[REQ_BUF_SIZE] = { 0 };
			struct nftnl_set *s = nftnl_set_alloc();
			struct nl_set_spec spec;
			struct nlmsghdr *nlh;

			if (!s) {
				r = -ENOMEM;
				break;
			}
			nl_seen_spec_get((enum mseg_dir)d, i, &spec);
			nftnl_set_set_str(s, NFTNL_SET_TABLE, TABLE_NAME);
			nftnl_set_set_str(s, NFTNL_SET_NAME, spec.name);
			nlh = req_start(ns, buf, NFT_MSG_GETSETELEM, NLM_F_DUMP);
			nftnl_set_elems_nlmsg_build_payload(nlh, s);
			nftnl_set_free(s);
			c.spec = &spec;
			r = nl_request(ns, nlh, seen_elem_cb, &c);
			if (c.error)
				r = c.error;
			if (r == -ENOENT)
				r = 0;   /* no table, or the direction is not isolated */
		}
	for (size_t i = 0; i < c.n && r == 0; i++)
		r = fn(&c.v[i], data);
	free(c.v);
	if (r < 0)
		return err_setf(err, -r, "netns %s: reading the seen sets: %s", netns_path(ns),
				strerror(-r));
	return 0;
}

static int table_handle_cb(const struct nlmsghdr *nlh, void *data)
{
	uint64_t *handle = data;
	struct nftnl_table *t = nftnl_table_alloc();

	if (!t)
		return MNL_CB_ERROR;
	if (NAMES_TERMINATED(nlh, NFTA_TABLE_NAME) && nftnl_table_nlmsg_parse(nlh, t) >= 0 &&
	    in_our_table(nftnl_table_get_str(t, NFTNL_TABLE_NAME)) &&
	    nftnl_table_is_set(t, NFTNL_TABLE_HANDLE))
		*handle = nftnl_table_get_u64(t, NFTNL_TABLE_HANDLE);
	nftnl_table_free(t);
	return MNL_CB_OK;
}

int ep_table_handle_read(struct netns *ns, uint64_t *ret_handle, struct mseg_err *err)
{
	char buf[REQ_BUF_SIZE] = { 0 };
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;
	int r;

	*ret_handle = 0;
	if (!t)
		return err_setf(err, ENOMEM, "out of memory");
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, TABLE_NAME);
	nlh = req_start(ns, buf, NFT_MSG_GETTABLE, 0);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	r = nl_request(ns, nlh, table_handle_cb, ret_handle);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return err_setf(err, -r, "netns %s: reading the table: %s", netns_path(ns),
				strerror(-r));
	return 0;
}

/* ---- without a socket (tests, fuzzing) ---- */

int readback_parse_for_fuzz(const struct readback_msg *msgs, size_t n_msgs,
			    const struct mseg_ep_plan *plan, const struct table_opts *opts,
			    struct ep_table_report *ret, struct mseg_err *err)
{
	struct kstate k = { 0 };
	struct report rep = { 0 };
	uint32_t gen = 0;
	size_t n_elem_sets = 0;
	int r = 0;

	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i < n_msgs && r == 0; i++) {
		const struct readback_msg *m = &msgs[i];
		size_t len = nl_msgs_len(m->buf, m->len);

		/* as nl_request() runs the reply datagrams of each request */
		errno = 0;
		switch (m->kind) {
		case READBACK_GEN:
			r = mnl_cb_run(m->buf, len, 0, 0, gen_cb, &gen);
			break;
		case READBACK_TABLE:
			r = mnl_cb_run(m->buf, len, 0, 0, table_cb, &k);
			break;
		case READBACK_OBJS:
			r = mnl_cb_run(m->buf, len, 0, 0, obj_cb, &k);
			break;
		case READBACK_SETS:
			r = mnl_cb_run(m->buf, len, 0, 0, set_cb, &k);
			break;
		case READBACK_ELEMS:
			/* the elements of the sets in the order they were read;
			 * a set's dump ends with NLMSG_DONE (MNL_CB_STOP) */
			if (n_elem_sets < k.n_sets) {
				r = mnl_cb_run(m->buf, len, 0, 0, elem_cb, &k.sets[n_elem_sets]);
				if (r == MNL_CB_STOP)
					n_elem_sets++;
			}
			break;
		case READBACK_CHAINS:
			r = mnl_cb_run(m->buf, len, 0, 0, chain_cb, &k);
			break;
		case READBACK_RULES:
			r = mnl_cb_run(m->buf, len, 0, 0, rule_cb, &k);
			break;
		case READBACK_N_REPLIES:
			break;
		}
		r = r < 0 ? nl_cb_errno() : 0;
		if (k.error)
			r = k.error;
	}
	if (r < 0) {
		kstate_release(&k);
		return err_setf(err, -r, "reading the table back: %s", strerror(-r));
	}
	compare(&rep, &k, plan, opts);
	kstate_release(&k);
	return report_finish(&rep, gen, ret, err);
}
