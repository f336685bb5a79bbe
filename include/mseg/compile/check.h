/* "Would A reach B on this port, and why?" decided from the policies and the
 * inventory alone (pure: no kernel, no I/O). Traffic from A to B passes A's
 * egress (when A is an endpoint) and B's ingress (when B is an endpoint);
 * each side is either not isolated, allowed by an entry whose provenance
 * names the policy and rule, or refused, and then the policies that isolate
 * that endpoint in that direction say why. */
#ifndef MSEG_CHECK_H
#define MSEG_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "mseg/util/err.h"
#include "mseg/model/model.h"
#include "mseg/model/plan.h"

#define CHECK_MAX_ISOLATING 16

struct check_query {
	const char *from, *to;   /* endpoint id or IPv4/IPv6 address */
	uint8_t proto;           /* IPPROTO_*; 0 = any protocol */
	uint16_t port;           /* destination port for TCP/UDP/SCTP/UDPLITE */
};

struct check_side {
	const struct mseg_endpoint *ep;   /* NULL: not a managed endpoint, nothing checked */
	bool isolated;
	enum mseg_mode mode;
	bool allowed;                     /* not isolated, or an entry admits */
	/* the allowing rule (when isolated and allowed) */
	const struct mseg_policy *policy;
	unsigned rule;                    /* the rule's index in its policy's list */
	/* the reasons for the isolation (when isolated) */
	const struct mseg_policy *isolating[CHECK_MAX_ISOLATING];
	size_t n_isolating;               /* may exceed CHECK_MAX_ISOLATING */
	bool default_deny;                /* isolated by --default-deny only */
};

enum check_verdict {
	CHECK_ALLOWED,     /* every side admits */
	CHECK_AUDITED,     /* refused, but a refusing side is in audit mode (passes, logged) */
	CHECK_DENIED,
};

struct check_result {
	enum check_verdict verdict;
	struct mseg_addr src, dst;        /* the addresses that were checked */
	const struct mseg_endpoint *src_ep, *dst_ep;
	struct check_side egress;         /* at the source */
	struct check_side ingress;        /* at the destination */
};

/* Decide. @pols/@eps as for compile_plan. -EINVAL with @err filled when
 * @from or @to is neither an endpoint id nor an address, or when the two
 * share no address family; -ENOMEM. Pointers in @ret point into @pols and
 * @eps. */
int check_decide(const struct mseg_policy *const *pols, size_t n_pols,
		 const struct mseg_endpoint *const *eps, size_t n_eps,
		 const struct compile_opts *opts, const struct check_query *q,
		 struct check_result *ret, struct mseg_err *err);

const char *check_verdict_name(enum check_verdict v);

/* The lookup both check_decide() and the revocation of established
 * connections use: does direction plan @dp admit a packet to or from @peer
 * (the remote side), protocol @proto (0 = any), destination port @port?
 * A direction that is not isolated admits everything (*ret_entry = NULL);
 * otherwise *ret_entry (when given) is the first admitting entry. Audit mode
 * is not considered here: the caller decides what a refusal means. */
bool check_dir_admits(const struct mseg_dir_plan *dp, const struct mseg_addr *peer, uint8_t proto,
		      uint16_t port, const struct mseg_entry **ret_entry);

/* The same answer for many lookups against one direction plan (the
 * revocation's walk of a conntrack table): the entries sorted by address
 * with a running maximum of their ends, so a lookup binary-searches and
 * tests (with check_dir_admits) only the entries whose range can hold the
 * address. @dp must outlive the index. NULL: out of memory. */
struct check_index;
struct check_index *check_index_new(const struct mseg_dir_plan *dp);
struct check_index *check_index_free(struct check_index *ix);
bool check_index_admits(const struct check_index *ix, const struct mseg_addr *peer, uint8_t proto,
			uint16_t port);

#endif
