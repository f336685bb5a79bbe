/* The REST API's JSON documents (jansson), pure functions shared by the
 * handlers and the unit tests. Field names are stable. */
#ifndef MSEG_API_JSON_H
#define MSEG_API_JSON_H

#include <jansson.h>

#include "mseg/compile/check.h"
#include "mseg/util/err.h"
#include "mseg/model/model.h"
#include "mseg/model/plan.h"

/* {"error": "...", "line": L, "column": C}; line/column only when known. */
json_t *api_json_error(const char *msg, unsigned line, unsigned col);
json_t *api_json_error_from(const struct mseg_err *err);

/* A policy as stored: {"namespace","name","kind","mode","isolation":[...],
 * "subjects":[peer...],"rules":[{"index","direction","local","peers",
 * "ports"}], "source": @source}. */
json_t *api_json_policy(const struct mseg_policy *p, const char *source);
/* {"id","name","namespace","labels":{},"netns","ips":[],"ports":[], "source"} */
json_t *api_json_endpoint(const struct mseg_endpoint *ep, const char *source);
/* "tcp/80", "udp/1000-2000", "icmp", "any" */
const char *api_json_port(const struct mseg_port *p, char *buf, size_t size);

/* The per-endpoint difference between two plans (dry run):
 * [{"endpoint": ID, "ingress": {"isolated": [before, after], "mode": [...],
 *   "added": [...], "removed": [...]}, ...}], only endpoints that change.
 * @max_list bounds each added/removed list ("added_total" gives the count). */
json_t *api_json_plan_diff(const struct mseg_plan *before, const struct mseg_plan *after,
			   size_t max_list);

/* The answer of POST /v1/check. */
json_t *api_json_check(const struct check_result *res, const struct check_query *q);

#endif
