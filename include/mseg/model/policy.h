/* Policy documents: YAML (or JSON) -> struct mseg_policy, fully validated.
 * Loading is all-or-nothing: on error the destination set is untouched and
 * @err names file:line:col and the object at fault. */
#ifndef MSEG_POLICY_H
#define MSEG_POLICY_H

#include "mseg/util/err.h"
#include "mseg/model/model.h"

/* Limits that bound memory and time for hostile input. */
#define POLICY_MAX_FILE_SIZE (1u << 20)   /* bytes per file or body */
#define POLICY_MAX_DEPTH 32               /* nesting of maps and sequences */
#define POLICY_MAX_NODES 200000           /* YAML nodes per file */

/* spec.learnFor: how long a list in mode learn stays in its learning
 * stage before it is plain enforce (docs/policy.md). */
#define POLICY_LEARN_FOR_DEFAULT_S (24u * 3600u)
#define POLICY_LEARN_FOR_MIN_S 60u
#define POLICY_LEARN_FOR_MAX_S (90u * 24u * 3600u)

/* A duration: a whole number and one unit, s, m, h or d ("90m", "24h",
 * "7d"), within [POLICY_LEARN_FOR_MIN_S, POLICY_LEARN_FOR_MAX_S]; -EINVAL
 * (not a duration) or -ERANGE. */
int policy_duration_parse(const char *s, uint32_t *ret_s);

void policy_set_init(struct mseg_policy_set *set);
void policy_set_release(struct mseg_policy_set *set);

/* Parse every document of @buf (named @name in errors) and append them to
 * @set. Names must be unique within the buffer and against @set. Empty
 * documents are skipped. Returns 0, -EINVAL (a bad document), -EFBIG (too
 * large), -ENOMEM, or the -errno of a failed open or read (file loaders).
 * The language and the error format: docs/policy.md. */
int policy_parse_buffer(struct mseg_policy_set *set, const char *name,
			const char *buf, size_t len, struct mseg_err *err);

/* Load one file; @path is used in error positions. */
int policy_load_file(struct mseg_policy_set *set, const char *path, struct mseg_err *err);

/* Load every *.yaml, *.yml and *.json file of @dir (not recursive, skipping
 * names that start with '.'), in name order. All or nothing across the dir.
 * Symlinks to files are followed (a ConfigMap volume's name.yaml ->
 * ..data/name.yaml); subdirectories are ignored. */
int policy_load_dir(struct mseg_policy_set *set, const char *dir, struct mseg_err *err);

/* A file or a directory. */
int policy_load_path(struct mseg_policy_set *set, const char *path, struct mseg_err *err);

/* Move every policy of @src into @dst (appended); @src ends empty. */
int policy_set_take(struct mseg_policy_set *dst, struct mseg_policy_set *src);

/* Lookup by namespace and name; NULL if absent. */
struct mseg_policy *policy_set_find(const struct mseg_policy_set *set, const char *ns,
				    const char *name);

/* Remove and free by namespace and name; -ENOENT if absent. */
int policy_set_remove(struct mseg_policy_set *set, const char *ns, const char *name);

/* Insert, replacing (and freeing) a policy with the same namespace and
 * name. Takes @p on success; on error (-EINVAL, -ENOMEM) the caller keeps it. */
int policy_set_put(struct mseg_policy_set *set, struct mseg_policy *p);

struct mseg_policy *policy_free(struct mseg_policy *p);

/* One port string as a policy writes it: tcp/80, tcp/8000-8080, udp/53,
 * sctp/9, tcp (every TCP port: lo 0, hi 65535), udp, sctp, icmp, icmpv6,
 * any. -EINVAL with a hint in @err->msg (no position): "'5432' needs a
 * protocol, like tcp/5432", "unknown protocol 'TCP' (protocols are
 * lowercase: 'tcp')". @ret->pos and @ret->name are left zero. */
int policy_port_parse(const char *s, struct mseg_port *ret, struct mseg_err *err);

#endif
