/* The read-back's parsing without a namespace, for tests and fuzzing.
 *
 * ep_table_verify() (nft.h) sends dump requests for the table, its objects,
 * sets, each set's elements, chains and rules, and runs the kernel's reply
 * datagrams through libmnl into callbacks; here the replies are given as
 * buffers and go through the same callbacks and the same comparison. */
#ifndef MSEG_READBACK_H
#define MSEG_READBACK_H

#include <stddef.h>

#include "mseg/kernel/nft.h"

/* Which request a reply answers. */
enum readback_reply {
	READBACK_GEN,      /* NFT_MSG_GETGEN */
	READBACK_TABLE,    /* NFT_MSG_GETTABLE of table inet mseg */
	READBACK_OBJS,     /* NFT_MSG_GETOBJ dump */
	READBACK_SETS,     /* NFT_MSG_GETSET dump */
	READBACK_ELEMS,    /* NFT_MSG_GETSETELEM dump of the next set read */
	READBACK_CHAINS,   /* NFT_MSG_GETCHAIN dump */
	READBACK_RULES,    /* NFT_MSG_GETRULE dump */
	READBACK_N_REPLIES
};

/* One reply datagram, as recv() returned it. */
struct readback_msg {
	enum readback_reply kind;
	const void *buf;
	size_t len;
};

/* Parse @msgs in order (READBACK_ELEMS replies go to the sets in the order
 * the READBACK_SETS replies listed them: the datagram that ends a set's
 * dump, NLMSG_DONE, moves on to the next set) and compare the result with
 * @plan, as ep_table_verify() does; fills @ret (release it with
 * ep_table_report_release()). A reply libmnl refuses (an NLMSG_ERROR, a
 * malformed message) ends the read with -errno, as it would on a socket. */
int readback_parse_for_fuzz(const struct readback_msg *msgs, size_t n_msgs,
			    const struct mseg_ep_plan *plan, const struct table_opts *opts,
			    struct ep_table_report *ret, struct mseg_err *err);

#endif
