/* render_text: the pieces of nft text the table text (kernel/table_text.c),
 * the API and the CLI share: set names, protocols, elements, the endpoint
 * header. */
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
