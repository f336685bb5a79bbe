/* kubeconfig files and the in-cluster config (include/mseg/kube/kubeconfig.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mseg/kube/kubeconfig.h"
#include "model/ytree.h"

void kube_config_init(struct kube_config *c)
{
	memset(c, 0, sizeof(*c));
}

void kube_config_release(struct kube_config *c)
{
	free(c->server);
	free(c->ca_file);
	free(c->ca_pem);
	free(c->token);
	free(c->token_file);
	free(c->cert_file);
	free(c->key_file);
	free(c->cert_pem);
	free(c->key_pem);
	free(c->source);
	free(c->file_token);
	memset(c, 0, sizeof(*c));
}

static int b64_value(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

int kube_base64_decode(const char *in, size_t len, char **ret, size_t *ret_len)
{
	char *out = malloc(len / 4 * 3 + 4);
	unsigned acc = 0, bits = 0;
	size_t n = 0;
	bool pad = false;

	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)in[i];
		int v;

		if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')
			continue;
		if (ch == '=') {
			pad = true;
			continue;
		}
		v = b64_value(ch);
		if (v < 0 || pad) {
			free(out);
			return -EINVAL;
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[n] = '\0';
	*ret = out;
	*ret_len = n;
	return 0;
}

/* The kubeconfig being read. */
struct kctx {
	struct ycheck ck;
	const char *dir;     /* of the file, for relative paths */
};

/* An optional string field of @map into *@ret (malloc'd). */
static int opt_string(struct kctx *k, const struct ynode *map, const char *key,
		      const char *what, char **ret)
{
	const struct ynode *v = ynode_map_get(map, key);
	char w[256];
	const char *s;
	int r;

	if (!v || ynode_is_null(v))
		return 0;
	ycheck_whatf(w, sizeof(w), "%s.%s", what, key);
	r = ycheck_string(&k->ck, v, w, true, &s);
	if (r < 0)
		return r;
	*ret = strdup(s);
	return *ret ? 0 : ycheck_oom(&k->ck);
}

/* A path field: relative to the kubeconfig's directory. */
static int opt_path(struct kctx *k, const struct ynode *map, const char *key,
		    const char *what, char **ret)
{
	char *s = NULL, *abs;
	int r = opt_string(k, map, key, what, &s);

	if (r < 0 || !s || s[0] == '/') {
		*ret = s;
		return r;
	}
	if (asprintf(&abs, "%s/%s", k->dir, s) < 0) {
		free(s);
		return ycheck_oom(&k->ck);
	}
	free(s);
	*ret = abs;
	return 0;
}

/* A *-data field: base64 of a PEM. */
static int opt_data(struct kctx *k, const struct ynode *map, const char *key,
		    const char *what, char **ret, size_t *ret_len)
{
	const struct ynode *v = ynode_map_get(map, key);
	char *s = NULL;
	int r = opt_string(k, map, key, what, &s);

	if (r < 0 || !s)
		return r;
	r = kube_base64_decode(s, strlen(s), ret, ret_len);
	free(s);
	if (r == -EINVAL)
		return ycheck_fail(&k->ck, v, "%s.%s: not valid base64", what, key);
	if (r < 0)
		return ycheck_oom(&k->ck);
	return 0;
}

/* The entry named @name of the list @key ("clusters", "users", "contexts"):
 * its inner mapping (@inner: "cluster", "user", "context") and its path. */
static int named_entry(struct kctx *k, const struct ynode *root, const char *key,
		       const char *inner, const char *name, const struct ynode *ref,
		       const struct ynode **ret, char *what, size_t what_size)
{
	const struct ynode *list = ynode_map_get(root, key);
	char q[YQ_SIZE];
	int r;

	if (!list || ynode_is_null(list))
		return ycheck_fail(&k->ck, ref, "no %s '%s' (the file has no '%s')", inner,
				   ytree_quote(name, q, sizeof(q)), key);
	r = ycheck_seq(&k->ck, list, key, false);
	if (r < 0)
		return r;
	for (size_t i = 0; i < list->n; i++) {
		const struct ynode *e = list->vals[i], *n, *v;
		char w[64];
		const char *s;

		snprintf(w, sizeof(w), "%s[%zu]", key, i);
		r = ycheck_kind(&k->ck, e, YNODE_MAP, w);
		if (r < 0)
			return r;
		n = ynode_map_get(e, "name");
		if (!n || n->kind != YNODE_SCALAR || strcmp(n->str, name) != 0)
			continue;
		r = ycheck_string(&k->ck, n, w, true, &s);
		if (r < 0)
			return r;
		snprintf(what, what_size, "%s[%zu].%s", key, i, inner);
		r = ycheck_require(&k->ck, e, inner, w, &v);
		if (r < 0)
			return r;
		r = ycheck_kind(&k->ck, v, YNODE_MAP, what);
		if (r < 0)
			return r;
		*ret = v;
		return 0;
	}
	return ycheck_fail(&k->ck, ref, "no %s named '%s' in '%s'", inner,
			   ytree_quote(name, q, sizeof(q)), key);
}

static int config_from_doc(struct kube_config *c, struct kctx *k, const struct ynode *root)
{
	const struct ynode *cur, *ctx, *cl, *us, *v;
	const char *ctx_name, *cl_name, *us_name;
	char w_ctx[64], w_cl[64], w_us[64];
	int r;

	r = ycheck_kind(&k->ck, root, YNODE_MAP, "");
	if (r < 0)
		return r;
	r = ycheck_require(&k->ck, root, "current-context", "", &cur);
	if (r < 0)
		return r;
	r = ycheck_string(&k->ck, cur, "current-context", true, &ctx_name);
	if (r < 0)
		return r;
	r = named_entry(k, root, "contexts", "context", ctx_name, cur, &ctx, w_ctx, sizeof(w_ctx));
	if (r < 0)
		return r;
	r = ycheck_require(&k->ck, ctx, "cluster", w_ctx, &v);
	if (r < 0)
		return r;
	r = ycheck_string(&k->ck, v, "context.cluster", true, &cl_name);
	if (r < 0)
		return r;
	r = named_entry(k, root, "clusters", "cluster", cl_name, v, &cl, w_cl, sizeof(w_cl));
	if (r < 0)
		return r;

	/* the cluster */
	r = ycheck_require(&k->ck, cl, "server", w_cl, &v);
	if (r < 0)
		return r;
	r = opt_string(k, cl, "server", w_cl, &c->server);
	if (r < 0)
		return r;
	if (strncmp(c->server, "https://", 8) != 0 && strncmp(c->server, "http://", 7) != 0)
		return ycheck_fail(&k->ck, v, "%s.server: '%s' is not an http(s):// URL", w_cl,
				   c->server);
	while (strlen(c->server) > 8 && c->server[strlen(c->server) - 1] == '/')
		c->server[strlen(c->server) - 1] = '\0';
	r = opt_path(k, cl, "certificate-authority", w_cl, &c->ca_file);
	if (r < 0)
		return r;
	r = opt_data(k, cl, "certificate-authority-data", w_cl, &c->ca_pem, &c->ca_pem_len);
	if (r < 0)
		return r;
	v = ynode_map_get(cl, "insecure-skip-tls-verify");
	if (v) {
		if (v->kind != YNODE_SCALAR || !v->plain ||
		    (strcmp(v->str, "true") != 0 && strcmp(v->str, "false") != 0))
			return ycheck_fail(&k->ck, v, "%s.insecure-skip-tls-verify: expected true or "
					   "false", w_cl);
		c->insecure = strcmp(v->str, "true") == 0;
	}

	/* the user: optional (a cluster may take anonymous requests) */
	v = ynode_map_get(ctx, "user");
	if (v && !ynode_is_null(v)) {
		r = ycheck_string(&k->ck, v, "context.user", true, &us_name);
		if (r < 0)
			return r;
		r = named_entry(k, root, "users", "user", us_name, v, &us, w_us, sizeof(w_us));
		if (r < 0)
			return r;
		v = ynode_map_get(us, "exec");
		if (!v)
			v = ynode_map_get(us, "auth-provider");
		if (v)
			return ycheck_fail(&k->ck, v, "%s: credential plugins (exec, auth-provider) "
					   "are not supported; use token, tokenFile or a client "
					   "certificate", w_us);
		if ((r = opt_string(k, us, "token", w_us, &c->token)) < 0 ||
		    (r = opt_path(k, us, "tokenFile", w_us, &c->token_file)) < 0 ||
		    (r = opt_path(k, us, "client-certificate", w_us, &c->cert_file)) < 0 ||
		    (r = opt_path(k, us, "client-key", w_us, &c->key_file)) < 0 ||
		    (r = opt_data(k, us, "client-certificate-data", w_us, &c->cert_pem,
				  &c->cert_pem_len)) < 0 ||
		    (r = opt_data(k, us, "client-key-data", w_us, &c->key_pem, &c->key_pem_len)) < 0)
			return r;
		if ((c->cert_file || c->cert_pem) != (c->key_file || c->key_pem))
			return ycheck_fail(&k->ck, us, "%s: a client certificate needs its key "
					   "(client-certificate and client-key go together)", w_us);
	}
	if (asprintf(&c->source, "%s (context '%s')", k->ck.file, ctx_name) < 0)
		return ycheck_oom(&k->ck);
	return 0;
}

int kube_config_load_file(struct kube_config *c, const char *path, struct mseg_err *err)
{
	static const struct ytree_limits lim = {
		.max_size = KUBE_CONFIG_MAX_SIZE, .max_depth = 16, .max_nodes = 100000,
	};
	struct kctx k = { .ck = { .file = path, .err = err } };
	struct ytree t;
	char *buf = NULL, *dir;
	const char *slash = strrchr(path, '/');
	size_t len;
	int r;

	kube_config_init(c);
	dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	if (!dir)
		return err_setf(err, ENOMEM, "out of memory");
	k.dir = dir;
	r = ytree_file_read(path, KUBE_CONFIG_MAX_SIZE, &buf, &len, err);
	if (r < 0)
		goto out_free_dir;
	r = ytree_load(&t, path, buf, len, &lim, err);
	if (r < 0)
		goto out_release;
	if (t.n_docs != 1) {
		r = err_set(err, path, 0, 0, EINVAL, "expected one YAML document, got %zu",
			    t.n_docs);
		goto out_release;
	}
	r = config_from_doc(c, &k, t.docs[0].root);
out_release:
	ytree_release(&t);
	free(buf);
out_free_dir:
	free(dir);
	if (r < 0)
		kube_config_release(c);
	return r;
}

static int read_small_file(const char *path, char **ret, size_t *ret_len, struct mseg_err *err)
{
	return ytree_file_read(path, KUBE_CONFIG_MAX_SIZE, ret, ret_len, err);
}

int kube_config_in_cluster(struct kube_config *c, const char *host, const char *port,
			   const char *sa_dir, struct mseg_err *err)
{
	char *ca = NULL;
	size_t len;
	int r;

	kube_config_init(c);
	if (!host)
		host = getenv("KUBERNETES_SERVICE_HOST");
	if (!port)
		port = getenv("KUBERNETES_SERVICE_PORT");
	if (!sa_dir)
		sa_dir = KUBE_SA_DIR;
	if (!host || !*host || !port || !*port)
		return err_setf(err, EINVAL, "--kubernetes in-cluster: KUBERNETES_SERVICE_HOST and "
				"KUBERNETES_SERVICE_PORT are not set (not running in a pod?)");
	if (strspn(port, "0123456789") != strlen(port) || strlen(port) > 5)
		return err_setf(err, EINVAL, "KUBERNETES_SERVICE_PORT: '%.20s' is not a port", port);
	if (asprintf(&c->server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
		     port) < 0 ||
	    asprintf(&c->token_file, "%s/token", sa_dir) < 0 ||
	    asprintf(&ca, "%s/ca.crt", sa_dir) < 0 || !(c->source = strdup("in-cluster"))) {
		free(ca);
		kube_config_release(c);
		return err_setf(err, ENOMEM, "out of memory");
	}
	c->ca_file = ca;
	/* both must be readable now; the token is read again when it changes */
	r = read_small_file(c->ca_file, &ca, &len, err);
	if (r < 0)
		goto out_fail;
	free(ca);
	r = kube_config_token(c, &host, err);
	if (r < 0)
		goto out_fail;
	return 0;
out_fail:
	kube_config_release(c);
	return r;
}

int kube_config_token(struct kube_config *c, const char **ret_token, struct mseg_err *err)
{
	struct stat st;
	char *buf;
	size_t len;
	int r;

	*ret_token = c->token;
	if (!c->token_file)
		return 0;
	*ret_token = c->file_token;
	if (stat(c->token_file, &st) < 0)
		return err_setf(err, errno, "token file '%s': %s", c->token_file, strerror(errno));
	if (c->file_token && st.st_ino == c->file_ino && st.st_size == c->file_size &&
	    st.st_mtim.tv_sec == c->file_mtime.tv_sec && st.st_mtim.tv_nsec == c->file_mtime.tv_nsec)
		return 0;
	r = read_small_file(c->token_file, &buf, &len, err);
	if (r < 0)
		return r;
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
		buf[--len] = '\0';
	if (!len || strpbrk(buf, "\r\n\t ")) {
		free(buf);
		return err_setf(err, EINVAL, "token file '%s': %s", c->token_file,
				len ? "the token has whitespace inside" : "empty");
	}
	free(c->file_token);
	c->file_token = buf;
	c->file_ino = st.st_ino;
	c->file_size = st.st_size;
	c->file_mtime = st.st_mtim;
	*ret_token = c->file_token;
	return 0;
}
