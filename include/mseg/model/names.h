/* The naming rules, one copy for the parsers and the REST API: which
 * strings are valid policy names and namespaces, endpoint ids and names,
 * label keys and values. Each *_HINT says the rule in words, for errors. */
#ifndef MSEG_NAMES_H
#define MSEG_NAMES_H

#include <stdbool.h>

/* Policy names and namespaces, endpoint namespaces: an RFC 1123 DNS label,
 * [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters. */
bool name_is_dns_label(const char *s);
#define NAME_DNS_LABEL_HINT \
	"lowercase letters, digits and '-', beginning and ending with a letter or digit, " \
	"at most 63 characters"

/* Endpoint ids (a container id, a pod uid, ...): [A-Za-z0-9][A-Za-z0-9_.-]*,
 * at most NAME_ENDPOINT_ID_MAX characters. */
#define NAME_ENDPOINT_ID_MAX 128
/* A DNS subdomain (RFC 1123): at most 253 characters of dot-separated DNS
 * labels (Kubernetes object names such as a NetworkPolicy's). */
bool name_is_dns_subdomain(const char *s);
#define NAME_DNS_SUBDOMAIN_HINT \
	"lowercase letters, digits, '-' and '.', beginning and ending with a letter or " \
	"digit, at most 253 characters"

/* A named port (Kubernetes IANA_SVC_NAME): at most 15 of [a-z0-9-], a
 * letter somewhere, no '-' at either end and no "--". */
#define NAME_PORT_NAME_MAX 15
bool name_is_port_name(const char *s);

bool name_is_endpoint_id(const char *s);
#define NAME_ENDPOINT_ID_HINT \
	"letters, digits, '_', '.' and '-', beginning with a letter or digit, at most 128 characters"

/* Endpoint names: as ids, at most NAME_ENDPOINT_NAME_MAX characters. */
#define NAME_ENDPOINT_NAME_MAX 253
bool name_is_endpoint_name(const char *s);
#define NAME_ENDPOINT_NAME_HINT \
	"letters, digits, '_', '.' and '-', beginning with a letter or digit, at most 253 characters"

/* Kubernetes label syntax: a key is [prefix/]name, prefix a DNS subdomain
 * (<= 253), name <= 63 of [A-Za-z0-9-_.] beginning and ending alphanumeric;
 * a value is empty or like a name. */
bool name_is_label_key(const char *s);
bool name_is_label_value(const char *s);
#define NAME_LABEL_KEY_HINT \
	"[prefix/]name: name at most 63 characters of letters, digits, '-', '_' and '.', " \
	"beginning and ending with a letter or digit"
#define NAME_LABEL_VALUE_HINT \
	"at most 63 characters of letters, digits, '-', '_' and '.', " \
	"beginning and ending with a letter or digit"

#endif
