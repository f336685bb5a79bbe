/* The REST API without HTTP and without the kernel, for fuzzing and tests
 * (include/mseg/api/api_fuzz.h): a server built by hand around an in-memory
 * desired state, and requests handed straight to api_route(). */
#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "mseg/util/clock.h"
#include "mseg/api/api_fuzz.h"
#include "mseg/daemon/daemon.h"
#include "mseg/daemon/desired.h"
#include "mseg/kernel/nft.h"
#include "mseg/kernel/reconcile.h"
#include "mseg/model/inventory.h"
#include "mseg/model/policy.h"
#include "mseg/packet/flow.h"
#include "mseg/packet/pkt.h"
#include "api/api_json.h"
#include "api/api_priv.h"

#define FUZZ_MAX_VALUES 32

/* What the policy dir and the inventory file hold: the API may not
 * change these (409), and shadows API objects of the same name. */
static const char file_policy[] =
	"apiVersion: mseg.io/v1\n"
	"kind: AllowList\n"
	"metadata: {name: web, namespace: shop}\n"
	"spec:\n"
	"  isolation: ingress\n"
	"  groups:\n"
	"    web: {selector: {app: web}}\n"
	"  allow:\n"
	"    - {from: world, to: web, ports: [tcp/443]}\n";
static const char file_inventory[] =
	"endpoints:\n"
	"  - id: file-web\n"
	"    name: web\n"
	"    namespace: shop\n"
	"    labels: {app: web}\n"
	"    netns: /run/netns/mseg-fuzz-web\n"
	"    ips: [10.99.0.2, \"fd99::2\"]\n";

struct api_fuzz {
	char *dir;                      /* the state dir, removed at the end */
	struct daemon_config cfg;
	struct desired ds;
	struct reconciler *rec;
	struct nft_features features;
	struct flow_ring *ring;
	struct flow_ep *ep;
	struct api_server *a;
};

/* One request's query arguments and headers, decoded. */
struct fuzz_values {
	char *buf;
	const char *key[FUZZ_MAX_VALUES], *val[FUZZ_MAX_VALUES];
	enum api_value_kind kind[FUZZ_MAX_VALUES];
	size_t n;
};

/* The daemon programs the kernel here; there is none. */
static int fuzz_reconcile(void *ctx)
{
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path) < 0 ? -errno : 0;
}

/* The sources "from the files", and one flow record. */
static int fuzz_state_fill(struct api_fuzz *f, struct mseg_err *err)
{
	static const uint8_t syn[] = {
		0x45, 0x00, 0x00, 0x28, 0x00, 0x01, 0x00, 0x00, 0x40, 0x06, 0x00, 0x00,
		10, 99, 0, 7, 10, 99, 0, 2,
		0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x20, 0x00,
		0, 0, 0, 0,
	};
	struct mseg_policy_set pols;
	struct mseg_inventory inv;
	struct pkt_info p;
	struct flow_event ev = { 0 };
	const struct flow_record *rec;
	int r;

	policy_set_init(&pols);
	inventory_init(&inv);
	r = policy_parse_buffer(&pols, "fuzz-policies/web.yaml", file_policy,
				sizeof(file_policy) - 1, err);
	if (r == 0)
		r = inventory_parse_buffer(&inv, "fuzz-inventory.yaml", file_inventory,
					   sizeof(file_inventory) - 1, err);
	if (r < 0) {
		policy_set_release(&pols);
		inventory_release(&inv);
		return r;
	}
	desired_files_replace(&f->ds, &pols, &inv);
	policy_set_release(&pols);
	inventory_release(&inv);

	(void)pkt_parse(syn, sizeof(syn), sizeof(syn), &p);
	ev.ep = f->ep;
	ev.dir = MSEG_DIR_INGRESS;
	ev.verdict = FLOW_DROPPED;
	ev.pkt = &p;
	ev.time_ns = 1796515200ull * 1000000000ull;
	if (flow_ring_add(f->ring, &ev, &rec) < 0)
		return err_setf(err, ENOMEM, "out of memory");
	return 0;
}

int api_fuzz_new(const char *tmpdir, struct api_fuzz **ret, struct mseg_err *err)
{
	struct table_opts topts = { .queue = QUEUE_XT, .rate = TABLE_DEFAULT_RATE,
				    .burst = TABLE_DEFAULT_BURST };
	struct compile_opts copts = { .default_mode = MSEG_MODE_ENFORCE };
	struct api_fuzz *f;
	const char *base = tmpdir ? tmpdir : getenv("TMPDIR");
	int r;

	f = calloc(1, sizeof(*f));
	if (!f)
		return err_setf(err, ENOMEM, "out of memory");
	daemon_config_init(&f->cfg);
	desired_init(&f->ds);
	if (asprintf(&f->dir, "%s/mseg-api-fuzz.XXXXXX", base && *base ? base : "/tmp") < 0) {
		f->dir = NULL;
		r = err_setf(err, ENOMEM, "out of memory");
		goto out_free;
	}
	if (!mkdtemp(f->dir)) {
		r = err_set(err, f->dir, 0, 0, errno, "cannot create: %s", strerror(errno));
		free(f->dir);
		f->dir = NULL;
		goto out_free;
	}
	f->cfg.state_dir = strdup(f->dir);
	f->cfg.endpoints_file = strdup("fuzz-inventory.yaml");
	f->rec = reconciler_new(&topts, &copts);
	f->ring = flow_ring_new(64, 60000);
	f->ep = flow_ep_new("file-web", "web", "shop");
	f->a = calloc(1, sizeof(*f->a));
	if (!f->cfg.state_dir || !f->cfg.endpoints_file || !f->rec || !f->ring || !f->ep || !f->a) {
		r = err_setf(err, ENOMEM, "out of memory");
		goto out_free;
	}
	r = desired_store_open(&f->ds, f->dir, err);
	if (r == 0)
		r = fuzz_state_fill(f, err);
	if (r < 0)
		goto out_free;
	f->features.queue = QUEUE_XT;
	f->features.queue_xt = true;
	f->features.concat_interval = true;
	f->a->be = (struct api_backend){
		.cfg = &f->cfg,
		.desired = &f->ds,
		.rec = f->rec,
		.features = &f->features,
		.reconcile = fuzz_reconcile,
		.ctx = f,
	};
	f->a->start_ns = clock_mono_ns();
	f->a->start_real_s = 1796515200;
	api_server_set_flows(f->a, f->ring);
	*ret = f;
	return 0;

out_free:
	api_fuzz_free(f);
	return r;
}

struct api_fuzz *api_fuzz_free(struct api_fuzz *f)
{
	if (!f)
		return NULL;
	if (f->a) {
		f->a->flows = NULL;
		api_server_free(f->a);
	}
	desired_release(&f->ds);   /* unlocks the state dir */
	if (f->dir)
		(void)nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f->dir);
	reconciler_free(f->rec);
	flow_ring_free(f->ring);
	flow_ep_unref(f->ep);
	daemon_config_release(&f->cfg);
	free(f);
	return NULL;
}

int api_fuzz_reset(struct api_fuzz *f)
{
	struct mseg_err err;
	int r;

	while (f->ds.pols[DESIRED_API].n) {
		const struct mseg_policy *p = f->ds.pols[DESIRED_API].items[0];
		char ns[128], name[128];

		snprintf(ns, sizeof(ns), "%s", p->ns);
		snprintf(name, sizeof(name), "%s", p->name);
		r = desired_api_policy_delete(&f->ds, ns, name, &err);
		if (r < 0)
			return r;
	}
	while (f->ds.inv[DESIRED_API].n) {
		char id[256];

		snprintf(id, sizeof(id), "%s", f->ds.inv[DESIRED_API].eps[0]->id);
		r = desired_api_endpoint_delete(&f->ds, id, &err);
		if (r < 0)
			return r;
	}
	return 0;
}

static const char *fuzz_value(const struct api_ctx *x, enum api_value_kind kind, const char *key)
{
	const struct fuzz_values *v = x->value_data;

	for (size_t i = 0; i < v->n; i++)
		if (v->kind[i] == kind && (kind == API_VALUE_QUERY ? strcmp(v->key[i], key) == 0 :
					   strcasecmp(v->key[i], key) == 0))
			return v->val[i];
	return NULL;
}

/* %XX and '+' as MHD decodes query arguments (in place). */
static void query_unescape(char *s)
{
	char *w = s;

	for (const char *r = s; *r;) {
		if (r[0] == '%' && isxdigit((unsigned char)r[1]) && isxdigit((unsigned char)r[2])) {
			char hex[3] = { r[1], r[2], 0 };

			*w++ = (char)strtoul(hex, NULL, 16);
			r += 3;
		} else if (*r == '+') {
			*w++ = ' ';
			r++;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

static void values_add(struct fuzz_values *v, enum api_value_kind kind, const char *key,
		       const char *val)
{
	if (v->n == FUZZ_MAX_VALUES)
		return;
	v->kind[v->n] = kind;
	v->key[v->n] = key;
	v->val[v->n] = val;
	v->n++;
}

/* Split "a=1&b" and "Name: value" lines into @v (which owns a copy). */
static int values_parse(struct fuzz_values *v, const char *query, const char *headers)
{
	size_t ql = query ? strlen(query) : 0, hl = headers ? strlen(headers) : 0;
	char *q, *h, *save = NULL;

	memset(v, 0, sizeof(*v));
	v->buf = malloc(ql + hl + 2);
	if (!v->buf)
		return -ENOMEM;
	q = v->buf;
	h = v->buf + ql + 1;
	memcpy(q, query ? query : "", ql + 1);
	memcpy(h, headers ? headers : "", hl + 1);
	for (char *t = strtok_r(q, "&", &save); t; t = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(t, '=');

		if (eq)
			*eq++ = '\0';
		query_unescape(t);
		if (eq)
			query_unescape(eq);
		values_add(v, API_VALUE_QUERY, t, eq ? eq : "");
	}
	save = NULL;
	for (char *t = strtok_r(h, "\r\n", &save); t; t = strtok_r(NULL, "\r\n", &save)) {
		char *colon = strchr(t, ':');

		if (!colon)
			continue;
		*colon++ = '\0';
		while (*colon == ' ' || *colon == '\t')
			colon++;
		values_add(v, API_VALUE_HEADER, t, colon);
	}
	return 0;
}

/* The answer's text, as send_resp() in api.c makes it. */
static char *answer_text(struct api_resp *r)
{
	char *s;

	if (r->text) {
		s = r->text;
		r->text = NULL;
		return s;
	}
	if (r->raw)
		return strdup("");   /* a stream (follow): its first bytes come later */
	return r->json ? json_dumps(r->json, JSON_COMPACT) : NULL;
}

int api_fuzz_request(struct api_fuzz *f, const char *method, const char *path, const char *query,
		     const char *headers, const char *body, size_t len, unsigned *ret_code,
		     char **ret_answer)
{
	struct api_req rq = { 0 };
	struct fuzz_values v;
	struct api_ctx x;
	int r = 0;

	if (ret_answer)
		*ret_answer = NULL;
	if (values_parse(&v, query, headers) < 0)
		return -ENOMEM;
	/* the transport's copy of the body is NUL-terminated */
	rq.body = malloc(len + 1);
	if (!rq.body) {
		free(v.buf);
		return -ENOMEM;
	}
	if (len)
		memcpy(rq.body, body, len);
	rq.body[len] = '\0';
	rq.len = len;
	rq.cap = len + 1;
	memset(&x, 0, sizeof(x));
	x.a = f->a;
	x.be = &f->a->be;
	x.rq = &rq;
	x.method = method;
	x.value = fuzz_value;
	x.value_data = &v;
	api_route(&x, path);
	if (!x.resp.json && !x.resp.text && !x.resp.raw) {
		x.resp.code = 500;   /* send_resp() does the same */
		x.resp.json = api_json_error("out of memory", 0, 0);
	}
	*ret_code = x.resp.code;
	if (ret_answer) {
		*ret_answer = answer_text(&x.resp);
		if (!*ret_answer)
			r = -ENOMEM;
	}
	if (x.resp.code < API_MAX_CODE)
		f->a->requests[x.resp.code]++;
	json_decref(x.resp.json);
	free(x.resp.text);
	if (x.resp.raw)
		MHD_destroy_response(x.resp.raw);
	free(rq.body);
	free(v.buf);
	return r;
}
