/* Where the Kubernetes API server is and how msegd proves who it is: a
 * kubeconfig file (--kubeconfig FILE) or the pod's service account
 * (--kubernetes in-cluster). Nothing here logs or opens a connection. */
#ifndef MSEG_KUBE_KUBECONFIG_H
#define MSEG_KUBE_KUBECONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "mseg/util/err.h"

/* The service account's files inside a pod. */
#define KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
/* Largest kubeconfig, token or PEM file read. */
#define KUBE_CONFIG_MAX_SIZE (1u << 20)

struct kube_config {
	char *server;                 /* "https://HOST:PORT", no trailing '/' */
	char *ca_file;                /* PEM file; NULL: ca_pem or the system's */
	char *ca_pem;                 /* certificate-authority-data, decoded */
	size_t ca_pem_len;
	bool insecure;                /* insecure-skip-tls-verify */
	char *token;                  /* a fixed bearer token */
	char *token_file;             /* re-read whenever it changes */
	char *cert_file, *key_file;   /* client certificate and key files */
	char *cert_pem, *key_pem;     /* ... or their decoded -data */
	size_t cert_pem_len, key_pem_len;
	char *source;                 /* "FILE (context 'x')" or "in-cluster" */
	/* the token file's last contents and identity */
	char *file_token;
	struct timespec file_mtime;
	ino_t file_ino;
	off_t file_size;
};

void kube_config_init(struct kube_config *c);
void kube_config_release(struct kube_config *c);

/* Read a kubeconfig: the cluster and user of its current-context. Relative
 * paths are relative to the file's directory. Errors name the place:
 * "FILE:LINE:COL: users[0].user.tokenFile: ...". On error @c is empty. */
int kube_config_load_file(struct kube_config *c, const char *path, struct mseg_err *err);

/* The in-cluster config: https://@host:@port (from KUBERNETES_SERVICE_HOST
 * and _PORT when NULL), the token and ca.crt of @sa_dir (KUBE_SA_DIR when
 * NULL). */
int kube_config_in_cluster(struct kube_config *c, const char *host, const char *port,
			   const char *sa_dir, struct mseg_err *err);

/* The bearer token to send now (NULL: none): the token file is read again
 * when its inode, size or mtime changed (a rotated service account token).
 * A file that cannot be read keeps the last token and returns its -errno. */
int kube_config_token(struct kube_config *c, const char **ret_token, struct mseg_err *err);

/* Decode base64 (RFC 4648, padding optional, whitespace skipped) into a
 * malloc'd, NUL-terminated buffer. -EINVAL on a bad character. */
int kube_base64_decode(const char *in, size_t len, char **ret, size_t *ret_len);

#endif
