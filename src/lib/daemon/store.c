/* Persistent API state: one file per accepted object, written atomically
 * (temp file, fsync, rename, fsync dir). See include/mseg/daemon/store.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mseg/model/inventory.h"
#include "mseg/model/policy.h"
#include "mseg/daemon/store.h"

#define STORE_POLICIES "policies"
#define STORE_ENDPOINTS "endpoints"
#define STORE_NAMESPACES "namespaces"
#define STORE_TOMBSTONES "tombstones"
#define STORE_TMP_PREFIX ".tmp."

struct store {
	char *dir;
	char *pol_dir;
	char *ep_dir;
	char *ns_dir;
	int lock_fd;                   /* DIR/.lock, flock'ed while open */
	unsigned long tmp_seq;
	bool quarantine;               /* move bad files aside instead of failing */
	char **bad;                    /* what was moved aside, and why */
	size_t n_bad;
};

#define STORE_QUARANTINE "quarantine"

void store_quarantine_enable(struct store *s)
{
	s->quarantine = true;
}

size_t store_quarantined_count(const struct store *s)
{
	return s->n_bad;
}

const char *store_quarantined(const struct store *s, size_t i)
{
	return i < s->n_bad ? s->bad[i] : NULL;
}

/* A stored file that does not load: with quarantine on, rename it to
 * DIR/quarantine/KIND.NAME (a number added when taken) and remember why;
 * 0 then, so the load goes on. Otherwise (or when the rename fails) the
 * load fails with @r. */
static int store_bad_file(struct store *s, const char *kind, const char *name,
			  const char *path, int r, struct mseg_err *err)
{
	char qdir[PATH_MAX], dst[PATH_MAX + NAME_MAX + 32], msg[1024], *line;
	struct stat st;
	char **t;

	if (!s->quarantine || r == -ENOMEM)
		return r;
	if (snprintf(qdir, sizeof(qdir), "%s/" STORE_QUARANTINE, s->dir) >= (int)sizeof(qdir))
		return r;
	if (mkdir(qdir, 0700) < 0 && errno != EEXIST)
		return r;
	for (unsigned k = 0; k < 1000; k++) {
		if (k == 0)
			snprintf(dst, sizeof(dst), "%s/%s.%s", qdir, kind, name);
		else
			snprintf(dst, sizeof(dst), "%s/%s.%s.%u", qdir, kind, name, k);
		if (lstat(dst, &st) < 0 && errno == ENOENT)
			break;
	}
	if (rename(path, dst) < 0)
		return r;
	err_format(err, msg, sizeof(msg));
	t = realloc(s->bad, (s->n_bad + 1) * sizeof(*t));
	if (!t || asprintf(&line, "%s; moved to %s", msg, dst) < 0) {
		if (t)
			s->bad = t;
		return 0;
	}
	s->bad = t;
	s->bad[s->n_bad++] = line;
	err_clear(err);
	return 0;
}

#define STORE_LOCK ".lock"

/* One msegd per state dir: an exclusive flock on DIR/.lock, which also
 * holds the owner's pid for the message of the one that is refused. */
static int store_lock(struct store *s, struct mseg_err *err)
{
	char path[PATH_MAX], pid[32] = "";
	ssize_t n;
	int len;

	if (snprintf(path, sizeof(path), "%s/" STORE_LOCK, s->dir) >= (int)sizeof(path))
		return err_setf(err, ENAMETOOLONG, "state dir '%s': path too long", s->dir);
	s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (s->lock_fd < 0)
		return err_setf(err, errno, "cannot open '%s': %s", path, strerror(errno));
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		if (e != EWOULDBLOCK)
			return err_setf(err, e, "cannot lock '%s': %s", path, strerror(e));
		n = pread(s->lock_fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		return err_setf(err, EBUSY, "state dir '%s' is in use by another msegd%s%s%s; "
				"refusing to run a second one on it", s->dir, pid[0] ? " (pid " : "",
				pid, pid[0] ? ")" : "");
	}
	len = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(s->lock_fd, 0) < 0 || pwrite(s->lock_fd, pid, (size_t)len, 0) != len)
		return err_setf(err, errno, "cannot write '%s': %s", path, strerror(errno));
	return 0;
}

static int mkdir_one(const char *path, struct mseg_err *err)
{
	struct stat st;

	if (mkdir(path, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return err_set(err, path, 0, 0, errno, "cannot create: %s", strerror(errno));
	if (stat(path, &st) < 0)
		return err_set(err, path, 0, 0, errno, "cannot stat: %s", strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return err_set(err, path, 0, 0, ENOTDIR, "not a directory");
	return 0;
}

/* mkdir -p with mode 0700 for what is created */
static int mkdir_parents(const char *path, struct mseg_err *err)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return err_setf(err, ENAMETOOLONG, "state dir '%s': bad path", path);
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return err_set(err, buf, 0, 0, errno, "cannot create: %s", strerror(errno));
		*p = '/';
	}
	return mkdir_one(buf, err);
}

static int fsync_dir(const char *dir, struct mseg_err *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return err_set(err, dir, 0, 0, errno, "cannot open: %s", strerror(errno));
	if (fsync(fd) < 0)
		r = err_set(err, dir, 0, 0, errno, "fsync: %s", strerror(errno));
	close(fd);
	return r;
}

int store_open(const char *dir, struct store **ret_store, struct mseg_err *err)
{
	struct store *s;
	int r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return err_setf(err, ENOMEM, "out of memory");
	s->lock_fd = -1;
	s->dir = strdup(dir);
	if (!s->dir || asprintf(&s->pol_dir, "%s/" STORE_POLICIES, dir) < 0) {
		s->pol_dir = NULL;
		r = err_setf(err, ENOMEM, "out of memory");
		goto out_free;
	}
	if (asprintf(&s->ns_dir, "%s/" STORE_NAMESPACES, dir) < 0) {
		s->ns_dir = NULL;
		r = err_setf(err, ENOMEM, "out of memory");
		goto out_free;
	}
	if (asprintf(&s->ep_dir, "%s/" STORE_ENDPOINTS, dir) < 0) {
		s->ep_dir = NULL;
		r = err_setf(err, ENOMEM, "out of memory");
		goto out_free;
	}
	r = mkdir_parents(s->dir, err);
	if (r == 0)
		r = mkdir_one(s->pol_dir, err);
	if (r == 0)
		r = mkdir_one(s->ep_dir, err);
	if (r == 0)
		r = mkdir_one(s->ns_dir, err);
	if (r == 0)
		r = store_lock(s, err);
	if (r < 0)
		goto out_free;
	*ret_store = s;
	return 0;

out_free:
	store_free(s);
	return r;
}

struct store *store_free(struct store *s)
{
	if (!s)
		return NULL;
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	for (size_t i = 0; i < s->n_bad; i++)
		free(s->bad[i]);
	free(s->bad);
	free(s->dir);
	free(s->pol_dir);
	free(s->ep_dir);
	free(s->ns_dir);
	free(s);
	return NULL;
}

const char *store_dir(const struct store *s)
{
	return s->dir;
}

/* A name that is safe as one path component in our directories. */
static bool component_valid(const char *s)
{
	return s[0] && s[0] != '.' && !strchr(s, '/') && strlen(s) <= 255;
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = write(fd, data, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

int store_write_atomic(const char *dir, const char *name, const char *data, size_t len,
		       struct mseg_err *err)
{
	static unsigned long seq;
	char tmp[PATH_MAX], final[PATH_MAX];
	int fd, r;

	if (snprintf(final, sizeof(final), "%s/%s", dir, name) >= (int)sizeof(final) ||
	    snprintf(tmp, sizeof(tmp), "%s/" STORE_TMP_PREFIX "%d.%lu", dir, (int)getpid(),
		     ++seq) >= (int)sizeof(tmp))
		return err_setf(err, ENAMETOOLONG, "'%s/%s': path too long", dir, name);
	/* a new file or nothing: never through a planted symlink or an
	 * existing file */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(err, tmp, 0, 0, errno, "cannot create: %s", strerror(errno));
	r = write_all(fd, data, len);
	if (r < 0) {
		err_set(err, tmp, 0, 0, -r, "write: %s", strerror(-r));
		goto out_unlink;
	}
	if (fsync(fd) < 0) {
		r = err_set(err, tmp, 0, 0, errno, "fsync: %s", strerror(errno));
		goto out_unlink;
	}
	if (close(fd) < 0) {
		fd = -1;
		r = err_set(err, tmp, 0, 0, errno, "close: %s", strerror(errno));
		goto out_unlink;
	}
	fd = -1;
	if (rename(tmp, final) < 0) {
		r = err_set(err, final, 0, 0, errno, "rename: %s", strerror(errno));
		goto out_unlink;
	}
	/* the rename is durable once the directory is */
	return fsync_dir(dir, err);

out_unlink:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return r;
}

static int unlink_durable(const char *dir, const char *name, struct mseg_err *err)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return err_setf(err, ENAMETOOLONG, "'%s/%s': path too long", dir, name);
	if (unlink(path) < 0) {
		if (errno == ENOENT)
			return -ENOENT;
		return err_set(err, path, 0, 0, errno, "cannot remove: %s", strerror(errno));
	}
	return fsync_dir(dir, err);
}

static int policy_file_name(char *buf, size_t size, const char *ns, const char *name)
{
	if (!component_valid(ns) || !component_valid(name) || strchr(ns, '.'))
		return -EINVAL;
	if (snprintf(buf, size, "%s.%s", ns, name) >= (int)size)
		return -ENAMETOOLONG;
	return 0;
}

int store_policy_put(struct store *s, const char *ns, const char *name, const char *doc,
		     size_t len, struct mseg_err *err)
{
	char fname[NAME_MAX + 1];
	int r = policy_file_name(fname, sizeof(fname), ns, name);

	if (r < 0)
		return err_setf(err, -r, "policy '%s/%s': invalid name", ns, name);
	return store_write_atomic(s->pol_dir, fname, doc, len, err);
}

int store_policy_delete(struct store *s, const char *ns, const char *name, struct mseg_err *err)
{
	char fname[NAME_MAX + 1];
	int r = policy_file_name(fname, sizeof(fname), ns, name);

	if (r < 0)
		return err_setf(err, -r, "policy '%s/%s': invalid name", ns, name);
	return unlink_durable(s->pol_dir, fname, err);
}

int store_endpoint_put(struct store *s, const char *id, const char *doc, size_t len,
		       struct mseg_err *err)
{
	if (!component_valid(id))
		return err_setf(err, EINVAL, "endpoint '%s': invalid id", id);
	return store_write_atomic(s->ep_dir, id, doc, len, err);
}

int store_namespace_put(struct store *s, const char *name, const char *doc, size_t len,
			struct mseg_err *err)
{
	if (!component_valid(name))
		return err_setf(err, EINVAL, "namespace '%s': invalid name", name);
	return store_write_atomic(s->ns_dir, name, doc, len, err);
}

int store_namespace_delete(struct store *s, const char *name, struct mseg_err *err)
{
	if (!component_valid(name))
		return err_setf(err, EINVAL, "namespace '%s': invalid name", name);
	return unlink_durable(s->ns_dir, name, err);
}

int store_endpoint_delete(struct store *s, const char *id, struct mseg_err *err)
{
	if (!component_valid(id))
		return err_setf(err, EINVAL, "endpoint '%s': invalid id", id);
	return unlink_durable(s->ep_dir, id, err);
}

static int read_file(const char *path, char **ret_doc, size_t *ret_len, size_t max)
{
	struct stat st;
	char *buf;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		goto out_close;
	}
	if ((size_t)st.st_size > max) {
		r = -EFBIG;
		goto out_close;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out_close;
	}
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			free(buf);
			goto out_close;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret_doc = buf;
	*ret_len = len;
out_close:
	close(fd);
	return r;
}

int store_policy_read(struct store *s, const char *ns, const char *name, char **ret_doc,
		      size_t *ret_len)
{
	char fname[NAME_MAX + 1], path[PATH_MAX];
	int r = policy_file_name(fname, sizeof(fname), ns, name);

	if (r < 0)
		return r;
	if (snprintf(path, sizeof(path), "%s/%s", s->pol_dir, fname) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	return read_file(path, ret_doc, ret_len, POLICY_MAX_FILE_SIZE);
}

int store_namespace_read(struct store *s, const char *name, char **ret_doc, size_t *ret_len)
{
	char path[PATH_MAX];

	if (!component_valid(name))
		return -EINVAL;
	if (snprintf(path, sizeof(path), "%s/%s", s->ns_dir, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	return read_file(path, ret_doc, ret_len, POLICY_MAX_FILE_SIZE);
}

int store_endpoint_read(struct store *s, const char *id, char **ret_doc, size_t *ret_len)
{
	char path[PATH_MAX];

	if (!component_valid(id))
		return -EINVAL;
	if (snprintf(path, sizeof(path), "%s/%s", s->ep_dir, id) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	return read_file(path, ret_doc, ret_len, POLICY_MAX_FILE_SIZE);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of the regular entries of @dir, sorted; temporary files left by
 * a crash are removed. */
static int dir_list(const char *dir, char ***ret_names, size_t *ret_n, struct mseg_err *err)
{
	DIR *dh = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	if (!dh)
		return err_set(err, dir, 0, 0, errno, "cannot open: %s", strerror(errno));
	while ((de = readdir(dh))) {
		if (strncmp(de->d_name, STORE_TMP_PREFIX, strlen(STORE_TMP_PREFIX)) == 0) {
			unlinkat(dirfd(dh), de->d_name, 0);
			continue;
		}
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			size_t c = cap ? cap * 2 : 32;
			char **v = realloc(names, c * sizeof(*v));

			if (!v) {
				r = err_setf(err, ENOMEM, "out of memory");
				goto out_free;
			}
			names = v;
			cap = c;
		}
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			r = err_setf(err, ENOMEM, "out of memory");
			goto out_free;
		}
		n++;
	}
	closedir(dh);
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	*ret_names = names;
	*ret_n = n;
	return 0;

out_free:
	closedir(dh);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

static void names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int store_load_policies(struct store *s, struct mseg_policy_set *out, struct mseg_err *err)
{
	char **names = NULL;
	size_t n = 0;
	int r = dir_list(s->pol_dir, &names, &n, err);

	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++) {
		struct mseg_policy_set one;
		char path[PATH_MAX], want[NAME_MAX + 1];
		char *doc = NULL;
		size_t len = 0;

		snprintf(path, sizeof(path), "%s/%s", s->pol_dir, names[i]);
		r = read_file(path, &doc, &len, POLICY_MAX_FILE_SIZE);
		if (r < 0) {
			r = err_set(err, path, 0, 0, -r, "cannot read: %s", strerror(-r));
			break;
		}
		policy_set_init(&one);
		r = policy_parse_buffer(&one, path, doc, len, err);
		free(doc);
		if (r == 0 && (one.n != 1 ||
			       policy_file_name(want, sizeof(want), one.items[0]->ns,
						one.items[0]->name) < 0 ||
			       strcmp(want, names[i]) != 0))
			r = err_set(err, path, 0, 0, EINVAL,
				    "expected the one policy its file name says");
		if (r == 0 && policy_set_find(out, one.items[0]->ns, one.items[0]->name))
			r = err_set(err, path, 0, 0, EEXIST, "duplicate policy");
		if (r == 0)
			r = policy_set_take(out, &one);
		else
			r = store_bad_file(s, STORE_POLICIES, names[i], path, r, err);
		policy_set_release(&one);
	}
	names_free(names, n);
	return r;
}

static int store_load_namespaces(struct store *s, struct mseg_inventory *out, struct mseg_err *err)
{
	char **names = NULL;
	size_t n = 0;
	int r = dir_list(s->ns_dir, &names, &n, err);

	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++) {
		struct mseg_namespace *ns = NULL;
		char path[PATH_MAX];
		char *doc = NULL;
		size_t len = 0;

		snprintf(path, sizeof(path), "%s/%s", s->ns_dir, names[i]);
		r = read_file(path, &doc, &len, POLICY_MAX_FILE_SIZE);
		if (r < 0) {
			r = err_set(err, path, 0, 0, -r, "cannot read: %s", strerror(-r));
			break;
		}
		r = namespace_parse_buffer(names[i], path, doc, len, &ns, err);
		free(doc);
		if (r < 0) {
			r = store_bad_file(s, STORE_NAMESPACES, names[i], path, r, err);
		} else {
			r = inventory_ns_put(out, ns);
			if (r < 0) {
				namespace_free(ns);
				err_setf(err, -r, "out of memory");
			}
		}
	}
	names_free(names, n);
	return r;
}

static int store_load_endpoints(struct store *s, struct mseg_inventory *out, struct mseg_err *err)
{
	char **names = NULL;
	size_t n = 0;
	int r = dir_list(s->ep_dir, &names, &n, err);

	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++) {
		struct mseg_endpoint *ep = NULL;
		char path[PATH_MAX];
		char *doc = NULL;
		size_t len = 0;

		snprintf(path, sizeof(path), "%s/%s", s->ep_dir, names[i]);
		r = read_file(path, &doc, &len, POLICY_MAX_FILE_SIZE);
		if (r < 0) {
			r = err_set(err, path, 0, 0, -r, "cannot read: %s", strerror(-r));
			break;
		}
		r = endpoint_parse_buffer(names[i], path, doc, len, &ep, err);
		free(doc);
		if (r < 0)
			r = store_bad_file(s, STORE_ENDPOINTS, names[i], path, r, err);
		else {
			struct stat st;

			/* registered when it was stored */
			if (stat(path, &st) == 0)
				ep->registered_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ull +
						    (uint64_t)st.st_mtim.tv_nsec;
			r = inventory_put(out, ep);
			if (r < 0) {
				endpoint_free(ep);
				err_setf(err, -r, "out of memory");
			}
		}
	}
	names_free(names, n);
	return r;
}

int store_load(struct store *s, struct mseg_policy_set *pols, struct mseg_inventory *inv,
	       struct mseg_err *err)
{
	struct mseg_policy_set p;
	struct mseg_inventory e;
	int r;

	policy_set_init(&p);
	inventory_init(&e);
	r = store_load_policies(s, &p, err);
	if (r == 0)
		r = store_load_endpoints(s, &e, err);
	if (r == 0)
		r = store_load_namespaces(s, &e, err);
	if (r < 0)
		goto out_release;
	r = policy_set_take(pols, &p);
	if (r < 0)
		goto out_release;
	for (size_t i = 0; i < e.n; i++) {
		r = inventory_put(inv, e.eps[i]);
		if (r < 0)
			goto out_release;
		e.eps[i] = NULL;
	}
	e.n = 0;
	for (size_t i = 0; i < e.n_nss; i++) {
		r = inventory_ns_put(inv, e.nss[i]);
		if (r < 0)
			goto out_release;
		e.nss[i] = NULL;
	}
	e.n_nss = 0;
out_release:
	policy_set_release(&p);
	inventory_release(&e);
	return r;
}

int store_tombstones_each(struct store *s, int (*fn)(void *data, const char *id, uint64_t mtime_ns),
			  void *data, struct mseg_err *err)
{
	char dir[PATH_MAX], path[PATH_MAX + NAME_MAX + 2];
	char **names = NULL;
	size_t n = 0;
	struct stat st;
	int r;

	if (snprintf(dir, sizeof(dir), "%s/" STORE_TOMBSTONES, s->dir) >= (int)sizeof(dir))
		return err_setf(err, ENAMETOOLONG, "state dir path too long");
	if (lstat(dir, &st) < 0 && errno == ENOENT)
		return 0;
	r = dir_list(dir, &names, &n, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		r = fn(data, names[i], (uint64_t)st.st_mtim.tv_sec * 1000000000ull +
				       (uint64_t)st.st_mtim.tv_nsec);
		if (r == 0)
			r = unlink_durable(dir, names[i], err);
		if (r == -ENOENT)
			r = 0;
	}
	names_free(names, n);
	return r;
}
