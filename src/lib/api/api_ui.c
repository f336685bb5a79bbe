/* The flow map's page (docs/ui.md): /ui/ serves the HTML, CSS and JS built
 * into the binary (api/api_ui.h) under a strict Content-Security-Policy.
 * The files carry no data; what the page shows comes from the API, under
 * the API's authentication. */
#include <string.h>

#include <microhttpd.h>

#include "api/api_priv.h"
#include "api/api_ui.h"

/* no inline script or style, nothing from elsewhere, never framed */
#define UI_CSP "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
	       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

const struct api_ui_file *api_ui_file_find(const char *name)
{
	if (name[0] == '\0')
		name = "index.html";
	for (unsigned i = 0; i < api_ui_n_files; i++)
		if (strcmp(api_ui_files[i].name, name) == 0)
			return &api_ui_files[i];
	return NULL;
}

bool api_ui_path(const char *url)
{
	return strcmp(url, "/ui") == 0 || strncmp(url, "/ui/", 4) == 0;
}

static void ui_headers(struct MHD_Response *m)
{
	MHD_add_response_header(m, "Content-Security-Policy", UI_CSP);
	MHD_add_response_header(m, "X-Frame-Options", "DENY");
	MHD_add_response_header(m, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(m, "Cache-Control", "no-store");
}

void api_handle_ui(struct api_ctx *x, const char *url)
{
	const struct api_ui_file *f;
	struct MHD_Response *m;

	if (strcmp(x->method, "GET") != 0 && strcmp(x->method, "HEAD") != 0) {
		api_resp_error(x, 405, "method %.16s not allowed on %.200s", x->method, url);
		x->resp.allow = "GET, HEAD";
		return;
	}
	if (strcmp(url, "/ui") == 0) {
		m = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		if (!m) {
			api_resp_error(x, 503, "out of memory");
			return;
		}
		MHD_add_response_header(m, MHD_HTTP_HEADER_LOCATION, "/ui/");
		ui_headers(m);
		x->resp.code = 308;
		x->resp.ctype = "text/plain; charset=utf-8";
		x->resp.raw = m;
		return;
	}
	f = strchr(url + 4, '/') ? NULL : api_ui_file_find(url + 4);
	if (!f) {
		api_resp_error(x, 404, "no such file: %.200s", url);
		return;
	}
	m = MHD_create_response_from_buffer(f->len, (void *)f->data, MHD_RESPMEM_PERSISTENT);
	if (!m) {
		api_resp_error(x, 503, "out of memory");
		return;
	}
	ui_headers(m);
	x->resp.code = 200;
	x->resp.ctype = f->ctype;
	x->resp.raw = m;
}
