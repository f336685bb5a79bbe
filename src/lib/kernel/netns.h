/* Private to the kernel backend: the namespace handle and its netfilter
 * socket. */
#ifndef MSEG_NETNS_PRIV_H
#define MSEG_NETNS_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "mseg/kernel/nft.h"
#include "kernel/ep_shape.h"

struct mnl_socket;

struct netns {
	int fd;                          /* the namespace, for setns() */
	char *path;
	struct mnl_socket *nl;           /* NETLINK_NETFILTER inside it; lazily */
	uint32_t portid;
	uint32_t seq;
	int sndbuf, rcvbuf;              /* what the kernel reports for the socket */
	char *rxbuf;
	size_t rxbuf_size;
	struct nft_stats stats;
	struct ep_shape programmed;
};

/* The netfilter socket of @ns, opened (inside the namespace) on first use,
 * with extended acks and capped acks enabled. */
int netns_nl(struct netns *ns, struct mnl_socket **ret_nl);

/* Close the socket after an error that may leave unread replies behind
 * (it is reopened on next use). */
void netns_nl_reset(struct netns *ns);

/* Raise the socket buffers to at least @snd / @rcv bytes; as root beyond
 * the sysctl limits (SO_SNDBUFFORCE/SO_RCVBUFFORCE), like nft does.
 * Returns -EMSGSIZE when the send buffer cannot hold @snd. */
int netns_nl_buffers(struct netns *ns, size_t snd, size_t rcv);

/* Reserve @n consecutive sequence numbers; returns the first. */
uint32_t netns_seq_reserve(struct netns *ns, uint32_t n);

#endif
