/* Private to the kernel backend: the namespace handle and its netfilter
 * socket. */
#ifndef MSEG_NETNS_PRIV_H
#define MSEG_NETNS_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mseg/kernel/nft.h"
#include "kernel/ep_shape.h"

struct mnl_socket;

/* No fd is kept for the namespace itself: one endpoint costs msegd the
 * netfilter socket below, its NFQUEUE socket and that listener's /proc
 * file, nothing more. To open something inside the namespace we take the
 * namespace from our socket (SIOCGSKNS, exact even after the path is gone)
 * or, before the first socket, from @path, checked against the identity
 * recorded at netns_open(). */
struct netns {
	char *path;                      /* "" = the namespace of the opener */
	dev_t dev;                       /* the namespace's identity (nsfs) */
	ino_t ino;
	struct mnl_socket *nl;           /* NETLINK_NETFILTER inside it; lazily */
	uint32_t portid;
	uint32_t seq;
	int sndbuf, rcvbuf;              /* what the kernel reports for the socket */
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

/* The receive buffer for netlink replies, one for all namespaces: msegd
 * reads one namespace's socket at a time, and even a dump of a 100k-element
 * set arrives in datagrams far smaller than this. Take it for one recv() and
 * the mnl_cb_run() over what it returned; should it be taken already
 * (another thread, or a callback that reads again), a heap buffer of the
 * same size stands in. */
#define NETNS_RXBUF_SIZE (128u << 10)
struct netns_rxbuf {
	char *buf;
	size_t size;
	bool shared;
};
int netns_rxbuf_take(struct netns_rxbuf *rx);
void netns_rxbuf_put(struct netns_rxbuf *rx);

/* Reserve @n consecutive sequence numbers; returns the first. */
uint32_t netns_seq_reserve(struct netns *ns, uint32_t n);

#endif
