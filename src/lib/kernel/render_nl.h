/* Private to the kernel backend: the table of docs/ruleset.md as libnftnl
 * objects and netlink messages, and the byte layout of set element keys. */
#ifndef MSEG_RENDER_NL_H
#define MSEG_RENDER_NL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mseg/model/addr.h"
#include "mseg/model/plan.h"
#include "kernel/slots.h"

struct nl_batch;
struct nftnl_rule;

/* nft datatype ids (nftables include/datatype.h), so that `nft list` prints
 * our sets as it prints its own; a concatenation folds them 6 bits apart. */
#define NFT_TYPE_IPADDR 7
#define NFT_TYPE_IP6ADDR 8
#define NFT_TYPE_INET_PROTOCOL 12
#define NFT_TYPE_INET_SERVICE 13
#define NFT_TYPE_ICMP6_TYPE 29
#define NFT_TYPE_BITS 6
/* nft's byte order ids in set user data */
#define NFT_BYTEORDER_INVALID 0
#define NFT_BYTEORDER_BIG_ENDIAN 2

/* ipv6 16 + protocol 4 + port 4 */
#define NL_KEY_MAX 24
/* per family: the 6 shape sets and the 2 sets of each port-range slot */
#define NL_SETS_PER_FAMILY (SHAPE_COUNT + 2 * NL_SLOTS)
#define NL_SETS_PER_DIR (2 * NL_SETS_PER_FAMILY)
#define NL_SEEN_SETS_PER_DIR 4       /* 2 families x (port, proto) */
/* per family a lookup rule for each shape set and one for each slot */
#define NL_LOOKUPS_PER_DIR (2 * (SHAPE_COUNT + NL_SLOTS))
#define NL_RULES_PER_CHAIN (4 + NL_LOOKUPS_PER_DIR + 2)   /* + limit, queue step */
#define NL_RULES_PER_SEEN_CHAIN 3    /* seen port, seen proto, accept */

/* What a set holds. */
enum nl_set_kind {
	NL_SET_SHAPE,                /* the entries of one shape ("in4_port_iv") */
	NL_SET_SLOT_ADDR,            /* a slot's peer addresses with their protocol
					("in4_range0": ipv4_addr . inet_proto, hash) */
	NL_SET_SLOT_PORTS,           /* a slot's port ranges ("in4_range0_ports":
					inet_service, interval) */
};

/* One of the sets of an isolated direction. */
struct nl_set_spec {
	const char *name;            /* "in4_port" */
	enum mseg_dir dir;
	int family;                  /* AF_INET, AF_INET6 */
	enum nl_set_kind kind;
	unsigned slot;               /* NL_SET_SLOT_*: which slot */
	enum entry_shape shape;      /* NL_SET_SHAPE: which shape */
	uint32_t flags;              /* NFT_SET_INTERVAL, NFT_SET_CONCAT */
	uint32_t key_type;           /* nft datatype (folded for concatenations) */
	uint32_t key_len;            /* bytes; each field padded to 4 */
	uint32_t key_byteorder;      /* user data for nft */
	uint8_t field_len[3];        /* unpadded field lengths */
	uint8_t n_fields;
	bool rbtree;                 /* interval without concatenation: an interval is
					a start element and an end element (hi + 1) */
	bool seen;                   /* a "seen" set: dynamic, timeout, counter */
};

/* Set @i (0..NL_SETS_PER_DIR-1) of direction @dir, in table order: ip
 * family first, then port, port_iv, range0, range0_ports, range1,
 * range1_ports, proto, proto_iv, any, any_iv. */
void nl_set_spec_get(enum mseg_dir dir, size_t i, struct nl_set_spec *ret);
/* Index of the set of (@family, @shape), or -1. */
int nl_set_index(int family, enum entry_shape shape);
/* Index of slot @slot's address set (@ports false) or port set, or -1. */
int nl_slot_set_index(int family, unsigned slot, bool ports);
/* By name; false when no set has it. */
bool nl_set_spec_find(const char *name, struct nl_set_spec *ret);
/* Seen set @i (0..NL_SEEN_SETS_PER_DIR-1) of direction @dir: ip port, ip
 * proto, ip6 port, ip6 proto ("in4_seen_port": shape SHAPE_PORT or
 * SHAPE_PROTO keys, flags dynamic|timeout). */
void nl_seen_spec_get(enum mseg_dir dir, size_t i, struct nl_set_spec *ret);
/* By name; false when no seen set has it. */
bool nl_seen_spec_find(const char *name, struct nl_set_spec *ret);

/* One kernel set element. */
struct nl_elem {
	uint8_t key[NL_KEY_MAX];
	uint8_t key_end[NL_KEY_MAX];
	uint32_t key_len;
	bool has_key_end;            /* concatenated interval: KEY .. KEY_END */
	uint32_t flags;              /* NFT_SET_ELEM_INTERVAL_END (rbtree end element) */
	bool open;                   /* rbtree start whose interval reaches the top
					address (there is no end element) */
};

/* The key of @e in set @s: the low (@hi false) or high end of each field. */
size_t nl_entry_key(const struct nl_set_spec *s, const struct mseg_entry *e, bool hi,
		    uint8_t *buf);

/* The kernel elements of @e in @s (1 or 2); 0 when @e does not belong in @s.
 * The elements of the slot sets are entries too (nl_parts_build() makes
 * them): an address set's is the address with its protocol (ports 0), a
 * port set's the port range (address 0 of the family, protocol 0). */
size_t nl_entry_elems(const struct nl_set_spec *s, const struct mseg_entry *e,
		      struct nl_elem out[2]);

/* An element of @s as nft prints it: "10.0.0.0/8 . tcp . 80-90",
 * "10.0.0.1 . tcp" (a slot's address set), "8000-8100" (its port set).
 * Returns @buf (at least RENDER_TEXT_ENTRY_MAX bytes make room). */
const char *nl_elem_text(const struct nl_set_spec *s, const struct mseg_entry *e, char *buf,
			 size_t size);

/* ---- messages into a batch ---- */

/* add table inet mseg; delete table inet mseg  (whatever was there is gone) */
int render_nl_table_remove(struct nl_batch *b);

/* The whole table of @plan (which isolates at least one direction), after
 * removing whatever was there: add, delete, add table, then the limit,
 * counters, sets with their elements, chains and rules. */
int render_nl_table_replace(struct nl_batch *b, const struct mseg_ep_plan *plan,
			    const struct table_opts *opts);

/* The element image of a direction, by set: v[off[i] .. off[i + 1]) are
 * the elements of set i (nl_set_spec_get() order). A shape set's are the
 * plan's own entries (in plan order); the slot sets' are made here
 * (slots_assign(): the range entries of a single address whose signature
 * got a slot leave *_port_iv for the slot's two sets) and kept in @synth,
 * in addr_entry_cmp() order, with the provenance of an entry that made
 * them. */
struct nl_parts {
	const struct mseg_entry **v;
	size_t off[NL_SETS_PER_DIR + 1];
	struct mseg_entry *synth;
};

/* -EINVAL when an entry belongs to no set (bad family); -ENOMEM. */
int nl_parts_build(struct nl_parts *p, const struct mseg_dir_plan *dp);
/* The same restricted to the SHAPE_PORT_IV entries of @family of @dp:
 * only that family's port_iv and slot sets have elements. With @choice
 * (slots_choose() of the whole direction), the slots take its signatures
 * instead of choosing from @dp's entries: @dp may then be a part of a
 * direction's entries (whole (address, protocol) groups). */
int nl_parts_build_ranges(struct nl_parts *p, const struct mseg_dir_plan *dp, int family,
			  const struct slot_assign *choice);
void nl_parts_release(struct nl_parts *p);
/* Sort every group by addr_entry_cmp() (a linear check when already sorted). */
void nl_parts_sort(struct nl_parts *p);

/* Element messages adding (@del false) or deleting the entries @ents[0..n)
 * (all of set @s) in as many messages as their size needs. @set_id
 * refers to a set created in the same batch (0: by name). */
int render_nl_elems(struct nl_batch *b, const struct nl_set_spec *s, uint32_t set_id,
		    const struct mseg_entry *const *ents, size_t n, bool del);

/* The rules of the chain of direction @dir, as libnftnl objects (the
 * anonymous set of the neighbour discovery rule is named "__set%d");
 * @ret_rules gets NL_RULES_PER_CHAIN rules; free them with
 * nftnl_rule_free(). */
int render_nl_chain_rules(enum mseg_dir dir, enum mseg_mode mode, const struct table_opts *opts,
			  struct nftnl_rule **ret_rules);

/* The name of the chain the allow lookups of (@dir, @family) go to:
 * "in4_seen", "out6_seen". */
const char *nl_seen_chain_name(enum mseg_dir dir, int family);

/* The rules of that chain (NL_RULES_PER_SEEN_CHAIN, the protocol sets
 * named "__set%d"):
 *   meta l4proto { tcp, udp, sctp, udplite } update @in4_seen_port { ip saddr . meta l4proto . th dport }
 *   meta l4proto != { tcp, udp, sctp, udplite } update @in4_seen_proto { ip saddr . meta l4proto }
 *   accept */
int render_nl_seen_chain_rules(enum mseg_dir dir, int family, struct nftnl_rule **ret_rules);

/* For the probe (in a throwaway namespace): the table, a base chain on
 * input, and a rule holding just the queue step of @opts (mode @audit). */
int render_nl_probe_queue(struct nl_batch *b, const struct table_opts *opts, bool audit);
/* For the probe: the table and a concatenated interval set with one element. */
int render_nl_probe_concat(struct nl_batch *b);

/* The expression list of a rule as text, one "[ ... ]" per expression
 * (libnftnl's format, anonymous set names as "__set%d", target info in
 * hex): what readback compares. Returns @buf. */
const char *render_nl_rule_text(const struct nftnl_rule *r, char *buf, size_t size);

#endif
