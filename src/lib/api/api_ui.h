/* The flow map's files (src/lib/api/ui/), built into the binary by
 * scripts/embed_ui.sh (docs/ui.md). */
#ifndef MSEG_API_UI_H
#define MSEG_API_UI_H

#include <stddef.h>

struct api_ui_file {
	const char *name;              /* "app.js" */
	const char *ctype;
	const unsigned char *data;     /* NUL-terminated; len excludes it */
	size_t len;
};

extern const struct api_ui_file api_ui_files[];
extern const unsigned api_ui_n_files;

/* The file served at /ui/NAME ("" = index.html); NULL when none. */
const struct api_ui_file *api_ui_file_find(const char *name);

#endif
