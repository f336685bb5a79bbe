/* Pieces of nft text: set names, protocols, elements as nft prints them,
 * the endpoint header. The whole table as text is kernel/table_text.h (it
 * follows the kernel layer's set layout). */
#ifndef MSEG_RENDER_TEXT_H
#define MSEG_RENDER_TEXT_H

#include <stdio.h>

#include "mseg/model/plan.h"

/* Room for the longest element text (two IPv6 addresses, protocol, ports). */
#define RENDER_TEXT_ENTRY_MAX 128
#define RENDER_TEXT_SET_NAME_MAX 16

/* Name of the set holding @shape entries of @family (AF_INET or AF_INET6) in
 * direction @dir, e.g. "in4_port_iv". Returns @buf. */
const char *render_text_set_name(char *buf, size_t size, enum mseg_dir dir, int family,
				 enum entry_shape shape);

/* Protocol as nft prints it in elements: "tcp", "ipv6-icmp", or a number. */
const char *render_text_proto(uint8_t proto, char *buf, size_t size);

/* One set element, e.g. "10.0.0.0/8 . tcp . 80-90", "fd00::1 . ipv6-icmp",
 * "192.0.2.0-192.0.2.6". Returns @buf. */
const char *render_text_entry(const struct mseg_entry *e, char *buf, size_t size);

/* "# endpoint ID (NAMESPACE/NAME) netns PATH" and a newline. 0 or -EIO. */
int render_text_header(FILE *f, const struct mseg_endpoint *ep);

#endif
