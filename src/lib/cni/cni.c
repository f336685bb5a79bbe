/* mseg-cni's pure logic: the CNI environment and network config, the
 * result passed on, error objects. No I/O (cni_client.c talks to msegd). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mseg/cni/cni.h"

#define CNI_ID_MAX 128            /* msegd's limit on endpoint ids */

static const char *const cni_versions[] = { "0.4.0", "1.0.0" };

int cni_error_set(struct cni_error *e, int errnum, unsigned code, const char *details,
		  const char *fmt, ...)
{
	va_list ap;

	if (e) {
		e->code = code;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
		snprintf(e->details, sizeof(e->details), "%s", details ? details : "");
	}
	return -errnum;
}

bool cni_version_supported(const char *v)
{
	for (size_t i = 0; i < sizeof(cni_versions) / sizeof(cni_versions[0]); i++)
		if (v && strcmp(v, cni_versions[i]) == 0)
			return true;
	return false;
}

static bool cni_is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* The spec's container id: [A-Za-z0-9][A-Za-z0-9_.-]*; ours also <= 128. */
static bool cni_id_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > CNI_ID_MAX || !cni_is_alnum(s[0]))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!cni_is_alnum(s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
			return false;
	return true;
}

static bool cni_truthy(const char *v)
{
	return strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0;
}

int cni_args_parse(struct cni_env *env, const char *args, struct cni_error *err)
{
	const char *unknown = NULL;
	size_t len;
	char *p, *next;

	env->args = args;
	if (!args || !*args)
		return 0;
	len = strlen(args);
	if (len >= sizeof(env->args_buf))
		return cni_error_set(err, EINVAL, CNI_ERR_INVALID_ENV, NULL,
				     "CNI_ARGS is too long (%zu bytes)", len);
	memcpy(env->args_buf, args, len + 1);
	for (p = env->args_buf; p; p = next) {
		char *eq;

		next = strchr(p, ';');
		if (next)
			*next++ = '\0';
		if (!*p)
			continue;   /* "A=1;;B=2", a trailing ';' */
		eq = strchr(p, '=');
		if (!eq || eq == p)
			return cni_error_set(err, EINVAL, CNI_ERR_INVALID_ENV, args,
					     "CNI_ARGS: '%s' is not KEY=VALUE", p);
		*eq = '\0';
		if (strcmp(p, "K8S_POD_NAME") == 0)
			env->pod_name = *(eq + 1) ? eq + 1 : NULL;
		else if (strcmp(p, "K8S_POD_NAMESPACE") == 0)
			env->pod_namespace = *(eq + 1) ? eq + 1 : NULL;
		else if (strcmp(p, "K8S_POD_UID") == 0)
			env->pod_uid = eq + 1;
		else if (strcmp(p, "K8S_POD_INFRA_CONTAINER_ID") == 0)
			;
		else if (strcmp(p, "IgnoreUnknown") == 0)
			env->ignore_unknown = cni_truthy(eq + 1);
		else if (!unknown)
			unknown = p;
	}
	if (unknown && !env->ignore_unknown)
		return cni_error_set(err, EINVAL, CNI_ERR_INVALID_ENV, args,
				     "CNI_ARGS: unknown key '%s' (set IgnoreUnknown=1 to allow it)",
				     unknown);
	return 0;
}

static const char *cni_getenv(char *const *envp, const char *name)
{
	size_t n = strlen(name);

	for (; envp && *envp; envp++)
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

static int cni_env_require(char *const *envp, const char *name, const char **ret,
			   struct cni_error *err)
{
	const char *v = cni_getenv(envp, name);

	if (!v || !*v)
		return cni_error_set(err, EINVAL, CNI_ERR_INVALID_ENV, NULL,
				     "%s is not set", name);
	*ret = v;
	return 0;
}

int cni_env_parse(struct cni_env *env, char *const *envp, struct cni_error *err)
{
	const char *cmd = NULL;
	int r;

	memset(env, 0, sizeof(*env));
	r = cni_env_require(envp, "CNI_COMMAND", &cmd, err);
	if (r < 0)
		return r;
	if (strcmp(cmd, "ADD") == 0)
		env->cmd = CNI_CMD_ADD;
	else if (strcmp(cmd, "DEL") == 0)
		env->cmd = CNI_CMD_DEL;
	else if (strcmp(cmd, "CHECK") == 0)
		env->cmd = CNI_CMD_CHECK;
	else if (strcmp(cmd, "VERSION") == 0)
		env->cmd = CNI_CMD_VERSION;
	else
		return cni_error_set(err, EINVAL, CNI_ERR_INVALID_ENV, NULL,
				     "CNI_COMMAND '%s' is not ADD, DEL, CHECK or VERSION", cmd);
	if (env->cmd == CNI_CMD_VERSION)
		return 0;

	env->path = cni_getenv(envp, "CNI_PATH");
	env->netns = cni_getenv(envp, "CNI_NETNS");
	env->ifname = cni_getenv(envp, "CNI_IFNAME");
	if (env->netns && !*env->netns)
		env->netns = NULL;
	r = cni_env_require(envp, "CNI_CONTAINERID", &env->containerid, err);
	if (r < 0)
		return r;
	if (!cni_id_valid(env->containerid))
		return cni_error_set(err, EINVAL, CNI_ERR_INVALID_ENV, NULL,
				     "CNI_CONTAINERID '%.64s' is not a valid id (letters, digits, "
				     "'_', '.', '-', beginning with a letter or digit, at most %d)",
				     env->containerid, CNI_ID_MAX);
	/* DEL must work with whatever is left: only the id is needed */
	if (env->cmd != CNI_CMD_DEL) {
		r = cni_env_require(envp, "CNI_NETNS", &env->netns, err);
		if (r < 0)
			return r;
		if (env->netns[0] != '/')
			return cni_error_set(err, EINVAL, CNI_ERR_INVALID_ENV, NULL,
					     "CNI_NETNS '%.200s' is not an absolute path", env->netns);
		r = cni_env_require(envp, "CNI_IFNAME", &env->ifname, err);
		if (r < 0)
			return r;
	}
	return cni_args_parse(env, cni_getenv(envp, "CNI_ARGS"), err);
}

void cni_config_release(struct cni_config *c)
{
	json_decref(c->root);
	json_decref(c->labels);
	memset(c, 0, sizeof(*c));
}

/* Optional string member; -EINVAL (code 7) if present and not a string. */
static int cni_config_str(json_t *obj, const char *key, const char **ret, struct cni_error *err)
{
	json_t *v = json_object_get(obj, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return cni_error_set(err, EINVAL, CNI_ERR_INVALID_CONFIG, NULL,
				     "network config: \"%s\" must be a string", key);
	*ret = json_string_value(v);
	return 0;
}

/* Copy a {"k": "v"} object into c->labels. */
static int cni_labels_merge_object(struct cni_config *c, json_t *obj, const char *what,
				   struct cni_error *err)
{
	const char *k;
	json_t *v;

	if (!obj || json_is_null(obj))
		return 0;
	if (!json_is_object(obj))
		return cni_error_set(err, EINVAL, CNI_ERR_INVALID_CONFIG, NULL,
				     "network config: %s must be an object of strings", what);
	json_object_foreach(obj, k, v) {
		if (!json_is_string(v))
			return cni_error_set(err, EINVAL, CNI_ERR_INVALID_CONFIG, NULL,
					     "network config: %s: value of '%s' must be a string",
					     what, k);
		if (json_object_set(c->labels, k, v) < 0)
			return cni_error_set(err, ENOMEM, CNI_ERR_MSEG, NULL, "out of memory");
	}
	return 0;
}

/* The CNI "args" convention: {"cni": {"labels": [{"key": k, "value": v}]}}. */
static int cni_labels_merge_args(struct cni_config *c, json_t *args, struct cni_error *err)
{
	json_t *list = json_object_get(json_object_get(args, "cni"), "labels");
	json_t *item;
	size_t i;

	if (!list || json_is_null(list))
		return 0;
	if (!json_is_array(list))
		return cni_error_set(err, EINVAL, CNI_ERR_INVALID_CONFIG, NULL,
				     "network config: args.cni.labels must be a list");
	json_array_foreach(list, i, item) {
		json_t *k = json_object_get(item, "key"), *v = json_object_get(item, "value");

		if (!json_is_string(k) || !json_is_string(v))
			return cni_error_set(err, EINVAL, CNI_ERR_INVALID_CONFIG, NULL,
					     "network config: args.cni.labels[%zu] must be "
					     "{\"key\": string, \"value\": string}", i);
		if (json_object_set(c->labels, json_string_value(k), v) < 0)
			return cni_error_set(err, ENOMEM, CNI_ERR_MSEG, NULL, "out of memory");
	}
	return 0;
}

/* Is the host of "http://AUTHORITY/..." (@url without the scheme) a
 * loopback address: 127.0.0.0/8, [::1] or localhost (libcurl resolves that
 * name to loopback itself)? A user part ("a@host") never is: which host
 * that names is easy to get wrong. */
static bool cni_http_host_is_loopback(const char *url)
{
	size_t n = strcspn(url, "/?#");
	char host[64];
	const char *end;
	unsigned char bin[4];
	struct in6_addr a6;

	if (memchr(url, '@', n))
		return false;
	if (url[0] == '[') {
		end = memchr(url, ']', n);
		if (!end || (size_t)(end - url - 1) >= sizeof(host))
			return false;
		memcpy(host, url + 1, (size_t)(end - url - 1));
		host[end - url - 1] = '\0';
		if (inet_pton(AF_INET6, host, &a6) != 1 || !IN6_IS_ADDR_LOOPBACK(&a6))
			return false;
		end++;
	} else {
		end = memchr(url, ':', n);
		if (!end)
			end = url + n;
		if ((size_t)(end - url) >= sizeof(host))
			return false;
		memcpy(host, url, (size_t)(end - url));
		host[end - url] = '\0';
		if (strcasecmp(host, "localhost") != 0 &&
		    (inet_pton(AF_INET, host, bin) != 1 || bin[0] != 127))
			return false;
	}
	/* nothing but ":PORT" may follow the host */
	if (end < url + n && *end != ':')
		return false;
	for (const char *p = end < url + n ? end + 1 : end; p < url + n; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

int cni_config_parse(struct cni_config *c, const char *buf, size_t len, enum cni_cmd cmd,
		     struct cni_error *err)
{
	json_error_t jerr;
	json_t *v;
	const char *on_unreachable = NULL;
	int r;

	memset(c, 0, sizeof(*c));
	c->server = CNI_DEFAULT_SERVER;
	c->timeout_sec = CNI_DEFAULT_TIMEOUT_SEC;
	if (len > CNI_MAX_CONFIG_SIZE)
		return cni_error_set(err, EINVAL, CNI_ERR_DECODE, NULL,
				     "network config is larger than %u bytes", CNI_MAX_CONFIG_SIZE);
	if (memchr(buf, '\0', len))
		return cni_error_set(err, EINVAL, CNI_ERR_DECODE, NULL,
				     "network config contains a NUL byte");
	c->root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!c->root)
		return cni_error_set(err, EINVAL, CNI_ERR_DECODE, NULL,
				     "cannot decode the network config: line %d, column %d: %s",
				     jerr.line, jerr.column, jerr.text);
	if (!json_is_object(c->root)) {
		r = cni_error_set(err, EINVAL, CNI_ERR_DECODE, NULL,
				  "the network config must be a JSON object");
		goto out_release;
	}
	c->labels = json_object();
	if (!c->labels) {
		r = cni_error_set(err, ENOMEM, CNI_ERR_MSEG, NULL, "out of memory");
		goto out_release;
	}
	if ((r = cni_config_str(c->root, "cniVersion", &c->cni_version, err)) < 0 ||
	    (r = cni_config_str(c->root, "name", &c->name, err)) < 0 ||
	    (r = cni_config_str(c->root, "type", &c->type, err)) < 0 ||
	    (r = cni_config_str(c->root, "server", &c->server, err)) < 0 ||
	    (r = cni_config_str(c->root, "tokenFile", &c->token_file, err)) < 0 ||
	    (r = cni_config_str(c->root, "onUnreachable", &on_unreachable, err)) < 0)
		goto out_release;
	if (!c->cni_version) {
		r = cni_error_set(err, EINVAL, CNI_ERR_INVALID_CONFIG, NULL,
				  "network config: \"cniVersion\" is missing");
		goto out_release;
	}
	if (!cni_version_supported(c->cni_version)) {
		r = cni_error_set(err, EINVAL, CNI_ERR_INCOMPATIBLE_VERSION,
				  "supported versions: 0.4.0, 1.0.0",
				  "cniVersion '%.32s' is not supported", c->cni_version);
		goto out_release;
	}
	if (!c->name || !*c->name || !c->type || !*c->type) {
		r = cni_error_set(err, EINVAL, CNI_ERR_INVALID_CONFIG, NULL,
				  "network config: \"%s\" is missing", !c->name || !*c->name ? "name" : "type");
		goto out_release;
	}
	if (strncmp(c->server, "unix:/", 6) != 0 && strncmp(c->server, "http://", 7) != 0 &&
	    strncmp(c->server, "https://", 8) != 0) {
		r = cni_error_set(err, EINVAL, CNI_ERR_INVALID_CONFIG, NULL,
				  "network config: \"server\" '%.200s' is not unix:/PATH, "
				  "http://HOST:PORT or https://HOST:PORT", c->server);
		goto out_release;
	}
	if (c->token_file && strncmp(c->server, "http://", 7) == 0 &&
	    !cni_http_host_is_loopback(c->server + 7)) {
		r = cni_error_set(err, EINVAL, CNI_ERR_INVALID_CONFIG,
				  "use https:// (or a unix: socket, or msegd on a loopback address)",
				  "network config: \"tokenFile\" with \"server\" '%.150s': the "
				  "token would cross the network unencrypted (plain http:// to a "
				  "host that is not loopback)", c->server);
		goto out_release;
	}
	v = json_object_get(c->root, "labelsFromConfig");
	if (v && !json_is_null(v)) {
		if (!json_is_boolean(v)) {
			r = cni_error_set(err, EINVAL, CNI_ERR_INVALID_CONFIG, NULL,
					  "network config: \"labelsFromConfig\" must be true or false");
			goto out_release;
		}
		c->labels_from_config = json_is_true(v);
	}
	if (on_unreachable && strcmp(on_unreachable, "allow") == 0) {
		c->allow_unreachable = true;
	} else if (on_unreachable && strcmp(on_unreachable, "fail") != 0) {
		r = cni_error_set(err, EINVAL, CNI_ERR_INVALID_CONFIG, NULL,
				  "network config: \"onUnreachable\" must be \"fail\" or \"allow\", "
				  "not '%.32s'", on_unreachable);
		goto out_release;
	}
	v = json_object_get(c->root, "timeoutSeconds");
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > CNI_MAX_TIMEOUT_SEC) {
			r = cni_error_set(err, EINVAL, CNI_ERR_INVALID_CONFIG, NULL,
					  "network config: \"timeoutSeconds\" must be an integer "
					  "from 1 to %d", CNI_MAX_TIMEOUT_SEC);
			goto out_release;
		}
		c->timeout_sec = (unsigned)json_integer_value(v);
	}
	if ((r = cni_labels_merge_object(c, json_object_get(c->root, "labels"), "\"labels\"",
					 err)) < 0 ||
	    (r = cni_labels_merge_args(c, json_object_get(c->root, "args"), err)) < 0 ||
	    (r = cni_labels_merge_object(c, json_object_get(json_object_get(c->root,
									    "runtimeConfig"),
							    "labels"),
					 "runtimeConfig.labels", err)) < 0)
		goto out_release;
	/* labels from the config are no identity: whoever writes a config
	 * (or a runtimeConfig) could claim any; only on request */
	if (!c->labels_from_config && json_object_size(c->labels) > 0) {
		c->labels_ignored = true;
		json_object_clear(c->labels);
	}

	v = json_object_get(c->root, "prevResult");
	if (v && !json_is_null(v)) {
		if (!json_is_object(v)) {
			r = cni_error_set(err, EINVAL, CNI_ERR_INVALID_CONFIG, NULL,
					  "network config: \"prevResult\" must be an object");
			goto out_release;
		}
		c->prev_result = v;
	}
	if ((cmd == CNI_CMD_ADD || cmd == CNI_CMD_CHECK) && !c->prev_result) {
		r = cni_error_set(err, EINVAL, CNI_ERR_INVALID_CONFIG, NULL,
				  "no prevResult: mseg-cni is a chained plugin and must come "
				  "after the plugin that assigns the addresses");
		goto out_release;
	}
	return 0;

out_release:
	cni_config_release(c);
	return r;
}

int cni_result_ips(const json_t *result, json_t **ret_ips, struct cni_error *err)
{
	json_t *ips = json_array(), *list = json_object_get(result, "ips"), *item;
	size_t i;
	int r;

	*ret_ips = NULL;
	if (!ips)
		return cni_error_set(err, ENOMEM, CNI_ERR_MSEG, NULL, "out of memory");
	if (list && !json_is_array(list)) {
		r = cni_error_set(err, EINVAL, CNI_ERR_INVALID_CONFIG, NULL,
				  "prevResult.ips must be a list");
		goto out_free;
	}
	json_array_foreach(list, i, item) {
		const char *a = json_string_value(json_object_get(item, "address"));
		char addr[INET6_ADDRSTRLEN + 1];
		unsigned char bin[16];
		const char *slash;
		size_t n;
		bool dup = false;
		json_t *e;
		size_t j;

		if (!a) {
			r = cni_error_set(err, EINVAL, CNI_ERR_INVALID_CONFIG, NULL,
					  "prevResult.ips[%zu].address is missing", i);
			goto out_free;
		}
		slash = strchr(a, '/');
		n = slash ? (size_t)(slash - a) : strlen(a);
		if (n >= sizeof(addr)) {
			r = cni_error_set(err, EINVAL, CNI_ERR_INVALID_CONFIG, NULL,
					  "prevResult.ips[%zu].address '%.64s' is not an address", i, a);
			goto out_free;
		}
		memcpy(addr, a, n);
		addr[n] = '\0';
		if (inet_pton(strchr(addr, ':') ? AF_INET6 : AF_INET, addr, bin) != 1) {
			r = cni_error_set(err, EINVAL, CNI_ERR_INVALID_CONFIG, NULL,
					  "prevResult.ips[%zu].address '%.64s' is not an address", i, a);
			goto out_free;
		}
		json_array_foreach(ips, j, e)
			if (strcmp(json_string_value(e), addr) == 0)
				dup = true;
		if (!dup && json_array_append_new(ips, json_string(addr)) < 0) {
			r = cni_error_set(err, ENOMEM, CNI_ERR_MSEG, NULL, "out of memory");
			goto out_free;
		}
	}
	if (json_array_size(ips) == 0) {
		r = cni_error_set(err, EINVAL, CNI_ERR_INVALID_CONFIG, NULL,
				  "prevResult has no IP addresses: chain mseg-cni after the "
				  "plugin that assigns them (IPAM)");
		goto out_free;
	}
	*ret_ips = ips;
	return 0;

out_free:
	json_decref(ips);
	return r;
}

char *cni_config_sniff_version(const char *buf, size_t len)
{
	json_t *root = len <= CNI_MAX_CONFIG_SIZE ? json_loadb(buf, len, 0, NULL) : NULL;
	const char *v = json_string_value(json_object_get(root, "cniVersion"));
	char *s = cni_version_supported(v) ? strdup(v) : NULL;

	json_decref(root);
	return s;
}

json_t *cni_result_convert(const json_t *prev, const char *version)
{
	json_t *res = json_deep_copy(prev), *list, *item;
	bool to_old = strcmp(version, "1.0.0") != 0;
	size_t i;

	if (!res)
		return NULL;
	list = json_object_get(res, "ips");
	json_array_foreach(list, i, item) {
		const char *a = json_string_value(json_object_get(item, "address"));

		if (!json_is_object(item))
			continue;
		if (!to_old) {
			json_object_del(item, "version");   /* gone in 1.0.0 */
		} else if (!json_object_get(item, "version") && a) {
			json_object_set_new(item, "version",
					    json_string(strchr(a, ':') ? "6" : "4"));
		}
	}
	if (json_object_set_new(res, "cniVersion", json_string(version)) < 0) {
		json_decref(res);
		return NULL;
	}
	return res;
}

json_t *cni_endpoint_body(const struct cni_config *c, const struct cni_env *env,
			  const json_t *ips)
{
	json_t *o = json_pack("{s:s, s:s, s:O, s:s, s:O}",
			      "name", env->pod_name ? env->pod_name : env->containerid,
			      "namespace", env->pod_namespace ? env->pod_namespace : "default",
			      "labels", c->labels,
			      "netns", env->netns ? env->netns : "",
			      "ips", ips);

	/* which Pod object this is: with a Kubernetes watcher, msegd takes
	 * the labels from the Pod of this uid, and not from an older pod of
	 * the same name */
	if (o && env->pod_uid && *env->pod_uid &&
	    json_object_set_new(o, "pod_uid", json_string(env->pod_uid)) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

bool cni_rules_is_programmed(const char *body, size_t len)
{
	static const char *const keys[] = { "programmed", "in_sync", "matches" };
	json_t *root = json_loadb(body, len, 0, NULL);
	bool ok = false;

	for (size_t i = 0; root && i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(root, keys[i]);

		if (v) {
			ok = json_is_true(v);
			break;
		}
	}
	json_decref(root);
	return ok;
}

char *cni_error_json(const struct cni_error *e, const char *version)
{
	json_t *o = json_pack("{s:s, s:I, s:s}", "cniVersion", version ? version : "1.0.0",
			      "code", (json_int_t)e->code, "msg", e->msg);
	char *s;

	if (!o)
		return NULL;
	if (e->details[0])
		json_object_set_new(o, "details", json_string(e->details));
	s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

char *cni_version_json(void)
{
	json_t *o = json_pack("{s:s, s:[s,s]}", "cniVersion", "1.0.0", "supportedVersions",
			      cni_versions[0], cni_versions[1]);
	char *s;

	if (!o)
		return NULL;
	s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}
