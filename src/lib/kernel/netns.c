/* netns: a handle on a network namespace (its path and identity) and the
 * netfilter socket opened inside it.
 *
 * A netlink socket acts in the namespace it was created in, for its whole
 * life. So we enter the namespace only to create the socket: the calling
 * thread setns()es into it, calls socket(), and setns()es back to the
 * namespace it came from. The fd used for setns() is opened for that and
 * closed again (netns.h: what one endpoint costs in fds). */
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/nsfs.h>
#include <linux/sockios.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>

#include "kernel/netns.h"

#ifndef SIOCGSKNS
#define SIOCGSKNS 0x894C
#endif

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

static int open_self_netns(void)
{
	int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Open the namespace file @path for setns() without ever blocking on it:
 * O_PATH first (a FIFO or a device there is not opened), check that it is
 * an nsfs file, and only then open it for real through /proc/self/fd. */
static int nsfs_open(const char *path)
{
	struct statfs sfs;
	char proc[64];
	int pfd, fd;

	pfd = open(path, O_PATH | O_CLOEXEC);
	if (pfd < 0)
		return -errno;
	if (fstatfs(pfd, &sfs) < 0 || sfs.f_type != NSFS_MAGIC) {
		close(pfd);
		return -EINVAL;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	fd = open(proc, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fd = -errno;
	close(pfd);
	return fd;
}

/* -EINVAL unless @fd is a network namespace. */
static int check_netns_fd(int fd)
{
	int type = ioctl(fd, NS_GET_NSTYPE);

	if (type < 0)
		return errno == ENOTTY || errno == EINVAL ? -EINVAL : -errno;
	return type == CLONE_NEWNET ? 0 : -EINVAL;
}

int netns_open(const char *path, struct netns **ret_ns)
{
	struct netns *ns;
	struct stat st;
	int fd, r;

	ns = calloc(1, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	ns->path = strdup(path ? path : "");
	if (!ns->path) {
		r = -ENOMEM;
		goto out_free;
	}
	fd = path ? nsfs_open(path) : open_self_netns();
	if (fd < 0) {
		r = fd;
		goto out_free;
	}
	r = path ? check_netns_fd(fd) : 0;
	if (r == 0 && fstat(fd, &st) < 0)
		r = -errno;
	close(fd);
	if (r < 0)
		goto out_free;
	ns->dev = st.st_dev;
	ns->ino = st.st_ino;
	ns->seq = (uint32_t)time(NULL);
	*ret_ns = ns;
	return 0;

out_free:
	netns_free(ns);
	return r;
}

struct netns *netns_free(struct netns *ns)
{
	if (!ns)
		return NULL;
	netns_nl_reset(ns);
	free(ns->path);
	free(ns);
	return NULL;
}

const char *netns_path(const struct netns *ns)
{
	return ns->path;
}

const struct nft_stats *netns_stats(const struct netns *ns)
{
	return &ns->stats;
}

static bool same_ns(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* What to open inside a namespace: a file when @path is set, else a socket. */
struct ns_open {
	const char *path;
	int flags;
	int domain, type, protocol;
};

static int ns_open_here(const struct ns_open *o)
{
	int fd;

	if (o->path)
		fd = open(o->path, o->flags | O_CLOEXEC);
	else
		fd = socket(o->domain, o->type | SOCK_CLOEXEC, o->protocol);
	return fd < 0 ? -errno : fd;
}

/* An fd of the namespace of @ns, for setns(): from our socket in it when
 * we have one, else from the path, which must still name the namespace
 * netns_open() found there (-ESTALE: it names another one now). */
static int ns_fd_open(const struct netns *ns)
{
	struct stat st;
	int fd;

	if (ns->nl) {
		fd = ioctl(mnl_socket_get_fd(ns->nl), SIOCGSKNS);
		if (fd >= 0)
			return fd;
	}
	if (ns->path[0]) {
		fd = nsfs_open(ns->path);
		if (fd < 0)
			return fd;
	} else {
		fd = open_self_netns();
		if (fd < 0)
			return fd;
	}
	if (fstat(fd, &st) < 0 || st.st_dev != ns->dev || st.st_ino != ns->ino) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

/* Enter @ns with setns(), open, and return to the thread's own namespace. */
static int ns_open_in(struct netns *ns, const struct ns_open *o)
{
	int self, nsfd, r;

	self = open_self_netns();
	if (self < 0)
		return self;
	nsfd = ns_fd_open(ns);
	if (nsfd < 0) {
		r = nsfd;
		goto out_close_self;
	}
	if (same_ns(self, nsfd)) {
		r = ns_open_here(o);
		goto out_close_nsfd;
	}
	if (setns(nsfd, CLONE_NEWNET) < 0) {
		r = -errno;
		goto out_close_nsfd;
	}
	r = ns_open_here(o);
	if (setns(self, CLONE_NEWNET) < 0) {
		/* The thread now lives in the endpoint's namespace: anything it
		 * did next (a socket, a file, the API) would happen there. Nothing
		 * can be trusted any more; stop. The tables stay in the kernel
		 * (fail-closed where enforced) and the supervisor restarts us. */
		static const char msg[] = "msegd: cannot return to its own network namespace "
					  "after setns(); aborting (the tables stay in force)\n";

		if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
			/* nothing more to say */
		}
		abort();
	}
out_close_nsfd:
	close(nsfd);
out_close_self:
	close(self);
	return r;
}

int netns_socket(struct netns *ns, int domain, int type, int protocol)
{
	const struct ns_open o = { .domain = domain, .type = type, .protocol = protocol };

	return ns_open_in(ns, &o);
}

int netns_open_file(struct netns *ns, const char *path, int flags)
{
	const struct ns_open o = { .path = path, .flags = flags };

	return ns_open_in(ns, &o);
}

static int sock_get_int(int fd, int opt, int *ret)
{
	socklen_t len = sizeof(*ret);

	return getsockopt(fd, SOL_SOCKET, opt, ret, &len) < 0 ? -errno : 0;
}

int netns_nl(struct netns *ns, struct mnl_socket **ret_nl)
{
	struct mnl_socket *nl;
	int fd, one = 1, r;

	if (ns->nl) {
		*ret_nl = ns->nl;
		return 0;
	}
	fd = netns_socket(ns, AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER);
	if (fd < 0)
		return fd;
	nl = mnl_socket_fdopen(fd);
	if (!nl) {
		r = errno ? -errno : -ENOMEM;
		close(fd);
		return r;
	}
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		goto out_close;
	}
	/* Errors carry the offset of the failing attribute (which element),
	 * and acks do not echo our (up to 64 KiB) messages back. Both are
	 * optional: older kernels just lack the detail. */
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	r = sock_get_int(fd, SO_SNDBUF, &ns->sndbuf);
	if (r < 0)
		goto out_close;
	r = sock_get_int(fd, SO_RCVBUF, &ns->rcvbuf);
	if (r < 0)
		goto out_close;
	ns->nl = nl;
	ns->portid = mnl_socket_get_portid(nl);
	*ret_nl = nl;
	return 0;

out_close:
	mnl_socket_close(nl);
	return r;
}

void netns_nl_reset(struct netns *ns)
{
	if (ns->nl)
		mnl_socket_close(ns->nl);
	ns->nl = NULL;
	ns->portid = 0;
}

/* The kernel doubles what we ask for (bookkeeping overhead) and reports the
 * doubled value. */
static int raise_buf(int fd, int opt, int force_opt, size_t want, int *cur)
{
	int v, r;

	if (want > INT32_MAX / 2)
		return -EMSGSIZE;
	if ((size_t)*cur >= want)
		return 0;
	v = (int)want;
	if (setsockopt(fd, SOL_SOCKET, force_opt, &v, sizeof(v)) < 0 &&
	    setsockopt(fd, SOL_SOCKET, opt, &v, sizeof(v)) < 0)
		return -errno;
	r = sock_get_int(fd, opt, cur);
	if (r < 0)
		return r;
	return (size_t)*cur >= want ? 0 : -EMSGSIZE;
}

int netns_nl_buffers(struct netns *ns, size_t snd, size_t rcv)
{
	int fd, r;

	if (!ns->nl)
		return -ENOTCONN;
	fd = mnl_socket_get_fd(ns->nl);
	/* netlink_sendmsg() refuses a message larger than sk_sndbuf - 32 */
	r = raise_buf(fd, SO_SNDBUF, SO_SNDBUFFORCE, snd + 4096, &ns->sndbuf);
	if (r < 0)
		return r;
	/* a short receive buffer only loses acks when it is too small; ask,
	 * but do not fail when the kernel gives less */
	(void)raise_buf(fd, SO_RCVBUF, SO_RCVBUFFORCE, rcv, &ns->rcvbuf);
	return 0;
}

/* In the data segment: its pages count only once a reply has touched them,
 * and then once for the whole process. */
static char netns_rxbuf_shared[NETNS_RXBUF_SIZE] __attribute__((aligned(16)));
static bool netns_rxbuf_busy;

int netns_rxbuf_take(struct netns_rxbuf *rx)
{
	if (!__atomic_test_and_set(&netns_rxbuf_busy, __ATOMIC_ACQUIRE)) {
		rx->buf = netns_rxbuf_shared;
		rx->shared = true;
	} else {
		rx->buf = malloc(NETNS_RXBUF_SIZE);
		if (!rx->buf)
			return -ENOMEM;
		rx->shared = false;
	}
	rx->size = NETNS_RXBUF_SIZE;
	return 0;
}

void netns_rxbuf_put(struct netns_rxbuf *rx)
{
	if (!rx->buf)
		return;
	if (rx->shared)
		__atomic_clear(&netns_rxbuf_busy, __ATOMIC_RELEASE);
	else
		free(rx->buf);
	rx->buf = NULL;
}

uint32_t netns_seq_reserve(struct netns *ns, uint32_t n)
{
	uint32_t first = ns->seq;

	if (first == 0 || first + n < first)   /* 0 disables libmnl's seq check */
		first = 1;
	ns->seq = first + n;
	return first;
}
