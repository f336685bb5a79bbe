/* Model objects, plan differences and check answers as JSON. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/model/addr.h"
#include "mseg/compile/render_text.h"
#include "mseg/model/selector.h"
#include "api/api_json.h"

/* @s as a JSON string; bytes that are not UTF-8 become \xNN (jansson
 * refuses such strings, which would lose the whole message). */
static json_t *json_string_escaped(const char *s)
{
	json_t *j = json_string(s);
	char *buf, *w;

	if (j || !s)
		return j;
	buf = malloc(strlen(s) * 4 + 1);
	if (!buf)
		return NULL;
	w = buf;
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		size_t n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 :
			   (*p & 0xf8) == 0xf0 ? 4 : 0;
		size_t k = 1;

		bool ok;

		while (n > 1 && k < n && (p[k] & 0xc0) == 0x80)
			k++;
		ok = n != 0 && k == n;
		if (ok && n > 1) {
			/* overlong forms and surrogates: as jansson judges them */
			json_t *t = json_stringn((const char *)p, n);

			ok = t != NULL;
			json_decref(t);
		}
		if (!ok) {
			w += sprintf(w, "\\x%02x", *p);
			p++;
			continue;
		}
		memcpy(w, p, n);
		w += n;
		p += n;
	}
	*w = '\0';
	j = json_string(buf);
	free(buf);
	return j;
}

json_t *api_json_error(const char *msg, unsigned line, unsigned col)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "error", json_string_escaped(msg));
	if (line) {
		json_object_set_new(o, "line", json_integer(line));
		json_object_set_new(o, "column", json_integer(col));
	}
	return o;
}

json_t *api_json_error_from(const struct mseg_err *err)
{
	return api_json_error(err->msg[0] ? err->msg : "error", err->line, err->col);
}

static const char *proto_name(uint8_t proto, char *buf, size_t size)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "tcp";
	case IPPROTO_UDP:
		return "udp";
	case IPPROTO_SCTP:
		return "sctp";
	case IPPROTO_UDPLITE:
		return "udplite";
	case IPPROTO_ICMP:
		return "icmp";
	case IPPROTO_ICMPV6:
		return "icmpv6";
	}
	snprintf(buf, size, "%u", proto);
	return buf;
}

const char *api_json_port(const struct mseg_port *p, char *buf, size_t size)
{
	char pb[8];
	const char *pn;

	if (p->proto == 0) {
		snprintf(buf, size, "any");
		return buf;
	}
	pn = proto_name(p->proto, pb, sizeof(pb));
	if (p->name)
		snprintf(buf, size, "%s/%s", pn, p->name);
	else if (!proto_has_ports(p->proto))
		snprintf(buf, size, "%s", pn);
	else if (p->lo == 0 && p->hi == 65535)
		snprintf(buf, size, "%s", pn);
	else if (p->lo == p->hi)
		snprintf(buf, size, "%s/%u", pn, p->lo);
	else
		snprintf(buf, size, "%s/%u-%u", pn, p->lo, p->hi);
	return buf;
}

static json_t *selector_json(const struct mseg_selector *s)
{
	static const char *const ops[] = { "In", "NotIn", "Exists", "DoesNotExist" };
	json_t *a = json_array();

	for (size_t i = 0; a && i < s->n_reqs; i++) {
		const struct mseg_sel_req *r = &s->reqs[i];
		json_t *o = json_object(), *v = json_array();

		for (size_t k = 0; k < r->n_values; k++)
			json_array_append_new(v, json_string(r->values[k]));
		json_object_set_new(o, "key", json_string(r->key));
		json_object_set_new(o, "operator", json_string(ops[r->op]));
		json_object_set_new(o, "values", v);
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *cidrs_json(const struct mseg_cidr *c, size_t n)
{
	json_t *a = json_array();
	char buf[INET6_ADDRSTRLEN], s[INET6_ADDRSTRLEN + 8];

	for (size_t i = 0; a && i < n; i++) {
		snprintf(s, sizeof(s), "%s/%u", addr_format(&c[i].addr, buf, sizeof(buf)),
			 c[i].plen);
		json_array_append_new(a, json_string(s));
	}
	return a;
}

static json_t *peer_json(const struct mseg_peer *p)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	if (p->group)
		json_object_set_new(o, "group", json_string(p->group));
	if (p->kind == MSEG_PEER_ADDRS) {
		json_object_set_new(o, "cidrs", cidrs_json(p->cidrs, p->n_cidrs));
		if (p->n_except)
			json_object_set_new(o, "except", cidrs_json(p->except, p->n_except));
		return o;
	}
	switch (p->ns_scope) {
	case MSEG_NS_NAMED:
		json_object_set_new(o, "namespace", json_string(p->ns));
		break;
	case MSEG_NS_SELECTOR:
		json_object_set_new(o, "namespace_selector", selector_json(&p->ns_sel));
		break;
	case MSEG_NS_ANY:
		json_object_set_new(o, "all_namespaces", json_true());
		break;
	}
	json_object_set_new(o, "selector", selector_json(&p->ep_sel));
	return o;
}

static const char *dir_name(enum mseg_dir d)
{
	return d == MSEG_DIR_INGRESS ? "ingress" : "egress";
}

json_t *api_json_policy(const struct mseg_policy *p, const char *source)
{
	json_t *o = json_object(), *iso = json_array(), *subj = json_array(), *rules = json_array();
	char buf[64];

	if (!o || !iso || !subj || !rules) {
		json_decref(o);
		json_decref(iso);
		json_decref(subj);
		json_decref(rules);
		return NULL;
	}
	json_object_set_new(o, "namespace", json_string(p->ns));
	json_object_set_new(o, "name", json_string(p->name));
	json_object_set_new(o, "kind", json_string(p->kind == MSEG_KIND_ALLOWLIST ?
							   "AllowList" : "NetworkPolicy"));
	json_object_set_new(o, "mode", json_string(p->learn ? "learn" : p->mode == MSEG_MODE_AUDIT ? "audit" : "enforce"));
	for (int d = 0; d < MSEG_DIR_COUNT; d++)
		if (p->isolation & (1u << d))
			json_array_append_new(iso, json_string(dir_name(d)));
	json_object_set_new(o, "isolation", iso);
	if (p->revoke != MSEG_REVOKE_INHERIT)
		json_object_set_new(o, "revoke", json_string(p->revoke == MSEG_REVOKE_NEW_ONLY ?
								    "new-only" : "established"));
	for (size_t i = 0; i < p->n_subjects; i++)
		json_array_append_new(subj, peer_json(&p->subjects[i]));
	json_object_set_new(o, "subjects", subj);
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct mseg_rule *r = &p->rules[i];
		json_t *ro = json_object(), *peers = json_array(), *ports = json_array();

		json_object_set_new(ro, "index", json_integer(r->index));
		json_object_set_new(ro, "direction", json_string(dir_name(r->dir)));
		json_object_set_new(ro, "local", peer_json(&r->local));
		for (size_t k = 0; k < r->n_peers; k++)
			json_array_append_new(peers, peer_json(&r->peers[k]));
		json_object_set_new(ro, "peers", peers);
		for (size_t k = 0; k < r->n_ports; k++)
			json_array_append_new(ports, json_string(api_json_port(&r->ports[k], buf,
									     sizeof(buf))));
		json_object_set_new(ro, "ports", ports);
		json_array_append_new(rules, ro);
	}
	json_object_set_new(o, "rules", rules);
	if (source)
		json_object_set_new(o, "source", json_string(source));
	return o;
}

json_t *api_json_endpoint(const struct mseg_endpoint *ep, const char *source)
{
	json_t *o = json_object(), *labels = json_object(), *ips = json_array(),
	       *ports = json_array();
	char buf[INET6_ADDRSTRLEN], pb[8];

	if (!o || !labels || !ips || !ports) {
		json_decref(o);
		json_decref(labels);
		json_decref(ips);
		json_decref(ports);
		return NULL;
	}
	json_object_set_new(o, "id", json_string(ep->id));
	json_object_set_new(o, "name", json_string(ep->name ? ep->name : ""));
	json_object_set_new(o, "namespace", json_string(selector_ns_name(ep->ns)));
	for (size_t i = 0; i < ep->n_labels; i++)
		json_object_set_new(labels, ep->labels[i].key, json_string(ep->labels[i].value));
	json_object_set_new(o, "labels", labels);
	json_object_set_new(o, "netns", ep->netns ? json_string(ep->netns) : json_null());
	if (ep->pod_uid)
		json_object_set_new(o, "pod_uid", json_string(ep->pod_uid));
	for (size_t i = 0; i < ep->n_ips; i++)
		json_array_append_new(ips, json_string(addr_format(&ep->ips[i], buf, sizeof(buf))));
	json_object_set_new(o, "ips", ips);
	for (size_t i = 0; i < ep->n_ports; i++) {
		json_t *po = json_object();
		char up[8];

		json_object_set_new(po, "name", json_string(ep->ports[i].name));
		json_object_set_new(po, "port", json_integer(ep->ports[i].port));
		/* as the endpoint document spells it (Kubernetes: TCP, UDP,
		 * SCTP), so that what GET shows can be sent back */
		snprintf(up, sizeof(up), "%s", proto_name(ep->ports[i].proto, pb, sizeof(pb)));
		for (char *c = up; *c; c++)
			*c = (char)toupper((unsigned char)*c);
		json_object_set_new(po, "protocol", json_string(up));
		json_array_append_new(ports, po);
	}
	if (ep->n_ports)
		json_object_set_new(o, "ports", ports);
	else
		json_decref(ports);
	if (source)
		json_object_set_new(o, "source", json_string(source));
	return o;
}

/* ---- plan differences ---- */

static int entry_cmp(const void *pa, const void *pb)
{
	return addr_entry_cmp(pa, pb);
}

static struct mseg_entry *entries_sorted(const struct mseg_dir_plan *d)
{
	struct mseg_entry *v;

	if (!d || !d->n_entries)
		return NULL;
	v = malloc(d->n_entries * sizeof(*v));
	if (!v)
		return NULL;
	memcpy(v, d->entries, d->n_entries * sizeof(*v));
	qsort(v, d->n_entries, sizeof(*v), entry_cmp);
	return v;
}

static void list_add(json_t *list, size_t *total, size_t max, const struct mseg_entry *e)
{
	char buf[RENDER_TEXT_ENTRY_MAX];

	if (*total < max)
		json_array_append_new(list, json_string(render_text_entry(e, buf, sizeof(buf))));
	(*total)++;
}

/* NULL: no difference (or out of memory) */
static json_t *dir_diff(const struct mseg_dir_plan *a, const struct mseg_dir_plan *b, size_t max)
{
	size_t na = a ? a->n_entries : 0, nb = b ? b->n_entries : 0;
	struct mseg_entry *va = entries_sorted(a), *vb = entries_sorted(b);
	bool iso_a = a && a->isolated, iso_b = b && b->isolated;
	enum mseg_mode ma = a ? a->mode : MSEG_MODE_ENFORCE, mb = b ? b->mode : MSEG_MODE_ENFORCE;
	json_t *o = NULL, *added = json_array(), *removed = json_array();
	size_t i = 0, k = 0, n_added = 0, n_removed = 0;

	if ((na && !va) || (nb && !vb) || !added || !removed)
		goto out_free;
	while (i < na || k < nb) {
		int c = i == na ? 1 : k == nb ? -1 : entry_cmp(&va[i], &vb[k]);

		if (c == 0) {
			i++;
			k++;
		} else if (c < 0) {
			list_add(removed, &n_removed, max, &va[i++]);
		} else {
			list_add(added, &n_added, max, &vb[k++]);
		}
	}
	if (iso_a == iso_b && (!iso_a || ma == mb) && !n_added && !n_removed)
		goto out_free;
	o = json_object();
	if (!o)
		goto out_free;
	json_object_set_new(o, "isolated", json_pack("[bb]", iso_a, iso_b));
	if (iso_a && iso_b && ma != mb)
		json_object_set_new(o, "mode", json_pack("[ss]", ma == MSEG_MODE_AUDIT ? "audit" : "enforce",
							 mb == MSEG_MODE_AUDIT ? "audit" : "enforce"));
	json_object_set_new(o, "added", added);
	json_object_set_new(o, "removed", removed);
	json_object_set_new(o, "added_total", json_integer((json_int_t)n_added));
	json_object_set_new(o, "removed_total", json_integer((json_int_t)n_removed));
	added = removed = NULL;
out_free:
	json_decref(added);
	json_decref(removed);
	free(va);
	free(vb);
	return o;
}

json_t *api_json_plan_diff(const struct mseg_plan *before, const struct mseg_plan *after,
			   size_t max_list)
{
	json_t *arr = json_array();
	size_t i = 0, k = 0;
	size_t na = before ? before->n_eps : 0, nb = after ? after->n_eps : 0;

	if (!arr)
		return NULL;
	while (i < na || k < nb) {
		const struct mseg_ep_plan *a = NULL, *b = NULL;
		int c = i == na ? 1 : k == nb ? -1 : strcmp(before->eps[i].ep->id, after->eps[k].ep->id);
		json_t *o = NULL;

		if (c <= 0)
			a = &before->eps[i++];
		if (c >= 0)
			b = &after->eps[k++];
		for (int d = 0; d < MSEG_DIR_COUNT; d++) {
			json_t *dd = dir_diff(a ? &a->dir[d] : NULL, b ? &b->dir[d] : NULL, max_list);

			if (!dd)
				continue;
			if (!o) {
				o = json_object();
				json_object_set_new(o, "endpoint", json_string((a ? a : b)->ep->id));
				if (!a)
					json_object_set_new(o, "new_endpoint", json_true());
				if (!b)
					json_object_set_new(o, "removed_endpoint", json_true());
			}
			json_object_set_new(o, dir_name(d), dd);
		}
		if (o)
			json_array_append_new(arr, o);
	}
	return arr;
}

/* ---- check ---- */

static json_t *side_json(const struct check_side *s)
{
	json_t *o = json_object();

	json_object_set_new(o, "endpoint", json_string(s->ep->id));
	json_object_set_new(o, "isolated", json_boolean(s->isolated));
	json_object_set_new(o, "allowed", json_boolean(s->allowed));
	if (s->isolated)
		json_object_set_new(o, "mode", json_string(s->mode == MSEG_MODE_AUDIT ? "audit" : "enforce"));
	if (s->isolated && s->allowed && s->policy) {
		char name[600];

		snprintf(name, sizeof(name), "%s/%s", s->policy->ns, s->policy->name);
		json_object_set_new(o, "policy", json_string(name));
		json_object_set_new(o, "rule", json_integer(s->rule));
	}
	if (s->isolated && !s->allowed) {
		json_t *iso = json_array();
		char name[600];

		for (size_t i = 0; i < s->n_isolating && i < CHECK_MAX_ISOLATING; i++) {
			snprintf(name, sizeof(name), "%s/%s", s->isolating[i]->ns, s->isolating[i]->name);
			json_array_append_new(iso, json_string(name));
		}
		json_object_set_new(o, "isolated_by", iso);
		if (s->default_deny)
			json_object_set_new(o, "default_deny", json_true());
	}
	return o;
}

static void side_reason(const struct check_side *s, const char *dir, char *buf, size_t size)
{
	size_t n = 0;

	if (s->allowed && s->isolated && s->policy)
		snprintf(buf, size, "%s of '%s' allowed by policy %s/%s rule %u", dir, s->ep->id,
			 s->policy->ns, s->policy->name, s->rule);
	else if (s->allowed)
		snprintf(buf, size, "%s of '%s' is not isolated", dir, s->ep->id);
	else if (s->default_deny)
		snprintf(buf, size, "no rule allows it; %s of '%s' is isolated by --default-deny", dir,
			 s->ep->id);
	else {
		n = (size_t)snprintf(buf, size, "no rule allows it; %s of '%s' is isolated by", dir,
				     s->ep->id);
		for (size_t i = 0; i < s->n_isolating && i < CHECK_MAX_ISOLATING && n < size; i++)
			n += (size_t)snprintf(buf + n, size - n, "%s policy %s/%s", i ? "," : "",
					      s->isolating[i]->ns, s->isolating[i]->name);
	}
}

json_t *api_json_check(const struct check_result *res, const struct check_query *q)
{
	json_t *o = json_object(), *reasons = json_array();
	char a[INET6_ADDRSTRLEN], pb[8], buf[1024];

	if (!o || !reasons) {
		json_decref(o);
		json_decref(reasons);
		return NULL;
	}
	json_object_set_new(o, "from", json_string(q->from));
	json_object_set_new(o, "to", json_string(q->to));
	json_object_set_new(o, "proto", json_string(q->proto ? proto_name(q->proto, pb, sizeof(pb)) : "any"));
	if (proto_has_ports(q->proto))
		json_object_set_new(o, "port", json_integer(q->port));
	json_object_set_new(o, "src", json_string(addr_format(&res->src, a, sizeof(a))));
	json_object_set_new(o, "dst", json_string(addr_format(&res->dst, a, sizeof(a))));
	json_object_set_new(o, "allowed", json_boolean(res->verdict != CHECK_DENIED));
	json_object_set_new(o, "verdict", json_string(check_verdict_name(res->verdict)));
	if (res->egress.ep) {
		json_object_set_new(o, "egress", side_json(&res->egress));
		side_reason(&res->egress, "egress", buf, sizeof(buf));
		json_array_append_new(reasons, json_string(buf));
	}
	if (res->ingress.ep) {
		json_object_set_new(o, "ingress", side_json(&res->ingress));
		side_reason(&res->ingress, "ingress", buf, sizeof(buf));
		json_array_append_new(reasons, json_string(buf));
	}
	if (!res->egress.ep && !res->ingress.ep)
		json_array_append_new(reasons, json_string("neither side is a managed endpoint"));
	json_object_set_new(o, "reasons", reasons);
	return o;
}
