/* Policy stages: the mode set through the API over a document's, and the
 * end of each learning stage, kept in the state dir's `stages` file (one
 * line per policy: "NS/NAME MODE LEARN_FOR_S UNTIL_S", MODE one of spec,
 * enforce, audit, learn), written atomically like the store's documents. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/daemon/desired.h"
#include "mseg/daemon/store.h"
#include "mseg/model/policy.h"
#include "mseg/model/selector.h"
#include "util/vec.h"

#define STAGES_FILE "stages"
#define STAGE_KEY_MAX 160

static const char *const stage_names[] = { "enforce", "audit", "learn" };

static const char *stage_name(enum stage_mode m)
{
	return m == STAGE_SPEC ? "spec" : stage_names[m];
}

static void stage_key(char *buf, size_t size, const char *ns, const char *name)
{
	snprintf(buf, size, "%s/%s", ns, name);
}

/* Index of @key, or where it would go (*ret_found false). */
static size_t stage_index(const struct desired *ds, const char *key, bool *ret_found)
{
	return VEC_STR_INDEX(ds->stages, ds->n_stages, key, key, ret_found);
}

const struct stage_entry *desired_stage_find(const struct desired *ds, const char *ns,
					     const char *name)
{
	char key[STAGE_KEY_MAX];
	bool found;
	size_t i;

	stage_key(key, sizeof(key), ns, name);
	i = stage_index(ds, key, &found);
	return found ? &ds->stages[i] : NULL;
}

bool desired_policy_learning(const struct mseg_policy *p, uint64_t now_s)
{
	return p->learn && (p->learn_until_s == 0 || now_s < p->learn_until_s);
}

unsigned desired_ep_learning_dirs(const struct desired_view *v, const struct mseg_endpoint *ep,
				  uint64_t now_s, uint64_t *ret_until_s)
{
	uint64_t until = 0;
	unsigned dirs = 0;

	for (size_t i = 0; i < v->pols.n; i++) {
		const struct mseg_policy *p = v->pols.items[i];
		unsigned d = 0;

		if (p->mode != MSEG_MODE_ENFORCE || !desired_policy_learning(p, now_s) ||
		    !selector_policy_covers(p, ep))
			continue;
		if (p->isolation & MSEG_ISO_INGRESS)
			d |= 1u << MSEG_DIR_INGRESS;
		if (p->isolation & MSEG_ISO_EGRESS)
			d |= 1u << MSEG_DIR_EGRESS;
		if (!d)
			continue;
		dirs |= d;
		if (p->learn_until_s > until)
			until = p->learn_until_s;
	}
	if (ret_until_s)
		*ret_until_s = until;
	return dirs;
}

bool desired_any_learning(const struct desired *ds, uint64_t now_s)
{
	for (size_t i = 0; i < ds->n_stages; i++) {
		const struct stage_entry *e = &ds->stages[i];

		if ((e->mode == STAGE_LEARN || e->mode == STAGE_SPEC) &&
		    (e->until_s == 0 || now_s < e->until_s))
			return true;
	}
	return false;
}

/* The stages as the file holds them (malloc'd text). */
static char *stages_text(const struct stage_entry *v, size_t n, size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s %s %" PRIu32 " %" PRIu64 "\n", v[i].key, stage_name(v[i].mode),
			v[i].learn_for_s, v[i].until_s);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	*ret_len = len;
	return buf;
}

static int stages_write(const struct desired *ds, const struct stage_entry *v, size_t n,
			struct mseg_err *err)
{
	const char *dir = desired_state_dir(ds);
	size_t len = 0;
	char *text;
	int r;

	if (!dir)
		return 0;   /* no state dir (offline, tests): memory only */
	text = stages_text(v, n, &len);
	if (!text)
		return err_setf(err, ENOMEM, "out of memory");
	r = store_write_atomic(dir, STAGES_FILE, text, len, err);
	free(text);
	return r;
}

int desired_stages_load(struct desired *ds, struct mseg_err *err)
{
	const char *dir = desired_state_dir(ds);
	char path[4096], line[512];
	unsigned lineno = 0;
	FILE *f;
	int r = 0;

	if (!dir)
		return 0;
	snprintf(path, sizeof(path), "%s/%s", dir, STAGES_FILE);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : err_setf(err, errno, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		char key[STAGE_KEY_MAX], mode[16];
		uint32_t learn_for;
		uint64_t until;
		struct stage_entry *e;
		size_t i;
		bool found;
		int m = -2;

		lineno++;
		if (sscanf(line, "%159s %15s %" SCNu32 " %" SCNu64, key, mode, &learn_for, &until) != 4 ||
		    !strchr(key, '/')) {
			r = err_setf(err, EINVAL, "%s:%u: not 'NS/NAME MODE LEARN_FOR UNTIL'", path,
				     lineno);
			break;
		}
		if (strcmp(mode, "spec") == 0)
			m = STAGE_SPEC;
		for (int k = 0; k < 3; k++)
			if (strcmp(mode, stage_names[k]) == 0)
				m = k;
		if (m == -2) {
			r = err_setf(err, EINVAL, "%s:%u: unknown mode '%s'", path, lineno, mode);
			break;
		}
		i = stage_index(ds, key, &found);
		if (found)
			continue;
		if (VEC_RESERVE(ds->stages, ds->cap_stages, ds->n_stages + 1) < 0) {
			r = err_setf(err, ENOMEM, "out of memory");
			break;
		}
		memmove(&ds->stages[i + 1], &ds->stages[i], (ds->n_stages - i) * sizeof(*ds->stages));
		e = &ds->stages[i];
		e->key = strdup(key);
		if (!e->key) {
			memmove(&ds->stages[i], &ds->stages[i + 1],
				(ds->n_stages - i) * sizeof(*ds->stages));
			r = err_setf(err, ENOMEM, "out of memory");
			break;
		}
		ds->n_stages++;
		e->mode = (enum stage_mode)m;
		e->learn_for_s = learn_for;
		e->until_s = until;
	}
	fclose(f);
	return r;
}

/* A copy of the table with @key set to @e (@e NULL: removed): what a
 * change would write, so that a failed write changes nothing. */
static int stages_with(const struct desired *ds, const char *key, const struct stage_entry *e,
		       struct stage_entry **ret, size_t *ret_n)
{
	struct stage_entry *v = malloc((ds->n_stages + 1) * sizeof(*v));
	bool found;
	size_t i = stage_index(ds, key, &found), n = 0;

	if (!v)
		return -ENOMEM;
	for (size_t k = 0; k < i; k++)
		v[n++] = ds->stages[k];
	if (e)
		v[n++] = *e;
	for (size_t k = i + found; k < ds->n_stages; k++)
		v[n++] = ds->stages[k];
	*ret = v;
	*ret_n = n;
	return 0;
}

/* Make @v (from stages_with(), @e's key now owned by it) the table. */
static void stages_take(struct desired *ds, const char *key, struct stage_entry *v, size_t n,
			size_t cap)
{
	bool found;
	size_t i = stage_index(ds, key, &found);

	if (found)
		free(ds->stages[i].key);
	free(ds->stages);
	ds->stages = v;
	ds->n_stages = n;
	ds->cap_stages = cap;
}

static const struct mseg_policy *policy_any_source(const struct desired *ds, const char *ns,
						   const char *name)
{
	for (int s = 0; s < DESIRED_N_SOURCES; s++) {
		const struct mseg_policy *p = desired_policy_find(ds, (enum desired_source)s, ns, name);

		if (p)
			return p;
	}
	return NULL;
}

int desired_stage_set(struct desired *ds, const char *ns, const char *name,
		      enum stage_mode mode, uint32_t learn_for_s, uint64_t now_s,
		      struct mseg_err *err)
{
	const struct mseg_policy *p = policy_any_source(ds, ns, name);
	struct stage_entry e = { 0 }, *v;
	char key[STAGE_KEY_MAX];
	size_t n;
	int r;

	if (!p)
		return err_setf(err, ENOENT, "no policy '%s/%s'", ns, name);
	stage_key(key, sizeof(key), ns, name);
	e.mode = mode;
	if (mode == STAGE_LEARN) {
		e.learn_for_s = learn_for_s ? learn_for_s : p->learn_for_s;
		e.until_s = now_s + e.learn_for_s;
	} else if (mode == STAGE_SPEC && p->learn) {
		e.until_s = now_s + p->learn_for_s;   /* the document's learning starts again */
	}
	if (mode == STAGE_SPEC && !p->learn) {
		r = stages_with(ds, key, NULL, &v, &n);
	} else {
		e.key = strdup(key);
		if (!e.key)
			return err_setf(err, ENOMEM, "out of memory");
		r = stages_with(ds, key, &e, &v, &n);
	}
	if (r < 0) {
		free(e.key);
		return err_setf(err, -r, "out of memory");
	}
	r = stages_write(ds, v, n, err);
	if (r < 0) {
		free(e.key);
		free(v);
		return r;
	}
	stages_take(ds, key, v, n, ds->n_stages + 1);
	ds->generation++;
	return 0;
}

int desired_stages_sync(struct desired *ds, uint64_t now_s, struct mseg_err *err)
{
	bool changed = false;

	/* forget what no policy needs any more */
	for (size_t i = 0; i < ds->n_stages;) {
		struct stage_entry *e = &ds->stages[i];
		char ns[STAGE_KEY_MAX];
		char *slash;
		const struct mseg_policy *p;

		snprintf(ns, sizeof(ns), "%s", e->key);
		slash = strchr(ns, '/');
		if (slash)
			*slash = '\0';
		p = slash ? policy_any_source(ds, ns, slash + 1) : NULL;
		if (!p || (e->mode == STAGE_SPEC && !p->learn)) {
			free(e->key);
			memmove(e, e + 1, (ds->n_stages - i - 1) * sizeof(*e));
			ds->n_stages--;
			changed = true;
			continue;
		}
		i++;
	}
	/* start the learning stage of documents in mode learn */
	for (int s = 0; s < DESIRED_N_SOURCES; s++)
		for (size_t k = 0; k < ds->pols[s].n; k++) {
			const struct mseg_policy *p = ds->pols[s].items[k];
			char key[STAGE_KEY_MAX];
			struct stage_entry *e;
			bool found;
			size_t i;

			if (!p->learn)
				continue;
			stage_key(key, sizeof(key), p->ns, p->name);
			i = stage_index(ds, key, &found);
			if (found)
				continue;
			if (VEC_RESERVE(ds->stages, ds->cap_stages, ds->n_stages + 1) < 0)
				return err_setf(err, ENOMEM, "out of memory");
			memmove(&ds->stages[i + 1], &ds->stages[i],
				(ds->n_stages - i) * sizeof(*ds->stages));
			e = &ds->stages[i];
			memset(e, 0, sizeof(*e));
			e->key = strdup(key);
			if (!e->key) {
				memmove(&ds->stages[i], &ds->stages[i + 1],
					(ds->n_stages - i) * sizeof(*ds->stages));
				return err_setf(err, ENOMEM, "out of memory");
			}
			ds->n_stages++;
			e->mode = STAGE_SPEC;
			e->until_s = now_s + p->learn_for_s;
			changed = true;
		}
	return changed ? stages_write(ds, ds->stages, ds->n_stages, err) : 0;
}
