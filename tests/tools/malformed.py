#!/usr/bin/env python3
"""Send malformed and unusual IP packets through raw sockets (IP_HDRINCL).

    malformed.py SRC4 DST4 SRC6 DST6    prints how many were sent

Run it inside a test namespace. The kernel refuses to send an IPv4 header
with IHL < 5 and fixes the total length itself, so those two cases are
covered by the packet parser's unit tests. Four of the seven do not parse
(truncated TCP, 3 bytes of TCP, IPv6 payload length and extension header
past the end)."""
import socket
import struct
import sys

src4, dst4, src6, dst6 = sys.argv[1:5]


def ip4(proto, payload, ihl=5, opts=b'', frag=0):
    hdr = struct.pack('!BBHHHBBH4s4s', 0x40 | ihl, 0, 20 + len(opts) + len(payload), 0x1234,
                      frag, 64, proto, 0, socket.inet_aton(src4), socket.inet_aton(dst4))
    return hdr + opts + payload


def tcp(dport, flags=0x02):
    return struct.pack('!HHIIBBHHH', 40000, dport, 1, 0, 5 << 4, flags, 65535, 0, 0)


def ip6(nh, payload, plen=None):
    return struct.pack('!IHBB16s16s', 0x60000000, len(payload) if plen is None else plen,
                       nh, 64, socket.inet_pton(socket.AF_INET6, src6),
                       socket.inet_pton(socket.AF_INET6, dst6)) + payload


def ext(nh, units=0):
    n = 8 * (units + 1)
    return bytes([nh, units, 1, n - 4]) + bytes(n - 4)


s4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
cases = [
    (s4, ip4(6, tcp(7001)[:8])),                                 # truncated TCP header
    (s4, ip4(6, tcp(7003), ihl=6, opts=b'\x01\x01\x01\x00')),    # IP options (NOP NOP NOP EOL)
    (s4, ip4(17, bytes(16), frag=100)),                          # non-first fragment
    (s6, ip6(0, ext(60) + ext(6) + tcp(7004))),                  # hop-by-hop, dest. options, TCP
    (s6, ip6(6, tcp(7005), plen=200)),                           # payload length past the end
    (s6, ip6(0, bytes([6, 8, 1, 4]) + bytes(4))),                # extension header past the end
    (s4, ip4(6, tcp(7001)[:3])),                                 # 3 bytes of TCP
]
sent = 0
for s, pkt in cases:
    dst = dst4 if s is s4 else dst6
    try:
        s.sendto(pkt, (dst, 0))
        sent += 1
    except OSError as e:
        print('send failed:', e, file=sys.stderr)
print(sent)
