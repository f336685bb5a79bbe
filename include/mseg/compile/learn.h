/* Learning an AllowList from recorded traffic (GET /v1/recommendations,
 * `mseg learn`). Pure: flow observations and the inventory in, a list of
 * groups and allow rules out (and its YAML text); no I/O but the FILE
 * the caller gives to the renderer.
 *
 * - Each observation is one connection attempt an endpoint of the
 *   namespace recorded (ingress: peer -> endpoint, egress: endpoint ->
 *   peer). The same connection recorded at both ends counts once per end.
 * - Endpoints of the namespace are named by label selectors: for each
 *   distinct label set seen, the smallest subset of its labels that no
 *   endpoint of the namespace with other labels also has (replicas, which
 *   share every label, share the group). Addresses are used only for peers
 *   that are no endpoint of the namespace, and for an endpoint without
 *   labels that set it apart (it is reported in `warnings`).
 * - Outside addresses become CIDRs: single addresses, merged into a
 *   covering prefix only when every address inside it was seen with the
 *   same ports and the same group, or (aggregate4/6) widened to /N on
 *   request.
 * - Ports are destination ports (a client's ephemeral source port never
 *   becomes a rule); port-less protocols (ICMP) by protocol.
 * - Observations are flow records (audit mode: what passed unmatched) or
 *   accepted-connection summaries (learn mode: what the allow sets
 *   admitted, counted by the kernel, @accepted).
 * - Each rule carries the number of recorded flows (packets aggregated by
 *   the flow ring count once per record), of accepted connections, and the
 *   first and last time seen. */
#ifndef MSEG_LEARN_H
#define MSEG_LEARN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "mseg/model/model.h"

struct learn_flow {
	const char *ep_id;           /* the endpoint that recorded it */
	enum mseg_dir dir;
	struct mseg_addr src, dst;
	uint8_t proto;
	bool has_port;               /* TCP, UDP, UDPLITE, SCTP */
	uint16_t dport;
	uint64_t count;              /* records this stands for (>= 1), or with
				      * @accepted the connections it stands for */
	bool accepted;               /* an accepted-connection summary of a
				      * learning endpoint, not a flow record */
	uint64_t first_ns, last_ns;
};

struct learn_opts {
	const char *ns;              /* the namespace learned for (required) */
	const char *name;            /* metadata.name; NULL = "learned" */
	uint8_t aggregate4;          /* widen outside IPv4 peers to /N; 0 = no */
	uint8_t aggregate6;          /* the same for IPv6; 0 = no */
};

#define LEARN_GROUP_NONE UINT32_MAX

struct learn_group {
	char name[64];
	bool is_addrs;
	/* selector group: labels (pointing into the inventory's endpoints) */
	const struct mseg_label **labels;
	size_t n_labels;
	/* address group */
	struct mseg_cidr *cidrs;
	size_t n_cidrs;
	/* ... as NetworkPolicy peers, which can name pods of other
	 * namespaces: those endpoints (with labels) among its addresses, one
	 * per label set, and the CIDRs of its other addresses. Both NULL for
	 * an endpoint's own address group. */
	const struct mseg_endpoint **peer_eps;
	size_t n_peer_eps;
	struct mseg_cidr *np_cidrs;
	size_t n_np_cidrs;
	size_t n_endpoints;          /* endpoints of the namespace it selects */
};

struct learn_port {
	uint8_t proto;
	bool has_port;
	uint16_t port;
};

struct learn_rule {
	uint32_t from, to;           /* group indexes */
	struct learn_port *ports;
	size_t n_ports;
	uint64_t flows;              /* flow records */
	uint64_t connections;        /* accepted connections (summaries) */
	uint64_t first_ns, last_ns;
};

struct learn_result {
	struct learn_group *groups;
	size_t n_groups;
	struct learn_rule *rules;
	size_t n_rules;
	size_t flows_used;           /* flow records that went into rules */
	uint64_t accepted_used;      /* accepted connections that went into rules */
	size_t flows_skipped;        /* of another namespace, unknown endpoint, ... */
	char **warnings;
	size_t n_warnings;
};

/* @eps in any order. -EINVAL without opts->ns,
 * -ENOMEM. */
int learn_run(const struct learn_flow *flows, size_t n_flows,
	      const struct mseg_endpoint *const *eps, size_t n_eps,
	      const struct learn_opts *opts, struct learn_result **ret);
struct learn_result *learn_result_free(struct learn_result *r);

/* The AllowList as YAML that `mseg apply` takes, with a comment per rule
 * ("# 12 flows, first 2026-12-06T05:00:00.000Z, last ..."). 0 or -EIO. */
int learn_render_yaml(FILE *f, const struct learn_result *r, const struct learn_opts *opts);

/* The same allows as Kubernetes NetworkPolicies (networking.k8s.io/v1),
 * YAML documents separated by "---": one per selector group, named
 * "NAME-GROUP", selecting the group's endpoints by its labels, isolating
 * both directions as the AllowList does (policyTypes [Ingress, Egress]);
 * its ingress lists the rules to the group, its egress the rules from it,
 * each with the rule's comment. Peers of the namespace become podSelector
 * peers; endpoints of other namespaces that the list names by address
 * become namespaceSelector (kubernetes.io/metadata.name) + podSelector (all
 * their labels) peers; other addresses ipBlock peers. What NetworkPolicy cannot say
 * (ICMP, protocols other than TCP, UDP and SCTP) is left out, and a
 * comment says so. 0 or -EIO. */
int learn_render_netpol(FILE *f, const struct learn_result *r, const struct learn_opts *opts);

/* "tcp/5432", "udp/53", "icmp", "proto/47" into @buf; returns @buf. */
const char *learn_port_format(const struct learn_port *p, char *buf, size_t size);

#endif
