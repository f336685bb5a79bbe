/* Address helpers (include/mseg/addr.h). */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "mseg/model/addr.h"

bool addr_eq(const struct mseg_addr *a, const struct mseg_addr *b)
{
	size_t len = a->family == AF_INET ? 4 : 16;

	return a->family == b->family && memcmp(a->bytes, b->bytes, len) == 0;
}

int addr_parse(const char *s, struct mseg_addr *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (inet_pton(AF_INET, s, ret->bytes) == 1) {
		ret->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, ret->bytes) == 1) {
		ret->family = AF_INET6;
		return 0;
	}
	return -EINVAL;
}

const char *addr_format(const struct mseg_addr *a, char *buf, size_t size)
{
	if (!inet_ntop(a->family, a->bytes, buf, (socklen_t)size))
		snprintf(buf, size, "?");
	return buf;
}

bool addr_in_cidr(const struct mseg_addr *a, const struct mseg_cidr *c)
{
	unsigned bits = c->plen, i;

	if (c->addr.family != a->family)
		return false;
	for (i = 0; bits >= 8; i++, bits -= 8)
		if (c->addr.bytes[i] != a->bytes[i])
			return false;
	return !bits || ((c->addr.bytes[i] ^ a->bytes[i]) & (0xff00u >> bits)) == 0;
}

unsigned __int128 addr_u128(const struct mseg_addr *a)
{
	size_t n = a->family == AF_INET6 ? 16 : 4;
	unsigned __int128 v = 0;

	for (size_t i = 0; i < n; i++)
		v = (v << 8) | a->bytes[i];
	return v;
}

/* Address bytes as big-endian integers: memcmp() order, without the call. */
static int bytes_cmp(const uint8_t *a, const uint8_t *b, bool v6)
{
	uint64_t x, y;
	uint32_t p, q;

	if (!v6) {
		memcpy(&p, a, 4);
		memcpy(&q, b, 4);
		p = be32toh(p);
		q = be32toh(q);
		return (p > q) - (p < q);
	}
	for (int i = 0; i < 16; i += 8) {
		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		if (x != y) {
			x = be64toh(x);
			y = be64toh(y);
			return x < y ? -1 : 1;
		}
	}
	return 0;
}

int addr_entry_cmp(const struct mseg_entry *a, const struct mseg_entry *b)
{
	bool v6 = a->lo.family == AF_INET6;
	int c;

	if (a->lo.family != b->lo.family)
		return a->lo.family < b->lo.family ? -1 : 1;
	c = bytes_cmp(a->lo.bytes, b->lo.bytes, v6);
	if (c)
		return c;
	c = bytes_cmp(a->hi.bytes, b->hi.bytes, v6);
	if (c)
		return c;
	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	if (a->port_lo != b->port_lo)
		return a->port_lo < b->port_lo ? -1 : 1;
	if (a->port_hi != b->port_hi)
		return a->port_hi < b->port_hi ? -1 : 1;
	return 0;
}
