/* The packet parser: IPv4/IPv6 and the L4 header of a packet as NFQUEUE
 * hands it to us (the payload starts at the IP header, and is usually cut
 * to the first few hundred bytes: the copy range).
 *
 * Pure and bounds-checked: nothing outside [data, data + caplen) is read,
 * whatever the headers claim. A malformed or truncated packet returns an
 * error and still fills in what was parsed before the fault (family and
 * addresses as soon as the fixed IP header is there, the L4 protocol once
 * the extension headers are walked).
 *
 * Two lengths: @caplen is what we hold, @len what the packet had (NFQUEUE's
 * NFQA_CAP_LEN; 0 = same as @caplen). A header that ends past @caplen but
 * within @len is a short capture (-ENODATA: the packet is fine, we just did
 * not get enough of it); one that ends past @len is malformed (-EBADMSG). */
#ifndef MSEG_PKT_H
#define MSEG_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mseg/model/model.h"

/* What went wrong, for counters and the flow record's "error" field. */
enum pkt_err {
	PKT_OK = 0,
	PKT_E_EMPTY,         /* no data at all */
	PKT_E_VERSION,       /* IP version neither 4 nor 6 */
	PKT_E_IP_TRUNC,      /* the fixed IP header is cut short */
	PKT_E_IHL,           /* IPv4 IHL < 5 or beyond the packet */
	PKT_E_TOTLEN,        /* IPv4 total length / IPv6 payload length inconsistent */
	PKT_E_IPOPT,         /* malformed IPv4 option */
	PKT_E_EXTHDR,        /* malformed or truncated IPv6 extension header */
	PKT_E_EXT_LIMIT,     /* too many IPv6 extension headers */
	PKT_E_HOPOPT,        /* IPv6 hop-by-hop options not first */
	PKT_E_FRAG,          /* bad fragment (first fragment without its L4 header) */
	PKT_E_L4_TRUNC,      /* L4 header cut short */
	PKT_E_TCP_DOFF,      /* TCP data offset < 5 or beyond the segment */
	PKT_E_UDP_LEN,       /* UDP length < 8 / UDP-Lite coverage 1..7 */
	PKT_E_SHORT_CAPTURE, /* headers continue past the captured bytes (-ENODATA) */
	PKT_E_COUNT
};

#define PKT_F_FRAG        (1u << 0)  /* a fragment (first or not) */
#define PKT_F_FRAG_LATER  (1u << 1)  /* a non-first fragment: no L4 header */
#define PKT_F_L4          (1u << 2)  /* the L4 header was parsed */
#define PKT_F_PORTS       (1u << 3)  /* sport/dport are valid (TCP, UDP, UDP-Lite, SCTP) */
#define PKT_F_ICMP        (1u << 4)  /* icmp_type/icmp_code are valid (ICMP, ICMPv6) */
#define PKT_F_IPOPTS      (1u << 5)  /* IPv4 header with options */
#define PKT_F_EXTHDRS     (1u << 6)  /* IPv6 with extension headers */

/* At most this many IPv6 extension headers are walked; more is malformed
 * (the kernel does not bound them; a packet that needs more is an attack). */
#define PKT_MAX_EXT_HDRS 8

/* TCP flags as in the header's 13th byte. */
#define PKT_TCP_FIN 0x01
#define PKT_TCP_SYN 0x02
#define PKT_TCP_RST 0x04
#define PKT_TCP_PSH 0x08
#define PKT_TCP_ACK 0x10
#define PKT_TCP_URG 0x20
#define PKT_TCP_ECE 0x40
#define PKT_TCP_CWR 0x80

struct pkt_info {
	uint8_t family;          /* AF_INET, AF_INET6; 0 before the IP header parsed */
	uint8_t proto;           /* L4 protocol (IPv6: after the extension headers) */
	uint8_t err;             /* enum pkt_err */
	uint8_t flags;           /* PKT_F_* */
	struct mseg_addr src, dst;
	uint16_t sport, dport;   /* PKT_F_PORTS */
	uint8_t tcp_flags;       /* PKT_TCP_*; TCP with PKT_F_L4 */
	uint8_t icmp_type;       /* PKT_F_ICMP */
	uint8_t icmp_code;
	uint8_t n_ext;           /* IPv6 extension headers walked */
	uint16_t l4_off;         /* offset of the L4 header (valid once proto is) */
	uint16_t frag_off;       /* fragment offset in bytes (PKT_F_FRAG) */
	uint32_t frag_id;        /* IPv4 id / IPv6 fragment identification */
	uint32_t ip_len;         /* IP total length as the header says (IPv6: 40 + payload) */
};

/* Parse. Returns 0 when every header up to and including the L4 one (if
 * there is one to see) was parsed; -EBADMSG when the packet is malformed;
 * -ENODATA when the capture ended first; -EPROTONOSUPPORT when it is not
 * IPv4 or IPv6. @ret->err says which check failed. */
int pkt_parse(const void *data, size_t caplen, size_t len, struct pkt_info *ret);

/* "truncated tcp header", ...; "" for PKT_OK. */
const char *pkt_err_name(enum pkt_err err);

/* "tcp", "udp", "udplite", "sctp", "icmp", "icmpv6"; NULL for the rest. */
const char *pkt_proto_name(uint8_t proto);

/* The inverse: -EINVAL for an unknown name. */
int pkt_proto_parse(const char *name, uint8_t *ret_proto);

#endif
