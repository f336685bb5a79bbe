/* mseg-cni: the chained CNI plugin. Reads the network config on stdin and
 * the CNI_* environment, lets libmseg do the work (src/lib/cni/), prints
 * the result or the CNI error object on stdout; warnings go to stderr.
 *
 *   mseg-cni [--token-dir DIR] [--tombstone-dir DIR]
 *
 * A runtime runs plugins without arguments; --token-dir (another directory
 * token files may come from, besides /etc/mseg) and --tombstone-dir (where a
 * DEL that finds msegd down leaves a tombstone; default
 * /var/lib/mseg/tombstones, msegd's default state dir) are for a wrapper
 * script an administrator installs, and for tests. The network config
 * cannot set them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "mseg/cni/cni.h"

extern char **environ;

/* All of stdin, up to one byte over the limit (the parser reports that). */
static char *read_all(FILE *f, size_t *ret_len)
{
	size_t cap = 8192, len = 0;
	char *buf = malloc(cap), *p;

	if (!buf)
		return NULL;
	for (;;) {
		size_t n = fread(buf + len, 1, cap - len, f);

		len += n;
		if (n == 0 || len > CNI_MAX_CONFIG_SIZE)
			break;
		if (len == cap) {
			cap *= 2;
			p = realloc(buf, cap);
			if (!p) {
				free(buf);
				return NULL;
			}
			buf = p;
		}
	}
	*ret_len = len;
	return buf;
}

int main(int argc, char **argv)
{
	struct cni_opts opts = { 0 };
	struct cni_outcome out;
	size_t len = 0;
	char *in, *json;
	int r;

	if (argc > 1 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-v") == 0)) {
		printf("mseg-cni: CNI versions 0.4.0, 1.0.0\n");
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--token-dir") == 0 && i + 1 < argc) {
			opts.token_dir = argv[++i];
		} else if (strncmp(argv[i], "--token-dir=", 12) == 0) {
			opts.token_dir = argv[i] + 12;
		} else if (strcmp(argv[i], "--tombstone-dir") == 0 && i + 1 < argc) {
			opts.tombstone_dir = argv[++i];
		} else if (strncmp(argv[i], "--tombstone-dir=", 16) == 0) {
			opts.tombstone_dir = argv[i] + 16;
		} else {
			fprintf(stderr, "usage: mseg-cni [--token-dir DIR] [--tombstone-dir DIR] (CNI_* "
				"environment, network config on stdin)\n");
			return 2;
		}
		if (opts.token_dir && opts.token_dir[0] != '/') {
			fprintf(stderr, "mseg-cni: --token-dir '%s' is not an absolute path\n",
				opts.token_dir);
			return 2;
		}
		if (opts.tombstone_dir && opts.tombstone_dir[0] != '/') {
			fprintf(stderr, "mseg-cni: --tombstone-dir '%s' is not an absolute path\n",
				opts.tombstone_dir);
			return 2;
		}
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "mseg-cni: cannot initialise libcurl\n");
		return 1;
	}
	in = read_all(stdin, &len);
	if (!in) {
		memset(&out, 0, sizeof(out));
		cni_error_set(&out.err, 12, CNI_ERR_IO, NULL, "cannot read stdin: out of memory");
		r = -1;
	} else {
		r = cni_run(environ, in, len, &opts, &out);
	}
	if (out.warning[0])
		fprintf(stderr, "mseg-cni: warning: %s\n", out.warning);
	if (r < 0) {
		json = cni_error_json(&out.err, out.cni_version);
		printf("%s\n", json ? json : "{\"code\": 999, \"msg\": \"out of memory\"}");
		fprintf(stderr, "mseg-cni: %s%s%s\n", out.err.msg, out.err.details[0] ? ": " : "",
			out.err.details);
		free(json);
	} else if (out.stdout_json) {
		printf("%s\n", out.stdout_json);
	}
	cni_outcome_release(&out);
	free(in);
	curl_global_cleanup();
	return r < 0 ? 1 : 0;
}
