/* What a dry run of `mseg endpoint add|label` would change in the endpoint
 * itself, field by field, from the endpoint as GET /v1/endpoints/{id}
 * shows it and the endpoint the command would send. */
#ifndef MSEG_CLIENT_CHANGES_H
#define MSEG_CLIENT_CHANGES_H

#include <jansson.h>

/* One string per changed field of name, namespace, netns, ips and labels,
 * in that order: "labels: app=web -> app=api", "ips: - -> 10.0.0.1" ("-"
 * for nothing; @before NULL for a new endpoint). A field @after does not
 * have stays as it is and is not listed. NULL: out of memory. */
json_t *client_endpoint_changes(const json_t *before, const json_t *after);

#endif
