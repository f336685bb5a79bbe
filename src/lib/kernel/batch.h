/* Private to the kernel backend: one nfnetlink batch (one transaction),
 * with a record of what produced each message so that a kernel error can
 * name it. */
#ifndef MSEG_BATCH_H
#define MSEG_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mseg/util/err.h"
#include "mseg/model/plan.h"

struct netns;
struct nlmsghdr;

enum nl_msg_kind {
	NL_MSG_TABLE,
	NL_MSG_OBJ,
	NL_MSG_SET,
	NL_MSG_ELEM,
	NL_MSG_CHAIN,
	NL_MSG_RULE,
};

struct nl_batch;

/* Sequence numbers come from @ns; the batch must be committed there. */
struct nl_batch *nl_batch_new(struct netns *ns);
struct nl_batch *nl_batch_free(struct nl_batch *b);

/* Start a message of type NFT_MSG_@type in the batch (NLM_F_ACK is added).
 * NULL when out of memory. Build the payload into it, then call
 * nl_batch_msg_end(). */
struct nlmsghdr *nl_batch_msg_start(struct nl_batch *b, uint16_t type, uint16_t family,
				    uint16_t flags);

/* Finish the message started last. @what is static text naming the
 * operation ("add set"), @name the object ("in4_port", "ingress"). For
 * element messages, every element put into the message must have been
 * announced with nl_batch_elem_src() in order. */
int nl_batch_msg_end(struct nl_batch *b, enum nl_msg_kind kind, const char *what,
		     const char *name);

/* The entry the next kernel element of the current message comes from
 * (@e may be NULL for elements of no entry). */
int nl_batch_elem_src(struct nl_batch *b, const struct mseg_entry *e);

/* The batch frees @p (malloc'd) with itself: memory its element sources
 * point into. -ENOMEM (and @p freed) when it cannot keep it. */
int nl_batch_adopt(struct nl_batch *b, void *p);

/* Messages in the batch (without begin and end). */
size_t nl_batch_msg_count(const struct nl_batch *b);

/* Send the batch in one sendmsg() and read every ack. An empty batch sends
 * nothing. On a kernel error, @err names the failing message; for set
 * elements the entry and the policy and rule it came from (see nft.h).
 * The batch cannot be committed twice. */
int nl_batch_commit(struct netns *ns, struct nl_batch *b, const char *const *policy_names,
		    size_t n_policy_names, struct mseg_err *err);

/* Send a request (not a batch) and run @cb on every reply message until
 * the kernel is done (NLMSG_DONE for dumps, the ack otherwise). @nlh must
 * have been built with a sequence number from netns_seq_reserve(). */
int nl_request(struct netns *ns, struct nlmsghdr *nlh,
	       int (*cb)(const struct nlmsghdr *nlh, void *data), void *data);

/* The length of the run of whole netlink messages at the start of @buf
 * (@len bytes, a received datagram): what to hand to mnl_cb_run(). libmnl
 * 1.0.4 trusts an nlmsg_len above INT_MAX and walks off the buffer; here
 * such a message, like one longer than what is left, ends the run, as
 * libmnl ends it for any other message that does not fit. */
size_t nl_msgs_len(const void *buf, size_t len);

/* After mnl_cb_run() failed: -errno, or -EIO when errno is not one (an
 * NLMSG_ERROR reply carries any int, INT_MIN included, into errno). */
int nl_cb_errno(void);

/* "add element 10.0.0.0/24 . tcp . 80" style text of an entry, prefixed
 * with its provenance when @policy_names allows: for error messages. */
const char *nl_entry_origin(const struct mseg_entry *e, const char *const *policy_names,
			    size_t n_policy_names, char *buf, size_t size);

#endif
