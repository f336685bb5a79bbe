/* The REST API's answers: the transport and the route handlers both set
 * them through these helpers. */
#include <stdarg.h>
#include <stdio.h>

#include <jansson.h>
#include <microhttpd.h>

#include "api/api_json.h"
#include "api/api_priv.h"

void api_resp_json(struct api_ctx *x, unsigned code, json_t *j)
{
	json_decref(x->resp.json);
	x->resp.code = code;
	x->resp.json = j;
}

__attribute__((format(printf, 3, 4))) void api_resp_error(struct api_ctx *x, unsigned code,
							  const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	api_resp_json(x, code, api_json_error(msg, 0, 0));
}

void api_resp_err(struct api_ctx *x, unsigned code, const struct mseg_err *err)
{
	api_resp_json(x, code, api_json_error_from(err));
}


static const char *api_value(const struct api_ctx *x, enum api_value_kind kind, const char *key)
{
	if (x->c)
		return MHD_lookup_connection_value(x->c, kind == API_VALUE_QUERY ?
						   MHD_GET_ARGUMENT_KIND : MHD_HEADER_KIND, key);
	return x->value ? x->value(x, kind, key) : NULL;
}

const char *api_query(const struct api_ctx *x, const char *key)
{
	return api_value(x, API_VALUE_QUERY, key);
}

const char *api_header(const struct api_ctx *x, const char *key)
{
	return api_value(x, API_VALUE_HEADER, key);
}
