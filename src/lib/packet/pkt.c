/* The packet parser (see include/mseg/pkt.h).
 *
 * Every read goes through the bounds kept in struct cur: `cap` is how many
 * bytes we hold, `end` how many belong to the current header stack (the IP
 * length, itself checked against the packet length). A header reaching past
 * `end` is malformed; one within `end` but past `cap` is a short capture. */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "mseg/model/plan.h"
#include "mseg/packet/pkt.h"

#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif
#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif

static const char *const err_names[PKT_E_COUNT] = {
	[PKT_OK] = "",
	[PKT_E_EMPTY] = "empty packet",
	[PKT_E_VERSION] = "unknown ip version",
	[PKT_E_IP_TRUNC] = "truncated ip header",
	[PKT_E_IHL] = "bad ipv4 header length",
	[PKT_E_TOTLEN] = "bad ip total length",
	[PKT_E_IPOPT] = "bad ipv4 option",
	[PKT_E_EXTHDR] = "bad ipv6 extension header",
	[PKT_E_EXT_LIMIT] = "too many ipv6 extension headers",
	[PKT_E_HOPOPT] = "ipv6 hop-by-hop options not first",
	[PKT_E_FRAG] = "first fragment without l4 header",
	[PKT_E_L4_TRUNC] = "truncated l4 header",
	[PKT_E_TCP_DOFF] = "bad tcp data offset",
	[PKT_E_UDP_LEN] = "bad udp length",
	[PKT_E_SHORT_CAPTURE] = "short capture",
};

const char *pkt_err_name(enum pkt_err err)
{
	if ((unsigned)err >= PKT_E_COUNT)
		return "unknown error";
	return err_names[err];
}

static const struct {
	uint8_t proto;
	const char *name;
} proto_names[] = {
	{ IPPROTO_TCP, "tcp" },         { IPPROTO_UDP, "udp" },
	{ IPPROTO_UDPLITE, "udplite" }, { IPPROTO_SCTP, "sctp" },
	{ IPPROTO_ICMP, "icmp" },       { IPPROTO_ICMPV6, "icmpv6" },
};

const char *pkt_proto_name(uint8_t proto)
{
	for (size_t i = 0; i < sizeof(proto_names) / sizeof(proto_names[0]); i++)
		if (proto_names[i].proto == proto)
			return proto_names[i].name;
	return NULL;
}

int pkt_proto_parse(const char *name, uint8_t *ret_proto)
{
	for (size_t i = 0; i < sizeof(proto_names) / sizeof(proto_names[0]); i++)
		if (strcmp(proto_names[i].name, name) == 0) {
			*ret_proto = proto_names[i].proto;
			return 0;
		}
	return -EINVAL;
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int fail(struct pkt_info *p, enum pkt_err err)
{
	p->err = (uint8_t)err;
	return err == PKT_E_SHORT_CAPTURE ? -ENODATA : -EBADMSG;
}

/* Is [off, off + n) inside the header stack and inside what we hold?
 * 0, or the error to fail with (@bad for a header past the end). */
static enum pkt_err need(size_t off, size_t n, size_t cap, size_t end, enum pkt_err bad)
{
	if (off > end || n > end - off)
		return bad;
	if (off > cap || n > cap - off)
		return PKT_E_SHORT_CAPTURE;
	return PKT_OK;
}

/* The L4 header at @off; [off, end) is the rest of this IP packet
 * (fragment), [off, cap) what we hold of it. */
static int parse_l4(struct pkt_info *p, const uint8_t *d, size_t off, size_t cap,
		    size_t end, bool fragment)
{
	enum pkt_err short_err = fragment ? PKT_E_FRAG : PKT_E_L4_TRUNC;
	enum pkt_err e;
	const uint8_t *l4 = d + off;
	size_t avail = end - off;

	p->l4_off = (uint16_t)(off > UINT16_MAX ? UINT16_MAX : off);
	if (proto_has_ports(p->proto)) {
		size_t hlen = p->proto == IPPROTO_TCP ? 20 : p->proto == IPPROTO_SCTP ? 12 : 8;

		/* the ports come first; keep them even when the rest is cut */
		if (need(off, 4, cap, end, short_err) == PKT_OK) {
			p->sport = be16(l4);
			p->dport = be16(l4 + 2);
			p->flags |= PKT_F_PORTS;
		}
		e = need(off, hlen, cap, end, short_err);
		if (e != PKT_OK)
			return fail(p, e);
		if (p->proto == IPPROTO_TCP) {
			size_t doff = (size_t)(l4[12] >> 4) * 4;

			p->tcp_flags = l4[13];
			if (doff < 20 || doff > avail)
				return fail(p, PKT_E_TCP_DOFF);
		} else if (p->proto == IPPROTO_UDP || p->proto == IPPROTO_UDPLITE) {
			/* UDP: length (0 = IPv6 jumbogram); UDP-Lite: checksum
			 * coverage (0 = everything). A fragment holds only part of
			 * the datagram, so the upper bound is checked on whole
			 * packets only. */
			size_t ulen = be16(l4 + 4);

			if (ulen != 0 && (ulen < 8 || (!fragment && ulen > avail)))
				return fail(p, PKT_E_UDP_LEN);
		}
		p->flags |= PKT_F_L4;
		return 0;
	}
	if ((p->proto == IPPROTO_ICMP && p->family == AF_INET) ||
	    (p->proto == IPPROTO_ICMPV6 && p->family == AF_INET6)) {
		if (need(off, 2, cap, end, short_err) == PKT_OK) {
			p->icmp_type = l4[0];
			p->icmp_code = l4[1];
			p->flags |= PKT_F_ICMP;
		}
		e = need(off, 8, cap, end, short_err);
		if (e != PKT_OK)
			return fail(p, e);
		p->flags |= PKT_F_L4;
	}
	/* any other protocol: nothing we look at */
	return 0;
}

/* IPv4 options: EOL ends the list, NOP is one byte, every other option is
 * type, length (>= 2), data, within the header. */
static bool ipv4_options_ok(const uint8_t *opt, size_t n)
{
	size_t i = 0;

	while (i < n) {
		if (opt[i] == 0)       /* end of option list */
			return true;
		if (opt[i] == 1) {     /* no operation */
			i++;
			continue;
		}
		if (n - i < 2 || opt[i + 1] < 2 || opt[i + 1] > n - i)
			return false;
		i += opt[i + 1];
	}
	return true;
}

static int parse_ipv4(struct pkt_info *p, const uint8_t *d, size_t cap, size_t len)
{
	size_t ihl, tot, end, off;
	uint16_t frag;

	if (len < 20)
		return fail(p, PKT_E_IP_TRUNC);
	if (cap < 20)
		return fail(p, PKT_E_SHORT_CAPTURE);
	p->family = AF_INET;
	p->src.family = p->dst.family = AF_INET;
	memcpy(p->src.bytes, d + 12, 4);
	memcpy(p->dst.bytes, d + 16, 4);
	p->proto = d[9];
	p->frag_id = be16(d + 4);
	frag = be16(d + 6);
	p->frag_off = (uint16_t)((frag & 0x1fff) * 8);
	if (frag & 0x3fff)      /* MF or an offset */
		p->flags |= PKT_F_FRAG;
	tot = be16(d + 2);
	p->ip_len = (uint32_t)tot;
	ihl = (size_t)(d[0] & 0x0f) * 4;
	if (ihl < 20 || ihl > len)
		return fail(p, PKT_E_IHL);
	/* GSO packets beyond 64 KiB (BIG TCP) carry 0 */
	if (tot == 0 && len > UINT16_MAX)
		tot = len;
	if (tot < ihl || tot > len)
		return fail(p, PKT_E_TOTLEN);
	end = tot;
	p->l4_off = (uint16_t)ihl;
	if (ihl > cap)
		return fail(p, PKT_E_SHORT_CAPTURE);
	if (ihl > 20) {
		p->flags |= PKT_F_IPOPTS;
		if (!ipv4_options_ok(d + 20, ihl - 20))
			return fail(p, PKT_E_IPOPT);
	}
	off = ihl;
	if (p->frag_off) {
		p->flags |= PKT_F_FRAG_LATER;
		return 0;
	}
	return parse_l4(p, d, off, cap < end ? cap : end, end, p->flags & PKT_F_FRAG);
}

static int parse_ipv6(struct pkt_info *p, const uint8_t *d, size_t cap, size_t len)
{
	size_t plen, end, off = 40, hlen;
	uint8_t nh;
	enum pkt_err e;

	if (len < 40)
		return fail(p, PKT_E_IP_TRUNC);
	if (cap < 40)
		return fail(p, PKT_E_SHORT_CAPTURE);
	p->family = AF_INET6;
	p->src.family = p->dst.family = AF_INET6;
	memcpy(p->src.bytes, d + 8, 16);
	memcpy(p->dst.bytes, d + 24, 16);
	nh = d[6];
	p->proto = nh;
	p->l4_off = 40;
	plen = be16(d + 4);
	/* 0: a jumbogram or a GSO packet beyond 64 KiB (BIG TCP); the
	 * packet's own length is all we have */
	end = plen ? 40 + plen : len;
	p->ip_len = (uint32_t)end;
	if (end > len)
		return fail(p, PKT_E_TOTLEN);
	for (;;) {
		switch (nh) {
		case IPPROTO_HOPOPTS:
			if (p->n_ext != 0)
				return fail(p, PKT_E_HOPOPT);
			/* fall through */
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
		case IPPROTO_AH:
			e = need(off, 2, cap, end, PKT_E_EXTHDR);
			if (e != PKT_OK)
				return fail(p, e);
			if (nh == IPPROTO_AH)
				hlen = ((size_t)d[off + 1] + 2) * 4;
			else
				hlen = ((size_t)d[off + 1] + 1) * 8;
			if (hlen > end - off)
				return fail(p, PKT_E_EXTHDR);
			nh = d[off];
			off += hlen;
			break;
		case IPPROTO_FRAGMENT: {
			uint16_t fo;

			e = need(off, 8, cap, end, PKT_E_EXTHDR);
			if (e != PKT_OK)
				return fail(p, e);
			nh = d[off];
			fo = be16(d + off + 2);
			p->frag_off = fo & 0xfff8;
			p->frag_id = be32(d + off + 4);
			p->flags |= PKT_F_FRAG;
			off += 8;
			if (p->frag_off)
				p->flags |= PKT_F_FRAG_LATER;
			break;
		}
		default:
			goto l4;
		}
		p->flags |= PKT_F_EXTHDRS;
		p->proto = nh;
		p->l4_off = (uint16_t)(off > UINT16_MAX ? UINT16_MAX : off);
		if (++p->n_ext > PKT_MAX_EXT_HDRS)
			return fail(p, PKT_E_EXT_LIMIT);
		if (p->flags & PKT_F_FRAG_LATER)
			return 0;
	}
l4:
	if (off > cap)
		return fail(p, PKT_E_SHORT_CAPTURE);
	return parse_l4(p, d, off, cap < end ? cap : end, end, p->flags & PKT_F_FRAG);
}

int pkt_parse(const void *data, size_t caplen, size_t len, struct pkt_info *ret)
{
	const uint8_t *d = data;

	memset(ret, 0, sizeof(*ret));
	if (len < caplen)
		len = caplen;
	if (!d || caplen == 0)
		return fail(ret, PKT_E_EMPTY);
	switch (d[0] >> 4) {
	case 4:
		return parse_ipv4(ret, d, caplen, len);
	case 6:
		return parse_ipv6(ret, d, caplen, len);
	default:
		ret->err = PKT_E_VERSION;
		return -EPROTONOSUPPORT;
	}
}
