/* render_text: plan -> nft text, the table layout of docs/ruleset.md. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "mseg/model/addr.h"
#include "mseg/compile/render_text.h"
#include "mseg/model/selector.h"

static const char *const shape_suffix[SHAPE_COUNT] = {
	[SHAPE_PORT] = "port",
	[SHAPE_PORT_IV] = "port_iv",
	[SHAPE_PROTO] = "proto",
	[SHAPE_PROTO_IV] = "proto_iv",
	[SHAPE_ANY] = "any",
	[SHAPE_ANY_IV] = "any_iv",
};

static const int family_order[2] = { AF_INET, AF_INET6 };

const char *render_text_set_name(char *buf, size_t size, enum mseg_dir dir, int family,
				 enum entry_shape shape)
{
	snprintf(buf, size, "%s%d_%s", dir == MSEG_DIR_INGRESS ? "in" : "out",
		 family == AF_INET6 ? 6 : 4, shape_suffix[shape]);
	return buf;
}

const char *render_text_proto(uint8_t proto, char *buf, size_t size)
{
	const char *name = NULL;

	switch (proto) {
	case IPPROTO_TCP:
		name = "tcp";
		break;
	case IPPROTO_UDP:
		name = "udp";
		break;
	case IPPROTO_SCTP:
		name = "sctp";
		break;
	case IPPROTO_UDPLITE:
		name = "udplite";
		break;
	case IPPROTO_ICMP:
		name = "icmp";
		break;
	case IPPROTO_ICMPV6:
		name = "ipv6-icmp";
		break;
	}
	if (name)
		snprintf(buf, size, "%s", name);
	else
		snprintf(buf, size, "%u", proto);
	return buf;
}

typedef unsigned __int128 u128;

/* Prefix length when [lo, hi] is exactly one prefix, else -1. */
static int range_prefix_len(const struct mseg_addr *lo, const struct mseg_addr *hi)
{
	unsigned bits = lo->family == AF_INET6 ? 128 : 32;
	u128 l = addr_u128(lo), h = addr_u128(hi), mask = l ^ h;
	unsigned host = 0;

	if ((mask & (mask + 1)) != 0 || (l & mask) != 0)
		return -1;
	while (host < 128 && (mask >> host) & 1)
		host++;
	return (int)(bits - host);
}

static void addr_text(const struct mseg_addr *a, char *buf, size_t size)
{
	if (!inet_ntop(a->family == AF_INET6 ? AF_INET6 : AF_INET, a->bytes, buf, (socklen_t)size))
		snprintf(buf, size, "?");
}

const char *render_text_entry(const struct mseg_entry *e, char *buf, size_t size)
{
	char lo[INET6_ADDRSTRLEN], hi[INET6_ADDRSTRLEN], addr[2 * INET6_ADDRSTRLEN + 8];
	char proto[16];
	enum entry_shape shape = entry_shape(e);

	addr_text(&e->lo, lo, sizeof(lo));
	if (memcmp(e->lo.bytes, e->hi.bytes, sizeof(e->lo.bytes)) == 0) {
		snprintf(addr, sizeof(addr), "%s", lo);
	} else {
		int plen = range_prefix_len(&e->lo, &e->hi);

		if (plen >= 0) {
			snprintf(addr, sizeof(addr), "%s/%d", lo, plen);
		} else {
			addr_text(&e->hi, hi, sizeof(hi));
			snprintf(addr, sizeof(addr), "%s-%s", lo, hi);
		}
	}

	switch (shape) {
	case SHAPE_PORT:
	case SHAPE_PORT_IV:
		render_text_proto(e->proto, proto, sizeof(proto));
		if (e->port_lo == e->port_hi)
			snprintf(buf, size, "%s . %s . %u", addr, proto, e->port_lo);
		else
			snprintf(buf, size, "%s . %s . %u-%u", addr, proto, e->port_lo,
				 e->port_hi);
		break;
	case SHAPE_PROTO:
	case SHAPE_PROTO_IV:
		snprintf(buf, size, "%s . %s", addr, render_text_proto(e->proto, proto, sizeof(proto)));
		break;
	case SHAPE_ANY:
	case SHAPE_ANY_IV:
		snprintf(buf, size, "%s", addr);
		break;
	}
	return buf;
}

int render_text_header(FILE *f, const struct mseg_endpoint *ep)
{
	fprintf(f, "# endpoint %s (%s/%s) netns %s\n", ep->id ? ep->id : "-",
		selector_ns_name(ep->ns), ep->name ? ep->name : "-",
		ep->netns ? ep->netns : "-");
	return ferror(f) ? -EIO : 0;
}

/* set in4_port { type ...; flags interval; elements = { ... } } */
static void print_set(FILE *f, const struct mseg_dir_plan *dp, enum mseg_dir dir, int family,
		      enum entry_shape shape)
{
	const char *addr_type = family == AF_INET6 ? "ipv6_addr" : "ipv4_addr";
	char name[RENDER_TEXT_SET_NAME_MAX], el[RENDER_TEXT_ENTRY_MAX];
	bool first = true;

	fprintf(f, "\tset %s {\n", render_text_set_name(name, sizeof(name), dir, family, shape));
	switch (shape) {
	case SHAPE_PORT:
	case SHAPE_PORT_IV:
		fprintf(f, "\t\ttype %s . inet_proto . inet_service\n", addr_type);
		break;
	case SHAPE_PROTO:
	case SHAPE_PROTO_IV:
		fprintf(f, "\t\ttype %s . inet_proto\n", addr_type);
		break;
	case SHAPE_ANY:
	case SHAPE_ANY_IV:
		fprintf(f, "\t\ttype %s\n", addr_type);
		break;
	}
	if (shape_is_interval(shape))
		fprintf(f, "\t\tflags interval\n");
	for (size_t i = 0; i < dp->n_entries; i++) {
		const struct mseg_entry *e = &dp->entries[i];

		if (e->lo.family != family || entry_shape(e) != shape)
			continue;
		fprintf(f, "%s\t\t\t%s", first ? "\t\telements = {\n" : ",\n",
			render_text_entry(e, el, sizeof(el)));
		first = false;
	}
	if (!first)
		fprintf(f, "\n\t\t}\n");
	fprintf(f, "\t}\n\n");
}

/* set in4_seen_port { type ...; size 4096; flags dynamic,timeout; counter;
 * timeout 86400s; }: the new connections the kernel saw, filled by the chain */
static void print_seen_set(FILE *f, enum mseg_dir dir, int family, bool port)
{
	fprintf(f, "\tset %s%d_seen_%s {\n", dir == MSEG_DIR_INGRESS ? "in" : "out",
		family == AF_INET6 ? 6 : 4, port ? "port" : "proto");
	fprintf(f, "\t\ttype %s . inet_proto%s\n", family == AF_INET6 ? "ipv6_addr" : "ipv4_addr",
		port ? " . inet_service" : "");
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
	char name[RENDER_TEXT_SET_NAME_MAX];

	fprintf(f, "\tchain %s {\n", in ? "ingress" : "egress");
	fprintf(f, "\t\ttype filter hook %s priority filter; policy accept;\n",
		in ? "input" : "output");
	fprintf(f, "\t\tct state established,related accept\n");
	fprintf(f, "\t\tct state invalid counter name \"%s_invalid\" drop\n", in ? "in" : "out");
	fprintf(f, "\t\t%s \"lo\" accept\n", in ? "iif" : "oif");
	fprintf(f, "\t\ticmpv6 type { mld-listener-query, mld-listener-report, mld-listener-done, "
		   "nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, "
		   "nd-redirect, mld2-listener-report } accept\n");
	for (int fi = 0; fi < 2; fi++) {
		const char *l3 = family_order[fi] == AF_INET6 ? "ip6" : "ip";
		const char *d = in ? "in" : "out";
		int v = family_order[fi] == AF_INET6 ? 6 : 4;

		for (int si = 0; si < SHAPE_COUNT; si++) {
			enum entry_shape s = (enum entry_shape)si;

			render_text_set_name(name, sizeof(name), dir, family_order[fi], s);
			switch (s) {
			case SHAPE_PORT:
			case SHAPE_PORT_IV:
				fprintf(f, "\t\t%s %s . meta l4proto . th dport @%s goto %s%d_seen\n",
					l3, addr, name, d, v);
				break;
			case SHAPE_PROTO:
			case SHAPE_PROTO_IV:
				fprintf(f, "\t\t%s %s . meta l4proto @%s goto %s%d_seen\n", l3, addr,
					name, d, v);
				break;
			case SHAPE_ANY:
			case SHAPE_ANY_IV:
				fprintf(f, "\t\t%s %s @%s goto %s%d_seen\n", l3, addr, name, d, v);
				break;
			}
		}
	}
	print_queue(f, dp, dir, opts);
	fprintf(f, "\t}\n");
}

int render_text_table(FILE *f, const struct mseg_ep_plan *ep, const struct table_opts *opts_in)
{
	struct table_opts norm;
	const struct table_opts *opts = &norm;
	bool any = false, first_chain = true;

	table_opts_normalize(&norm, opts_in);
	for (int d = 0; d < MSEG_DIR_COUNT; d++)
		any |= ep->dir[d].isolated;
	if (!any) {
		fprintf(f, "# not isolated: no table\n");
		return ferror(f) ? -EIO : 0;
	}

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
		for (int fi = 0; fi < 2; fi++)
			for (int si = 0; si < SHAPE_COUNT; si++)
				print_set(f, &ep->dir[d], (enum mseg_dir)d, family_order[fi],
					  (enum entry_shape)si);
		for (int fi = 0; fi < 2; fi++) {
			print_seen_set(f, (enum mseg_dir)d, family_order[fi], true);
			print_seen_set(f, (enum mseg_dir)d, family_order[fi], false);
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
	return ferror(f) ? -EIO : 0;
}

int render_text_plan(FILE *f, const struct mseg_plan *plan, const struct table_opts *opts)
{
	int r;

	for (size_t i = 0; i < plan->n_eps; i++) {
		if (i)
			fprintf(f, "\n");
		r = render_text_header(f, plan->eps[i].ep);
		if (r < 0)
			return r;
		r = render_text_table(f, &plan->eps[i], opts);
		if (r < 0)
			return r;
	}
	return ferror(f) ? -EIO : 0;
}
