/* mseg-cni: a chained CNI plugin (CNI spec 1.0.0, also 0.4.0 configs) that
 * registers each container's network namespace with msegd and waits until
 * its table is programmed. The pure parts (environment, CNI_ARGS, network
 * config, results, error JSON) are separate from the one part that talks
 * to msegd (cni_run()), so that tests can drive them directly. */
#ifndef MSEG_CNI_H
#define MSEG_CNI_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#define CNI_MAX_CONFIG_SIZE (1u << 20)   /* stdin larger than this: code 6 */
#define CNI_DEFAULT_SERVER "unix:/run/mseg/api.sock"
#define CNI_DEFAULT_TIMEOUT_SEC 10
#define CNI_MAX_TIMEOUT_SEC 300
/* Where token files may live: CNI_TOKEN_DIR; a build may add one directory
 * (-DMSEG_CNI_TOKEN_DIR=\"/path\"), and so may mseg-cni's own command line
 * (--token-dir). Never a field of the network config: the config is what
 * these rules protect against. */
#define CNI_TOKEN_DIR "/etc/mseg"

/* Error codes of the CNI spec (1.0.0, "Error"), plus ours. */
enum cni_code {
	CNI_ERR_INCOMPATIBLE_VERSION = 1,
	CNI_ERR_UNSUPPORTED_FIELD = 2,
	CNI_ERR_UNKNOWN_CONTAINER = 3,
	CNI_ERR_INVALID_ENV = 4,
	CNI_ERR_IO = 5,
	CNI_ERR_DECODE = 6,
	CNI_ERR_INVALID_CONFIG = 7,
	CNI_ERR_TRY_AGAIN_LATER = 11,
	CNI_ERR_MSEG = 999,               /* msegd refused or failed the request */
};

struct cni_error {
	unsigned code;          /* 0 = no error */
	char msg[256];
	char details[768];
};

enum cni_cmd { CNI_CMD_ADD, CNI_CMD_DEL, CNI_CMD_CHECK, CNI_CMD_VERSION };

/* The CNI_* environment. Strings point into the environment block given to
 * cni_env_parse() (and into @args_buf for CNI_ARGS values). */
struct cni_env {
	enum cni_cmd cmd;
	const char *containerid;
	const char *netns;            /* may be NULL for DEL */
	const char *ifname;
	const char *path;
	const char *args;             /* CNI_ARGS as given; may be NULL */
	/* from CNI_ARGS */
	const char *pod_name;         /* K8S_POD_NAME */
	const char *pod_namespace;    /* K8S_POD_NAMESPACE */
	const char *pod_uid;          /* K8S_POD_UID */
	bool ignore_unknown;          /* IgnoreUnknown=1|true */
	char args_buf[4096];          /* CNI_ARGS split into NUL-terminated pairs */
};

/* The network config of this plugin (stdin). */
struct cni_config {
	json_t *root;                 /* the whole document (owns the strings below) */
	const char *cni_version;
	const char *name;
	const char *type;
	const char *server;           /* "unix:/path" or "http(s)://host:port" */
	const char *token_file;       /* bearer token for a TCP server; may be NULL */
	bool allow_unreachable;       /* "onUnreachable": "allow" */
	bool labels_from_config;      /* "labelsFromConfig": true */
	bool labels_ignored;          /* the config had labels, but not labelsFromConfig */
	unsigned timeout_sec;
	json_t *prev_result;          /* borrowed from root; may be NULL */
	json_t *labels;               /* new object: merged labels (string -> string);
				       * empty unless labelsFromConfig */
};

/* Split "FOO=BAR;K8S_POD_NAME=x" into @env. Known keys: K8S_POD_NAMESPACE,
 * K8S_POD_NAME, K8S_POD_UID, K8S_POD_INFRA_CONTAINER_ID, IgnoreUnknown;
 * another key is an error (code 4) unless IgnoreUnknown is set anywhere in
 * the list. Returns 0 or -EINVAL with @err filled. */
int cni_args_parse(struct cni_env *env, const char *args, struct cni_error *err);

/* Read CNI_COMMAND and the variables the command needs from @envp
 * (environ-style). Returns 0 or -EINVAL (code 4). */
int cni_env_parse(struct cni_env *env, char *const *envp, struct cni_error *err);

/* Parse the network config. Code 6 for bad JSON, 7 for a bad field value, 1
 * for an unsupported cniVersion. @cmd decides what is required (ADD and
 * CHECK need prevResult with at least one IP). A "tokenFile" with a plain
 * http:// "server" that is not a loopback address is refused (the token
 * would cross the network in clear text). Labels are checked and merged,
 * later ones winning: "labels" (object), "args": {"cni": {"labels":
 * [{"key", "value"}]}}, "runtimeConfig": {"labels": {}}; they are kept only
 * with "labelsFromConfig": true, else c->labels is empty and
 * c->labels_ignored says whether there were any. */
int cni_config_parse(struct cni_config *c, const char *buf, size_t len, enum cni_cmd cmd,
		     struct cni_error *err);
void cni_config_release(struct cni_config *c);

/* The config's cniVersion if it is one we speak (for the version of an
 * error object when the config was otherwise bad); malloc'd or NULL. */
char *cni_config_sniff_version(const char *buf, size_t len);

/* Read the bearer token from @path into @buf (first line, without the line
 * end). The rules, for a config that is not trusted: @path resolved
 * (realpath) is inside one of @dirs (NULL-terminated; each resolved too;
 * "/" never counts); every directory from that one down to the file is owned by @owner (root:
 * 0) and not writable by group or others; the file is a regular file owned
 * by @owner with no permission bits for group or others, and not empty.
 * Returns 0 or -errno with @err (code 7) naming "tokenFile" and the rule. */
int cni_token_read(const char *path, const char *const *dirs, uid_t owner, char *buf,
		   size_t size, struct cni_error *err);

/* Is @v one of the versions this plugin speaks ("0.4.0", "1.0.0")? */
bool cni_version_supported(const char *v);

/* prevResult's addresses without prefix length, as a new JSON array of
 * strings. NULL on out of memory; -EINVAL (code 7) for a bad address via
 * @err when *ret is NULL. */
int cni_result_ips(const json_t *result, json_t **ret_ips, struct cni_error *err);

/* The result to print: @prev converted to @version (0.4.0 <-> 1.0.0: the
 * per-IP "version" field) with "cniVersion" set. New reference or NULL. */
json_t *cni_result_convert(const json_t *prev, const char *version);

/* The PUT /v1/endpoints/{id} body:
 * {"name","namespace","labels","netns","ips"}. New reference or NULL. */
json_t *cni_endpoint_body(const struct cni_config *c, const struct cni_env *env,
			  const json_t *ips);

/* Does a GET /v1/rules/{id} answer say the kernel holds the desired table?
 * Looks at "programmed" (also "in_sync"/"matches" if that is absent). */
bool cni_rules_is_programmed(const char *body, size_t len);

/* The spec's error object, as a malloc'd string (NULL on out of memory).
 * @version NULL means "1.0.0". */
char *cni_error_json(const struct cni_error *e, const char *version);

/* The VERSION command's answer. */
char *cni_version_json(void);

/* Fill @e and return -@errnum. */
int cni_error_set(struct cni_error *e, int errnum, unsigned code, const char *details,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The outcome of one plugin invocation. */
struct cni_outcome {
	char *stdout_json;            /* what to print on success; NULL = nothing */
	char *cni_version;            /* version for the error JSON; may be NULL */
	char warning[512];            /* for stderr when non-empty */
	struct cni_error err;         /* err.code != 0: print the error, exit 1 */
};

/* What the plugin's own command line says (the runtime runs it without
 * arguments, and no network config can add any). */
struct cni_opts {
	const char *token_dir;        /* --token-dir: another token directory; may be NULL */
	const char *tombstone_dir;    /* --tombstone-dir: NULL = CNI_TOMBSTONE_DIR */
};

/* Where a DEL that finds msegd down leaves a tombstone (an empty file named
 * by the container id) for msegd to apply at start: msegd's default state
 * dir's tombstones/. Like the token directory, only the plugin's own
 * command line can change it, not the network config. */
#define CNI_TOMBSTONE_DIR "/var/lib/mseg/tombstones"
int cni_tombstone_write(const char *dir, const char *id);

/* Run one invocation: @envp is the environment, @in/@len stdin. Talks to
 * msegd (libcurl; curl_global_init is the caller's job). Token files are
 * read with cni_token_read() from CNI_TOKEN_DIR, MSEG_CNI_TOKEN_DIR (if
 * built with one) and opts->token_dir, owner root. Returns 0 on success, else -errno with out->err filled. The caller
 * prints and frees. */
int cni_run(char *const *envp, const char *in, size_t len, const struct cni_opts *opts,
	    struct cni_outcome *out);
void cni_outcome_release(struct cni_outcome *out);

#endif
