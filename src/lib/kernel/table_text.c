/* table_text: plan -> nft text of the table, set by set from the netlink
 * renderer's layout (nl_set_spec_get(), nl_parts_build()), so that the text
 * and what goes to the kernel cannot disagree on which set an element is
 * in. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/netfilter/nf_tables.h>

#include "mseg/compile/render_text.h"
#include "mseg/kernel/table_text.h"
#include "kernel/render_nl.h"

static const char *addr_type(int family)
{
	return family == AF_INET6 ? "ipv6_addr" : "ipv4_addr";
}

/* set in4_port { type ...; [flags interval;] elements = { ... } } */
static void print_set(FILE *f, const struct nl_set_spec *s, const struct mseg_entry *const *v,
		      size_t n)
{
	char el[RENDER_TEXT_ENTRY_MAX];

	fprintf(f, "\tset %s {\n", s->name);
	if (s->kind == NL_SET_SLOT_PORTS)
		fprintf(f, "\t\ttype inet_service\n");
	else if (s->n_fields == 3)
		fprintf(f, "\t\ttype %s . inet_proto . inet_service\n", addr_type(s->family));
	else if (s->n_fields == 2)
		fprintf(f, "\t\ttype %s . inet_proto\n", addr_type(s->family));
	else
		fprintf(f, "\t\ttype %s\n", addr_type(s->family));
	if (s->flags & NFT_SET_INTERVAL)
		fprintf(f, "\t\tflags interval\n");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s\t\t\t%s", i == 0 ? "\t\telements = {\n" : ",\n",
			nl_elem_text(s, v[i], el, sizeof(el)));
	if (n)
		fprintf(f, "\n\t\t}\n");
	fprintf(f, "\t}\n\n");
}

/* set in4_seen_port { type ...; size 4096; flags dynamic,timeout; counter;
 * timeout 86400s; }: the new connections the kernel saw, filled by the chain */
static void print_seen_set(FILE *f, const struct nl_set_spec *s)
{
	fprintf(f, "\tset %s {\n", s->name);
	fprintf(f, "\t\ttype %s . inet_proto%s\n", addr_type(s->family),
		s->n_fields == 3 ? " . inet_service" : "");
	fprintf(f, "\t\tsize %u\n\t\tflags dynamic,timeout\n\t\tcounter\n\t\ttimeout %us\n\t}\n\n",
		SEEN_SET_SIZE, SEEN_SET_TIMEOUT_S);
}

/* The unmatched tail of a chain: rate limit, then the queue step. */
static void print_queue(FILE *f, const struct mseg_dir_plan *dp, enum mseg_dir dir,
			const struct table_opts *opts)
{
	bool audit = dp->mode == MSEG_MODE_AUDIT;

	/* limit name "flood" counter name "in_overlimit" drop */
	fprintf(f, "\t\tlimit name \"flood\" counter name \"%s_overlimit\" %s\n",
		dir == MSEG_DIR_INGRESS ? "in" : "out", audit ? "accept" : "drop");
	switch (opts->queue) {
	case QUEUE_NATIVE:
	case QUEUE_XT:
		/* queue num 0 [bypass] */
		fprintf(f, "\t\tqueue num %u%s\n", opts->queue_num, audit ? " bypass" : "");
		break;
	case QUEUE_NFLOG:
		/* log group 0 drop|accept */
		fprintf(f, "\t\tlog group %u %s\n", opts->queue_num, audit ? "accept" : "drop");
		break;
	}
}

/* chain in4_seen { ... }: where the allow lookups go; every new
 * connection admitted is aggregated in the kernel, then accepted */
static void print_seen_chain(FILE *f, enum mseg_dir dir, int family)
{
	bool in = dir == MSEG_DIR_INGRESS;
	const char *d = in ? "in" : "out", *addr = in ? "saddr" : "daddr";
	const char *l3 = family == AF_INET6 ? "ip6" : "ip";
	int v = family == AF_INET6 ? 6 : 4;

	fprintf(f, "\tchain %s%d_seen {\n", d, v);
	fprintf(f, "\t\tmeta l4proto { tcp, udp, sctp, udplite } update @%s%d_seen_port "
		   "{ %s %s . meta l4proto . th dport }\n", d, v, l3, addr);
	fprintf(f, "\t\tmeta l4proto != { tcp, udp, sctp, udplite } update @%s%d_seen_proto "
		   "{ %s %s . meta l4proto }\n", d, v, l3, addr);
	fprintf(f, "\t\taccept\n\t}\n\n");
}

static void print_chain(FILE *f, const struct mseg_dir_plan *dp, enum mseg_dir dir,
			const struct table_opts *opts)
{
	bool in = dir == MSEG_DIR_INGRESS;
	const char *addr = in ? "saddr" : "daddr";

	fprintf(f, "\tchain %s {\n", in ? "ingress" : "egress");
	fprintf(f, "\t\ttype filter hook %s priority filter; policy accept;\n",
		in ? "input" : "output");
	fprintf(f, "\t\tct state established,related accept\n");
	fprintf(f, "\t\tct state invalid counter name \"%s_invalid\" drop\n", in ? "in" : "out");
	fprintf(f, "\t\t%s \"lo\" accept\n", in ? "iif" : "oif");
	fprintf(f, "\t\ticmpv6 type { mld-listener-query, mld-listener-report, mld-listener-done, "
		   "nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, "
		   "nd-redirect, mld2-listener-report } accept\n");
	/* one lookup per set in table order, a slot's two sets in one rule */
	for (size_t i = 0; i < NL_SETS_PER_DIR; i++) {
		struct nl_set_spec s, ports;
		const char *l3;

		nl_set_spec_get(dir, i, &s);
		l3 = s.family == AF_INET6 ? "ip6" : "ip";
		if (s.kind == NL_SET_SLOT_ADDR) {
			nl_set_spec_get(dir, ++i, &ports);
			fprintf(f, "\t\t%s %s . meta l4proto @%s th dport @%s goto %s\n", l3, addr,
				s.name, ports.name, nl_seen_chain_name(dir, s.family));
		} else if (s.n_fields == 3) {
			fprintf(f, "\t\t%s %s . meta l4proto . th dport @%s goto %s\n", l3, addr,
				s.name, nl_seen_chain_name(dir, s.family));
		} else if (s.n_fields == 2) {
			fprintf(f, "\t\t%s %s . meta l4proto @%s goto %s\n", l3, addr, s.name,
				nl_seen_chain_name(dir, s.family));
		} else {
			fprintf(f, "\t\t%s %s @%s goto %s\n", l3, addr, s.name,
				nl_seen_chain_name(dir, s.family));
		}
	}
	print_queue(f, dp, dir, opts);
	fprintf(f, "\t}\n");
}

int table_text_render(FILE *f, const struct mseg_ep_plan *ep, const struct table_opts *opts_in)
{
	struct nl_parts parts[MSEG_DIR_COUNT] = { 0 };
	struct table_opts norm;
	const struct table_opts *opts = &norm;
	bool any = false, first_chain = true;
	int r = 0;

	table_opts_normalize(&norm, opts_in);
	for (int d = 0; d < MSEG_DIR_COUNT; d++)
		any |= ep->dir[d].isolated;
	if (!any) {
		fprintf(f, "# not isolated: no table\n");
		return ferror(f) ? -EIO : 0;
	}
	for (int d = 0; d < MSEG_DIR_COUNT && r == 0; d++)
		if (ep->dir[d].isolated) {
			r = nl_parts_build(&parts[d], &ep->dir[d]);
			if (r == 0)
				nl_parts_sort(&parts[d]);
		}
	if (r < 0)
		goto out_release;

	fprintf(f, "table inet %s {\n", TABLE_NAME);
	fprintf(f, "\tlimit flood {\n\t\trate over %u/second burst %u packets\n\t}\n\n",
		opts->rate, opts->burst);
	for (int d = 0; d < MSEG_DIR_COUNT; d++)
		if (ep->dir[d].isolated)
			fprintf(f, "\tcounter %s_overlimit {\n\t}\n\n",
				d == MSEG_DIR_INGRESS ? "in" : "out");
	for (int d = 0; d < MSEG_DIR_COUNT; d++)
		if (ep->dir[d].isolated)
			fprintf(f, "\tcounter %s_invalid {\n\t}\n\n",
				d == MSEG_DIR_INGRESS ? "in" : "out");
	for (int d = 0; d < MSEG_DIR_COUNT; d++) {
		if (!ep->dir[d].isolated)
			continue;
		for (size_t i = 0; i < NL_SETS_PER_DIR; i++) {
			struct nl_set_spec s;

			nl_set_spec_get((enum mseg_dir)d, i, &s);
			print_set(f, &s, parts[d].v + parts[d].off[i],
				  parts[d].off[i + 1] - parts[d].off[i]);
		}
		for (size_t i = 0; i < NL_SEEN_SETS_PER_DIR; i++) {
			struct nl_set_spec s;

			nl_seen_spec_get((enum mseg_dir)d, i, &s);
			print_seen_set(f, &s);
		}
	}
	for (int d = 0; d < MSEG_DIR_COUNT; d++) {
		if (!ep->dir[d].isolated)
			continue;
		if (!first_chain)
			fprintf(f, "\n");
		print_seen_chain(f, (enum mseg_dir)d, AF_INET);
		print_seen_chain(f, (enum mseg_dir)d, AF_INET6);
		print_chain(f, &ep->dir[d], (enum mseg_dir)d, opts);
		first_chain = false;
	}
	fprintf(f, "}\n");
	r = ferror(f) ? -EIO : 0;
out_release:
	for (int d = 0; d < MSEG_DIR_COUNT; d++)
		nl_parts_release(&parts[d]);
	return r;
}

int table_text_render_plan(FILE *f, const struct mseg_plan *plan, const struct table_opts *opts)
{
	int r;

	for (size_t i = 0; i < plan->n_eps; i++) {
		if (i)
			fprintf(f, "\n");
		r = render_text_header(f, plan->eps[i].ep);
		if (r < 0)
			return r;
		r = table_text_render(f, &plan->eps[i], opts);
		if (r < 0)
			return r;
	}
	return ferror(f) ? -EIO : 0;
}
