/* The packet parser on hand-built packets: every protocol it knows,
 * malformed and truncated headers, IPv4 options, IPv6 extension header
 * chains, fragments; every prefix and random mutations of valid packets in
 * exact-size heap buffers, so that ASan/valgrind see any overread. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mseg/packet/pkt.h"
#include "t.h"

#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif
#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* IPv4 header with @optlen option bytes (a multiple of 4) followed by
 * @l4len bytes; 10.0.0.1 -> 10.0.0.2. Returns the header length. */
static size_t ip4(uint8_t *b, uint8_t proto, const uint8_t *opt, size_t optlen, size_t l4len)
{
	size_t ihl = 20 + optlen;

	memset(b, 0, ihl);
	b[0] = (uint8_t)(0x40 | (ihl / 4));
	put16(b + 2, (uint16_t)(ihl + l4len));
	put16(b + 4, 0x1234);
	b[8] = 64;
	b[9] = proto;
	b[12] = 10, b[15] = 1;
	b[16] = 10, b[19] = 2;
	if (optlen)
		memcpy(b + 20, opt, optlen);
	return ihl;
}

/* IPv6 header, fd00::1 -> fd00::2, payload length @plen. */
static size_t ip6(uint8_t *b, uint8_t nh, size_t plen)
{
	memset(b, 0, 40);
	b[0] = 0x60;
	put16(b + 4, (uint16_t)plen);
	b[6] = nh;
	b[7] = 64;
	b[8] = 0xfd, b[23] = 1;
	b[24] = 0xfd, b[39] = 2;
	return 40;
}

/* Generic extension header (hop-by-hop, routing, destination options) of
 * 8 * (1 + @units) bytes. */
static size_t ext(uint8_t *b, uint8_t nh, uint8_t units)
{
	size_t n = 8 * ((size_t)units + 1);

	memset(b, 0, n);
	b[0] = nh;
	b[1] = units;
	b[2] = 1;   /* PadN filling the rest */
	b[3] = (uint8_t)(n - 4);
	return n;
}

static size_t frag6(uint8_t *b, uint8_t nh, uint16_t off_bytes, bool more, uint32_t id)
{
	memset(b, 0, 8);
	b[0] = nh;
	put16(b + 2, (uint16_t)(off_bytes | (more ? 1 : 0)));
	b[4] = (uint8_t)(id >> 24), b[5] = (uint8_t)(id >> 16), b[6] = (uint8_t)(id >> 8),
	b[7] = (uint8_t)id;
	return 8;
}

static size_t tcp(uint8_t *b, uint16_t sport, uint16_t dport, uint8_t flags, uint8_t doff_words)
{
	memset(b, 0, 20);
	put16(b, sport);
	put16(b + 2, dport);
	b[12] = (uint8_t)(doff_words << 4);
	b[13] = flags;
	return 20;
}

static size_t udp(uint8_t *b, uint16_t sport, uint16_t dport, uint16_t len)
{
	memset(b, 0, 8);
	put16(b, sport);
	put16(b + 2, dport);
	put16(b + 4, len);
	return 8;
}

static size_t icmp(uint8_t *b, uint8_t type, uint8_t code)
{
	memset(b, 0, 8);
	b[0] = type;
	b[1] = code;
	return 8;
}

/* Parse from an exact-size heap copy, so any overread is caught. */
static int parse(const uint8_t *b, size_t caplen, size_t len, struct pkt_info *p)
{
	uint8_t *copy = malloc(caplen ? caplen : 1);
	int r;

	memcpy(copy, b, caplen);
	r = pkt_parse(copy, caplen, len, p);
	free(copy);
	return r;
}

static void check_v4_addrs(const struct pkt_info *p)
{
	static const uint8_t s[4] = { 10, 0, 0, 1 }, d[4] = { 10, 0, 0, 2 };

	T_CHECK(p->family == AF_INET, "family %u", p->family);
	T_CHECK(p->src.family == AF_INET && memcmp(p->src.bytes, s, 4) == 0, "src");
	T_CHECK(p->dst.family == AF_INET && memcmp(p->dst.bytes, d, 4) == 0, "dst");
}

static void check_v6_addrs(const struct pkt_info *p)
{
	T_CHECK(p->family == AF_INET6, "family %u", p->family);
	T_CHECK(p->src.bytes[0] == 0xfd && p->src.bytes[15] == 1, "src");
	T_CHECK(p->dst.bytes[0] == 0xfd && p->dst.bytes[15] == 2, "dst");
}

static void test_ipv4_tcp_syn(void)
{
	uint8_t b[64];
	struct pkt_info p;
	size_t n = ip4(b, IPPROTO_TCP, NULL, 0, 20);

	n += tcp(b + n, 40000, 5432, PKT_TCP_SYN, 5);
	T_CHECK(parse(b, n, n, &p) == 0, "parse: %s", pkt_err_name(p.err));
	check_v4_addrs(&p);
	T_CHECK(p.proto == IPPROTO_TCP, "proto %u", p.proto);
	T_CHECK(p.sport == 40000 && p.dport == 5432, "ports %u %u", p.sport, p.dport);
	T_CHECK(p.tcp_flags == PKT_TCP_SYN, "flags %#x", p.tcp_flags);
	T_CHECK((p.flags & (PKT_F_L4 | PKT_F_PORTS)) == (PKT_F_L4 | PKT_F_PORTS), "flags");
	T_CHECK(!(p.flags & PKT_F_FRAG), "not a fragment");
	T_CHECK(p.l4_off == 20 && p.ip_len == 40, "l4_off %u ip_len %u", p.l4_off, p.ip_len);
	T_CHECK(p.err == PKT_OK, "err %u", p.err);
}

static void test_ipv4_udp_udplite_sctp_icmp(void)
{
	uint8_t b[64];
	struct pkt_info p;
	size_t n;

	n = ip4(b, IPPROTO_UDP, NULL, 0, 12);
	n += udp(b + n, 5353, 53, 12);
	n += 4;
	T_CHECK(parse(b, n, n, &p) == 0, "udp: %s", pkt_err_name(p.err));
	T_CHECK(p.proto == IPPROTO_UDP && p.sport == 5353 && p.dport == 53, "udp fields");

	n = ip4(b, IPPROTO_UDPLITE, NULL, 0, 8);
	n += udp(b + n, 1000, 2000, 0);   /* coverage 0 = all */
	T_CHECK(parse(b, n, n, &p) == 0, "udplite: %s", pkt_err_name(p.err));
	T_CHECK(p.proto == IPPROTO_UDPLITE && p.dport == 2000, "udplite fields");

	n = ip4(b, IPPROTO_SCTP, NULL, 0, 12);
	memset(b + n, 0, 12);
	put16(b + n, 7000);
	put16(b + n + 2, 9);
	n += 12;
	T_CHECK(parse(b, n, n, &p) == 0, "sctp: %s", pkt_err_name(p.err));
	T_CHECK(p.proto == IPPROTO_SCTP && p.sport == 7000 && p.dport == 9, "sctp fields");
	T_CHECK(parse(b, n - 1, n - 1, &p) == -EBADMSG && p.err == PKT_E_TOTLEN, "sctp cut");

	n = ip4(b, IPPROTO_ICMP, NULL, 0, 8);
	n += icmp(b + n, 8, 0);
	T_CHECK(parse(b, n, n, &p) == 0, "icmp: %s", pkt_err_name(p.err));
	T_CHECK(p.proto == IPPROTO_ICMP && (p.flags & PKT_F_ICMP) && p.icmp_type == 8 &&
			p.icmp_code == 0, "icmp fields");
	T_CHECK(!(p.flags & PKT_F_PORTS), "icmp has no ports");

	/* a protocol we do not look into */
	n = ip4(b, 47, NULL, 0, 4);   /* GRE */
	n += 4;
	T_CHECK(parse(b, n, n, &p) == 0, "gre: %s", pkt_err_name(p.err));
	T_CHECK(p.proto == 47 && !(p.flags & (PKT_F_PORTS | PKT_F_ICMP | PKT_F_L4)), "gre");
}

static void test_ipv4_options(void)
{
	/* NOP, NOP, record route (len 7, pointer 4, one empty slot... padded),
	 * EOL */
	static const uint8_t opts[12] = { 1, 1, 7, 7, 4, 0, 0, 0, 0, 0, 0, 0 };
	static const uint8_t bad_len0[4] = { 7, 0, 0, 0 };
	static const uint8_t bad_past[4] = { 1, 7, 9, 4 };
	uint8_t b[96];
	struct pkt_info p;
	size_t n;

	n = ip4(b, IPPROTO_TCP, opts, sizeof(opts), 20);
	n += tcp(b + n, 1, 2, PKT_TCP_SYN, 5);
	T_CHECK(parse(b, n, n, &p) == 0, "options: %s", pkt_err_name(p.err));
	T_CHECK(p.flags & PKT_F_IPOPTS, "options flag");
	T_CHECK(p.l4_off == 32 && p.sport == 1 && p.dport == 2, "l4 after options: %u", p.l4_off);

	n = ip4(b, IPPROTO_TCP, bad_len0, sizeof(bad_len0), 20);
	n += tcp(b + n, 1, 2, PKT_TCP_SYN, 5);
	T_CHECK(parse(b, n, n, &p) == -EBADMSG && p.err == PKT_E_IPOPT, "option len 0: %u", p.err);
	check_v4_addrs(&p);

	n = ip4(b, IPPROTO_TCP, bad_past, sizeof(bad_past), 20);
	n += tcp(b + n, 1, 2, PKT_TCP_SYN, 5);
	T_CHECK(parse(b, n, n, &p) == -EBADMSG && p.err == PKT_E_IPOPT, "option past header");
}

static void test_ipv4_bad_ihl(void)
{
	uint8_t b[64];
	struct pkt_info p;
	size_t n = ip4(b, IPPROTO_TCP, NULL, 0, 20);

	n += tcp(b + n, 1, 2, PKT_TCP_SYN, 5);
	for (int ihl = 0; ihl < 5; ihl++) {
		b[0] = (uint8_t)(0x40 | ihl);
		T_CHECK(parse(b, n, n, &p) == -EBADMSG && p.err == PKT_E_IHL, "ihl %d", ihl);
		check_v4_addrs(&p);          /* what was parsed so far */
		T_CHECK(p.proto == IPPROTO_TCP, "proto known");
	}
	b[0] = 0x4f;                         /* 60 bytes of header in a 40-byte packet */
	T_CHECK(parse(b, n, n, &p) == -EBADMSG && p.err == PKT_E_IHL, "ihl 15");
	/* in a longer packet, the total length (40) is still less than it */
	T_CHECK(parse(b, n, 100, &p) == -EBADMSG && p.err == PKT_E_TOTLEN, "totlen < ihl");
	/* with a consistent total length it is a short capture */
	put16(b + 2, 100);
	T_CHECK(parse(b, n, 100, &p) == -ENODATA && p.err == PKT_E_SHORT_CAPTURE, "short");
}

static void test_ipv4_bad_total_length(void)
{
	uint8_t b[64];
	struct pkt_info p;
	size_t n = ip4(b, IPPROTO_TCP, NULL, 0, 20);

	n += tcp(b + n, 1, 2, PKT_TCP_SYN, 5);
	put16(b + 2, 41);                    /* one more than we have */
	T_CHECK(parse(b, n, n, &p) == -EBADMSG && p.err == PKT_E_TOTLEN, "too long");
	check_v4_addrs(&p);
	put16(b + 2, 19);                    /* less than the header */
	T_CHECK(parse(b, n, n, &p) == -EBADMSG && p.err == PKT_E_TOTLEN, "shorter than header");
	put16(b + 2, 0);
	T_CHECK(parse(b, n, n, &p) == -EBADMSG && p.err == PKT_E_TOTLEN, "zero");
	/* shorter than the packet: trailing bytes (padding) are not the
	 * segment's, which then is too short */
	put16(b + 2, 30);
	T_CHECK(parse(b, n, n, &p) == -EBADMSG && p.err == PKT_E_L4_TRUNC, "l4 cut by totlen");
	T_CHECK((p.flags & PKT_F_PORTS) && p.dport == 2, "ports kept");
	/* GSO beyond 64 KiB: total length 0 with a long packet */
	put16(b + 2, 0);
	T_CHECK(parse(b, n, 70000, &p) == 0, "big tcp: %s", pkt_err_name(p.err));
	/* trailing padding after a complete packet is fine */
	put16(b + 2, 40);
	T_CHECK(parse(b, n, n + 6, &p) == 0, "padding");
}

static void test_ipv4_truncated_l4(void)
{
	uint8_t b[64];
	struct pkt_info p;
	size_t n;

	/* 8 bytes of TCP header, consistent IP lengths: malformed */
	n = ip4(b, IPPROTO_TCP, NULL, 0, 8);
	tcp(b + n, 40001, 5432, PKT_TCP_SYN, 5);
	n += 8;
	T_CHECK(parse(b, n, n, &p) == -EBADMSG && p.err == PKT_E_L4_TRUNC, "tcp 8 bytes: %u",
		p.err);
	T_CHECK((p.flags & PKT_F_PORTS) && p.sport == 40001 && p.dport == 5432, "ports kept");
	T_CHECK(!(p.flags & PKT_F_L4), "no l4");

	/* 3 bytes: not even the ports */
	n = ip4(b, IPPROTO_TCP, NULL, 0, 3);
	n += 3;
	T_CHECK(parse(b, n, n, &p) == -EBADMSG && !(p.flags & PKT_F_PORTS), "tcp 3 bytes");

	/* data offset */
	n = ip4(b, IPPROTO_TCP, NULL, 0, 20);
	n += tcp(b + n, 1, 2, PKT_TCP_SYN, 4);
	T_CHECK(parse(b, n, n, &p) == -EBADMSG && p.err == PKT_E_TCP_DOFF, "doff 4");
	tcp(b + 20, 1, 2, PKT_TCP_SYN, 6);
	T_CHECK(parse(b, n, n, &p) == -EBADMSG && p.err == PKT_E_TCP_DOFF, "doff past segment");

	/* UDP, ICMP */
	n = ip4(b, IPPROTO_UDP, NULL, 0, 6);
	udp(b + n, 1, 53, 8);
	n += 6;
	T_CHECK(parse(b, n, n, &p) == -EBADMSG && p.err == PKT_E_L4_TRUNC, "udp 6 bytes");
	T_CHECK(p.dport == 53, "udp port kept");
	n = ip4(b, IPPROTO_UDP, NULL, 0, 8);
	n += udp(b + n, 1, 53, 7);
	T_CHECK(parse(b, n, n, &p) == -EBADMSG && p.err == PKT_E_UDP_LEN, "udp len 7");
	udp(b + 20, 1, 53, 9);
	T_CHECK(parse(b, n, n, &p) == -EBADMSG && p.err == PKT_E_UDP_LEN, "udp len 9 > 8");
	n = ip4(b, IPPROTO_ICMP, NULL, 0, 4);
	icmp(b + n, 3, 1);
	n += 4;
	T_CHECK(parse(b, n, n, &p) == -EBADMSG && p.err == PKT_E_L4_TRUNC, "icmp 4 bytes");
	T_CHECK((p.flags & PKT_F_ICMP) && p.icmp_type == 3 && p.icmp_code == 1, "type kept");
}

static void test_ipv4_short_capture(void)
{
	uint8_t b[128];
	struct pkt_info p;
	size_t n = ip4(b, IPPROTO_TCP, NULL, 0, 80);

	n += tcp(b + n, 1234, 80, PKT_TCP_SYN | PKT_TCP_ACK, 5);
	n += 60;
	/* full packet is 100 bytes; we hold 24 */
	T_CHECK(parse(b, 24, n, &p) == -ENODATA && p.err == PKT_E_SHORT_CAPTURE, "24 of 100");
	T_CHECK((p.flags & PKT_F_PORTS) && p.dport == 80, "ports within capture");
	T_CHECK(parse(b, 40, n, &p) == 0, "40 of 100: %s", pkt_err_name(p.err));
	T_CHECK(parse(b, 12, n, &p) == -ENODATA, "12 of 100");
	T_CHECK(p.family == 0, "no addresses yet");
}

static void test_ipv4_fragments(void)
{
	uint8_t b[64];
	struct pkt_info p;
	size_t n;

	/* first fragment: MF, offset 0, full UDP header */
	n = ip4(b, IPPROTO_UDP, NULL, 0, 16);
	n += udp(b + n, 1, 53, 3000);     /* datagram length > this fragment: fine */
	n += 8;
	put16(b + 6, 0x2000);
	T_CHECK(parse(b, n, n, &p) == 0, "first fragment: %s", pkt_err_name(p.err));
	T_CHECK((p.flags & PKT_F_FRAG) && !(p.flags & PKT_F_FRAG_LATER), "frag flags");
	T_CHECK(p.dport == 53 && p.frag_id == 0x1234, "ports and id");

	/* later fragment: offset 1480, no L4 header, proto kept */
	put16(b + 6, 185);
	T_CHECK(parse(b, n, n, &p) == 0, "later fragment: %s", pkt_err_name(p.err));
	T_CHECK((p.flags & PKT_F_FRAG_LATER) && !(p.flags & PKT_F_PORTS), "no ports");
	T_CHECK(p.frag_off == 1480 && p.proto == IPPROTO_UDP, "offset %u", p.frag_off);
	check_v4_addrs(&p);

	/* last fragment (offset, no MF) */
	put16(b + 6, 10);
	T_CHECK(parse(b, n, n, &p) == 0 && (p.flags & PKT_F_FRAG_LATER), "last fragment");

	/* first fragment too small for the TCP header (tiny fragment) */
	n = ip4(b, IPPROTO_TCP, NULL, 0, 8);
	tcp(b + n, 1, 2, PKT_TCP_SYN, 5);
	n += 8;
	put16(b + 6, 0x2000);
	T_CHECK(parse(b, n, n, &p) == -EBADMSG && p.err == PKT_E_FRAG, "tiny first fragment");
}

static void test_ipv6_basic(void)
{
	uint8_t b[128];
	struct pkt_info p;
	size_t n;

	n = ip6(b, IPPROTO_TCP, 20);
	n += tcp(b + n, 50000, 443, PKT_TCP_SYN, 5);
	T_CHECK(parse(b, n, n, &p) == 0, "tcp6: %s", pkt_err_name(p.err));
	check_v6_addrs(&p);
	T_CHECK(p.proto == IPPROTO_TCP && p.sport == 50000 && p.dport == 443 &&
			p.tcp_flags == PKT_TCP_SYN && p.l4_off == 40 && p.n_ext == 0, "tcp6 fields");

	n = ip6(b, IPPROTO_UDP, 8);
	n += udp(b + n, 1, 53, 8);
	T_CHECK(parse(b, n, n, &p) == 0 && p.dport == 53, "udp6");

	n = ip6(b, IPPROTO_ICMPV6, 8);
	n += icmp(b + n, 128, 0);
	T_CHECK(parse(b, n, n, &p) == 0, "icmpv6: %s", pkt_err_name(p.err));
	T_CHECK((p.flags & PKT_F_ICMP) && p.icmp_type == 128 && p.proto == IPPROTO_ICMPV6, "echo");

	/* ICMP (v4) inside IPv6 is just a protocol number */
	n = ip6(b, IPPROTO_ICMP, 8);
	n += icmp(b + n, 8, 0);
	T_CHECK(parse(b, n, n, &p) == 0 && !(p.flags & PKT_F_ICMP), "icmp in ipv6");

	/* no next header */
	n = ip6(b, IPPROTO_NONE, 0);
	T_CHECK(parse(b, n, n, &p) == 0 && p.proto == IPPROTO_NONE, "no next header");

	/* payload length */
	n = ip6(b, IPPROTO_TCP, 21);
	n += tcp(b + n, 1, 2, PKT_TCP_SYN, 5);
	T_CHECK(parse(b, n, n, &p) == -EBADMSG && p.err == PKT_E_TOTLEN, "plen too long");
	check_v6_addrs(&p);
	T_CHECK(parse(b, 39, 39, &p) == -EBADMSG && p.err == PKT_E_IP_TRUNC, "39 bytes");
}

static void test_ipv6_ext_chain(void)
{
	uint8_t b[256];
	struct pkt_info p;
	size_t n = 40;

	/* hop-by-hop, destination options, routing (24 bytes), AH, TCP */
	n += ext(b + n, IPPROTO_DSTOPTS, 0);
	n += ext(b + n, IPPROTO_ROUTING, 0);
	n += ext(b + n, IPPROTO_AH, 2);
	/* AH: length in 4-byte units minus 2: 16 bytes = 2 */
	memset(b + n, 0, 16);
	b[n] = IPPROTO_TCP;
	b[n + 1] = 2;
	n += 16;
	n += tcp(b + n, 7, 8080, PKT_TCP_SYN, 5);
	ip6(b, IPPROTO_HOPOPTS, n - 40);
	T_CHECK(parse(b, n, n, &p) == 0, "chain: %s", pkt_err_name(p.err));
	T_CHECK(p.n_ext == 4 && (p.flags & PKT_F_EXTHDRS), "n_ext %u", p.n_ext);
	T_CHECK(p.proto == IPPROTO_TCP && p.dport == 8080 && p.l4_off == n - 20, "l4 %u", p.l4_off);

	/* the same, captured up to the middle of the chain (copy range) */
	T_CHECK(parse(b, 60, n, &p) == -ENODATA && p.err == PKT_E_SHORT_CAPTURE, "short");
	check_v6_addrs(&p);

	/* an extension header running past the payload */
	ip6(b, IPPROTO_HOPOPTS, 20);
	T_CHECK(parse(b, 60, 60, &p) == -EBADMSG && p.err == PKT_E_EXTHDR, "ext past end: %u",
		p.err);

	/* hop-by-hop options after another header */
	n = 40;
	n += ext(b + n, IPPROTO_HOPOPTS, 0);
	n += ext(b + n, IPPROTO_TCP, 0);
	n += tcp(b + n, 1, 2, PKT_TCP_SYN, 5);
	ip6(b, IPPROTO_DSTOPTS, n - 40);
	T_CHECK(parse(b, n, n, &p) == -EBADMSG && p.err == PKT_E_HOPOPT, "hbh not first");

	/* too many headers */
	n = 40;
	for (int i = 0; i < PKT_MAX_EXT_HDRS + 1; i++)
		n += ext(b + n, i == PKT_MAX_EXT_HDRS ? IPPROTO_TCP : IPPROTO_DSTOPTS, 0);
	n += tcp(b + n, 1, 2, PKT_TCP_SYN, 5);
	ip6(b, IPPROTO_DSTOPTS, n - 40);
	T_CHECK(parse(b, n, n, &p) == -EBADMSG && p.err == PKT_E_EXT_LIMIT, "limit: %u", p.err);

	/* exactly the limit is fine */
	n = 40;
	for (int i = 0; i < PKT_MAX_EXT_HDRS; i++)
		n += ext(b + n, i == PKT_MAX_EXT_HDRS - 1 ? IPPROTO_TCP : IPPROTO_DSTOPTS, 0);
	n += tcp(b + n, 1, 2, PKT_TCP_SYN, 5);
	ip6(b, IPPROTO_DSTOPTS, n - 40);
	T_CHECK(parse(b, n, n, &p) == 0 && p.n_ext == PKT_MAX_EXT_HDRS, "at limit");

	/* a header of one byte */
	n = 41;
	ip6(b, IPPROTO_DSTOPTS, 1);
	b[40] = IPPROTO_TCP;
	T_CHECK(parse(b, n, n, &p) == -EBADMSG && p.err == PKT_E_EXTHDR, "1-byte ext");
}

static void test_ipv6_fragments(void)
{
	uint8_t b[128];
	struct pkt_info p;
	size_t n = 40;

	n += frag6(b + n, IPPROTO_UDP, 0, true, 0xdeadbeef);
	n += udp(b + n, 1, 53, 4000);
	ip6(b, IPPROTO_FRAGMENT, n - 40);
	T_CHECK(parse(b, n, n, &p) == 0, "first: %s", pkt_err_name(p.err));
	T_CHECK((p.flags & PKT_F_FRAG) && !(p.flags & PKT_F_FRAG_LATER) && p.dport == 53 &&
			p.frag_id == 0xdeadbeef, "first fields");

	n = 40;
	n += frag6(b + n, IPPROTO_UDP, 1448, false, 7);
	n += 16;
	ip6(b, IPPROTO_FRAGMENT, n - 40);
	T_CHECK(parse(b, n, n, &p) == 0, "later: %s", pkt_err_name(p.err));
	T_CHECK((p.flags & PKT_F_FRAG_LATER) && !(p.flags & PKT_F_PORTS) &&
			p.proto == IPPROTO_UDP && p.frag_off == 1448, "later fields");

	/* fragment header cut */
	n = 44;
	ip6(b, IPPROTO_FRAGMENT, 4);
	T_CHECK(parse(b, n, n, &p) == -EBADMSG && p.err == PKT_E_EXTHDR, "cut fragment header");

	/* first fragment without the TCP header */
	n = 40;
	n += frag6(b + n, IPPROTO_TCP, 0, true, 1);
	n += 8;
	ip6(b, IPPROTO_FRAGMENT, n - 40);
	T_CHECK(parse(b, n, n, &p) == -EBADMSG && p.err == PKT_E_FRAG, "tiny first fragment");
}

static void test_not_ip(void)
{
	uint8_t b[40] = { 0x50 };
	struct pkt_info p;

	T_CHECK(pkt_parse(NULL, 0, 0, &p) == -EBADMSG && p.err == PKT_E_EMPTY, "empty");
	T_CHECK(parse(b, 40, 40, &p) == -EPROTONOSUPPORT && p.err == PKT_E_VERSION, "version 5");
	b[0] = 0x45;
	T_CHECK(parse(b, 10, 10, &p) == -EBADMSG && p.err == PKT_E_IP_TRUNC, "10 bytes");
	T_CHECK(parse(b, 10, 40, &p) == -ENODATA, "10 of 40");
}

static void test_names(void)
{
	uint8_t pr;

	T_STREQ(pkt_proto_name(IPPROTO_TCP), "tcp");
	T_STREQ(pkt_proto_name(IPPROTO_ICMPV6), "icmpv6");
	T_STREQ(pkt_proto_name(IPPROTO_UDPLITE), "udplite");
	T_CHECK(pkt_proto_name(47) == NULL, "gre has no name");
	T_CHECK(pkt_proto_parse("sctp", &pr) == 0 && pr == IPPROTO_SCTP, "sctp");
	T_CHECK(pkt_proto_parse("gre", &pr) == -EINVAL, "unknown");
	T_STREQ(pkt_err_name(PKT_OK), "");
	T_STREQ(pkt_err_name(PKT_E_L4_TRUNC), "truncated l4 header");
	T_STREQ(pkt_err_name((enum pkt_err)200), "unknown error");
	for (int e = 1; e < PKT_E_COUNT; e++)
		T_CHECK(pkt_err_name(e)[0] != '\0', "name for %d", e);
}

/* A set of valid packets for the exhaustive and random tests. */
static size_t sample(int k, uint8_t *b)
{
	static const uint8_t opts[8] = { 1, 1, 1, 1, 1, 1, 1, 0 };
	size_t n;

	switch (k) {
	case 0:
		n = ip4(b, IPPROTO_TCP, NULL, 0, 20);
		return n + tcp(b + n, 1, 2, PKT_TCP_SYN, 5);
	case 1:
		n = ip4(b, IPPROTO_UDP, opts, sizeof(opts), 8);
		return n + udp(b + n, 1, 2, 8);
	case 2:
		n = ip4(b, IPPROTO_ICMP, NULL, 0, 8);
		return n + icmp(b + n, 8, 0);
	case 3:   /* hop-by-hop, routing, fragment (first), TCP */
		n = 40;
		n += ext(b + n, IPPROTO_ROUTING, 0);
		n += ext(b + n, IPPROTO_FRAGMENT, 1);
		n += frag6(b + n, IPPROTO_TCP, 0, true, 3);
		n += tcp(b + n, 1, 2, PKT_TCP_SYN, 5);
		ip6(b, IPPROTO_HOPOPTS, n - 40);
		return n;
	case 4:
		n = ip6(b, IPPROTO_ICMPV6, 8);
		return n + icmp(b + n, 135, 0);
	default:
		n = ip6(b, IPPROTO_SCTP, 12);
		memset(b + n, 0, 12);
		return n + 12;
	}
}
#define N_SAMPLES 6

static void test_every_prefix(void)
{
	uint8_t b[256];
	struct pkt_info p;

	for (int k = 0; k < N_SAMPLES; k++) {
		size_t n = sample(k, b);
		int r = parse(b, n, n, &p);

		T_CHECK(r == 0, "sample %d: %s", k, pkt_err_name(p.err));
		for (size_t c = 0; c < n; c++) {
			/* cut packet: malformed (or not IP at 0 bytes) */
			r = parse(b, c, c, &p);
			T_CHECK(r == -EBADMSG, "sample %d cut at %zu: %d", k, c, r);
			/* short capture of a good packet: never "malformed" */
			r = parse(b, c, n, &p);
			T_CHECK(r == 0 || r == -ENODATA || (c == 0 && r == -EBADMSG),
				"sample %d capture %zu: %d %s", k, c, r, pkt_err_name(p.err));
		}
	}
}

static uint32_t rnd_state = 12345;

static uint32_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

static void test_random_mutations(void)
{
	uint8_t b[256];
	struct pkt_info p;
	unsigned ok = 0, bad = 0;

	for (int i = 0; i < 200000; i++) {
		size_t n = sample((int)(rnd() % N_SAMPLES), b), cap;
		int flips = 1 + (int)(rnd() % 4), r;

		for (int f = 0; f < flips; f++)
			b[rnd() % n] ^= (uint8_t)(1u << (rnd() % 8));
		cap = rnd() % 4 ? n : rnd() % (n + 1);
		r = parse(b, cap, n, &p);
		T_CHECK(r == 0 || r == -EBADMSG || r == -ENODATA || r == -EPROTONOSUPPORT,
			"result %d", r);
		T_CHECK((r == 0) == (p.err == PKT_OK), "err %u with %d", p.err, r);
		T_CHECK(p.l4_off <= n, "l4_off %u past %zu", p.l4_off, n);
		if (r == 0)
			ok++;
		else
			bad++;
	}
	T_CHECK(ok > 0 && bad > 0, "ok %u bad %u", ok, bad);
}

int main(void)
{
	T_RUN(test_ipv4_tcp_syn);
	T_RUN(test_ipv4_udp_udplite_sctp_icmp);
	T_RUN(test_ipv4_options);
	T_RUN(test_ipv4_bad_ihl);
	T_RUN(test_ipv4_bad_total_length);
	T_RUN(test_ipv4_truncated_l4);
	T_RUN(test_ipv4_short_capture);
	T_RUN(test_ipv4_fragments);
	T_RUN(test_ipv6_basic);
	T_RUN(test_ipv6_ext_chain);
	T_RUN(test_ipv6_fragments);
	T_RUN(test_not_ip);
	T_RUN(test_names);
	T_RUN(test_every_prefix);
	T_RUN(test_random_mutations);
	return t_exit();
}
