/* Shared by the document parsers of policy.c (AllowList, the loader) and
 * netpol.c (Kubernetes NetworkPolicy v1). Private to libmseg. */
#ifndef MSEG_POLICY_PRIV_H
#define MSEG_POLICY_PRIV_H

#include "mseg/model/names.h"
#include "mseg/model/policy.h"
#include "model/ytree.h"

#define POLICY_WHAT_SIZE 160

struct group;

/* One document being turned into a policy. */
struct pctx {
	struct ycheck ck;
	struct mseg_policy *p;
	const struct ynode *name_node;
	struct group *groups;        /* AllowList: sorted by name */
	size_t n_groups;
};

int pctx_strdup(struct pctx *c, const char *s, const char **ret);
void pctx_pos(struct pctx *c, const struct ynode *n, struct mseg_pos *ret);

/* "10.0.0.0/8", "fd00::/8"; a bare address (a /32 or /128) unless
 * @need_plen. Host bits beyond the prefix are an error (as the API server
 * has it for new objects since StrictIPCIDRValidation). */
int cidr_parse(struct pctx *c, const struct ynode *n, const char *what, bool need_plen,
	       struct mseg_cidr *ret);
bool cidr_contains(const struct mseg_cidr *outer, const struct mseg_cidr *inner);

/* Every IPv4 and IPv6 address (0.0.0.0/0 and ::/0), named @group. */
int peer_world_init(struct pctx *c, const char *group, struct mseg_peer *ret);

/* Sort requirements by key (selector identity in the compiler). */
void selector_sort(struct mseg_selector *sel);

/* NetworkPolicy: metadata is parsed; @root is the document. */
int netpol_spec_parse(struct pctx *c, const struct ynode *root);


#endif
