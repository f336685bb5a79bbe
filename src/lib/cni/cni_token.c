/* mseg-cni's bearer token: read only from a file that the node's root put
 * in a root-owned directory. The network config that names the file is not
 * trusted (under Multus, say, a namespace's own NetworkAttachmentDefinition
 * is part of it): without these rules "tokenFile" would make the plugin,
 * which runs as root, read any file of the node and send it to "server". */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mseg/cni/cni.h"

#define CNI_TOKEN_RULE "token files must be inside " CNI_TOKEN_DIR " (or the directory of " \
		       "mseg-cni's --token-dir), in directories owned by root and not " \
		       "writable by group or others, and readable by root only (mode 0600 or 0400)"

/* Is the resolved path @path inside the resolved directory @dir? "/" is
 * never a token directory: it would admit every root-only file of the node. */
static bool cni_path_is_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (strcmp(dir, "/") == 0)
		return false;
	return strncmp(path, dir, n) == 0 && path[n] == '/' && path[n + 1] != '\0';
}

/* Every directory from @top (resolved) down to the one holding @real: owned
 * by @owner and not writable by group or others, so that nobody else can
 * put or swap a file there. */
static int cni_token_check_dirs(const char *real, const char *top, uid_t owner,
				struct cni_error *err)
{
	char dir[PATH_MAX];
	size_t n = strlen(top);
	const char *p;

	for (;;) {
		struct stat st;

		memcpy(dir, real, n);
		dir[n] = '\0';
		if (lstat(dir, &st) < 0)
			return cni_error_set(err, errno, CNI_ERR_INVALID_CONFIG, CNI_TOKEN_RULE,
					     "network config: \"tokenFile\": cannot stat '%.200s': %s",
					     dir, strerror(errno));
		if (!S_ISDIR(st.st_mode))
			return cni_error_set(err, ENOTDIR, CNI_ERR_INVALID_CONFIG, CNI_TOKEN_RULE,
					     "network config: \"tokenFile\": '%.200s' is not a "
					     "directory", dir);
		if (st.st_uid != owner)
			return cni_error_set(err, EPERM, CNI_ERR_INVALID_CONFIG, CNI_TOKEN_RULE,
					     "network config: \"tokenFile\": directory '%.200s' is "
					     "owned by uid %u, not by root", dir, (unsigned)st.st_uid);
		if (st.st_mode & (S_IWGRP | S_IWOTH))
			return cni_error_set(err, EPERM, CNI_ERR_INVALID_CONFIG, CNI_TOKEN_RULE,
					     "network config: \"tokenFile\": directory '%.200s' is "
					     "writable by group or others (mode %04o)", dir,
					     (unsigned)(st.st_mode & 07777));
		p = strchr(real + n + 1, '/');
		if (!p)
			return 0;
		n = (size_t)(p - real);
	}
}

int cni_token_read(const char *path, const char *const *dirs, uid_t owner, char *buf,
		   size_t size, struct cni_error *err)
{
	char *real = NULL, *top = NULL;
	struct stat st;
	ssize_t n;
	int fd, r;

	buf[0] = '\0';
	if (path[0] != '/')
		return cni_error_set(err, EINVAL, CNI_ERR_INVALID_CONFIG, CNI_TOKEN_RULE,
				     "network config: \"tokenFile\" '%.200s' is not an absolute "
				     "path", path);
	real = realpath(path, NULL);
	if (!real)
		return cni_error_set(err, errno, CNI_ERR_INVALID_CONFIG, CNI_TOKEN_RULE,
				     "network config: \"tokenFile\" '%.200s': %s", path,
				     strerror(errno));
	for (; dirs && *dirs && !top; dirs++) {
		char *d = realpath(*dirs, NULL);

		if (d && cni_path_is_under(real, d))
			top = d;
		else
			free(d);
	}
	if (!top) {
		r = cni_error_set(err, EPERM, CNI_ERR_INVALID_CONFIG, CNI_TOKEN_RULE,
				  "network config: \"tokenFile\" '%.150s' (resolved '%.150s') is "
				  "not inside an allowed token directory", path, real);
		goto out_free;
	}
	r = cni_token_check_dirs(real, top, owner, err);
	if (r < 0)
		goto out_free;
	/* the directories are root's alone: nothing can swap the file between
	 * realpath() and open(); O_NOFOLLOW all the same */
	fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		r = cni_error_set(err, errno, CNI_ERR_INVALID_CONFIG, CNI_TOKEN_RULE,
				  "network config: \"tokenFile\" '%.200s': %s", path,
				  strerror(errno));
		goto out_free;
	}
	if (fstat(fd, &st) < 0) {
		r = cni_error_set(err, errno, CNI_ERR_INVALID_CONFIG, NULL,
				  "network config: \"tokenFile\" '%.200s': %s", path,
				  strerror(errno));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		r = cni_error_set(err, EINVAL, CNI_ERR_INVALID_CONFIG, CNI_TOKEN_RULE,
				  "network config: \"tokenFile\" '%.200s' is not a regular file",
				  path);
		goto out_close;
	}
	if (st.st_uid != owner) {
		r = cni_error_set(err, EPERM, CNI_ERR_INVALID_CONFIG, CNI_TOKEN_RULE,
				  "network config: \"tokenFile\" '%.200s' is owned by uid %u, "
				  "not by root", path, (unsigned)st.st_uid);
		goto out_close;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		r = cni_error_set(err, EPERM, CNI_ERR_INVALID_CONFIG, CNI_TOKEN_RULE,
				  "network config: \"tokenFile\" '%.200s' is accessible to group "
				  "or others (mode %04o)", path, (unsigned)(st.st_mode & 07777));
		goto out_close;
	}
	n = read(fd, buf, size - 1);
	if (n < 0) {
		r = cni_error_set(err, errno, CNI_ERR_INVALID_CONFIG, NULL,
				  "network config: \"tokenFile\" '%.200s': %s", path,
				  strerror(errno));
		goto out_close;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (!buf[0]) {
		r = cni_error_set(err, EINVAL, CNI_ERR_INVALID_CONFIG, NULL,
				  "network config: \"tokenFile\" '%.200s' is empty", path);
		goto out_close;
	}
	r = 0;
out_close:
	close(fd);
out_free:
	free(top);
	free(real);
	return r;
}
