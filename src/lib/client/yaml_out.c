/* JSON -> YAML through libyaml's emitter (include/mseg/client/yaml_out.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "mseg/client/yaml_out.h"

/* The YAML 1.1 words for bools and nulls (yaml.org/type/bool.html,
 * null.html), compared ignoring case: "TRUE", "True", "true", ... */
static const char *const special_words[] = {
	"y", "n", "yes", "no", "true", "false", "on", "off", "null", "~",
	".inf", "-.inf", "+.inf", ".nan", "<<", "=",
};

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

bool yaml_out_needs_quotes(const char *s)
{
	const char *p = s;

	if (!s[0])
		return true;                  /* plain empty reads as null */
	for (size_t i = 0; i < sizeof(special_words) / sizeof(special_words[0]); i++)
		if (strcasecmp(s, special_words[i]) == 0)
			return true;
	/* dates and times: 2001-12-14, 2001-12-14t21:59:43.10-05:00 */
	if (is_digit(s[0]) && is_digit(s[1]) && is_digit(s[2]) && is_digit(s[3]) && s[4] == '-')
		return true;
	/* numbers in every base and form YAML 1.1 or 1.2 knows (123, -1.5,
	 * 1e3, 0x1F, 0o17, 0b101, 1_000, 1:30, .5): anything that starts with
	 * a digit or '.' after an optional sign and holds nothing beyond those
	 * characters; an address like 10.0.0.1 is quoted too, which costs
	 * nothing */
	if (*p == '-' || *p == '+')
		p++;
	if (!is_digit(*p) && !(*p == '.' && is_digit(p[1])))
		return false;
	return strspn(p, "0123456789abcdefABCDEFxXoO_.:+-") == strlen(p);
}

/* Emit one string scalar (a key or a value). */
static int emit_string(yaml_emitter_t *e, const char *s)
{
	yaml_event_t ev;
	bool quote = yaml_out_needs_quotes(s);
	yaml_scalar_style_t style = strchr(s, '\n') ? YAML_LITERAL_SCALAR_STYLE :
				    YAML_ANY_SCALAR_STYLE;

	/* plain_implicit = 0: the emitter may not write it plain (without a
	 * tag), so it quotes; quoted_implicit = 1: no "!!str" tag needed */
	if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s),
					  !quote, 1, style))
		return -ENOMEM;
	return yaml_emitter_emit(e, &ev) ? 0 : -EIO;
}

/* Emit a JSON number, bool or null as a plain scalar. */
static int emit_plain(yaml_emitter_t *e, const json_t *j)
{
	yaml_event_t ev;
	char *text = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
	int ok;

	if (!text)
		return -ENOMEM;
	ok = yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)text,
					  (int)strlen(text), 1, 0, YAML_PLAIN_SCALAR_STYLE);
	free(text);
	if (!ok)
		return -ENOMEM;
	return yaml_emitter_emit(e, &ev) ? 0 : -EIO;
}

static int emit_node(yaml_emitter_t *e, const json_t *j)
{
	yaml_event_t ev;
	int r;

	if (json_is_object(j)) {
		const char *k;
		json_t *v;

		if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
							 json_object_size(j) ? YAML_BLOCK_MAPPING_STYLE :
									      YAML_FLOW_MAPPING_STYLE))
			return -ENOMEM;
		if (!yaml_emitter_emit(e, &ev))
			return -EIO;
		json_object_foreach((json_t *)j, k, v) {
			r = emit_string(e, k);
			if (r == 0)
				r = emit_node(e, v);
			if (r < 0)
				return r;
		}
		if (!yaml_mapping_end_event_initialize(&ev))
			return -ENOMEM;
		return yaml_emitter_emit(e, &ev) ? 0 : -EIO;
	}
	if (json_is_array(j)) {
		size_t i;
		json_t *v;

		if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
							  json_array_size(j) ? YAML_BLOCK_SEQUENCE_STYLE :
									       YAML_FLOW_SEQUENCE_STYLE))
			return -ENOMEM;
		if (!yaml_emitter_emit(e, &ev))
			return -EIO;
		json_array_foreach(j, i, v) {
			r = emit_node(e, v);
			if (r < 0)
				return r;
		}
		if (!yaml_sequence_end_event_initialize(&ev))
			return -ENOMEM;
		return yaml_emitter_emit(e, &ev) ? 0 : -EIO;
	}
	if (json_is_string(j))
		return emit_string(e, json_string_value(j));
	return emit_plain(e, j);
}

int yaml_out_print(FILE *f, const json_t *j)
{
	yaml_emitter_t e;
	yaml_event_t ev;
	int r = -EIO;

	if (!yaml_emitter_initialize(&e))
		return -ENOMEM;
	yaml_emitter_set_output_file(&e, f);
	yaml_emitter_set_unicode(&e, 1);
	yaml_emitter_set_width(&e, -1);        /* never fold long lines */
	if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) ||
	    !yaml_emitter_emit(&e, &ev))
		goto out_delete;
	if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) ||
	    !yaml_emitter_emit(&e, &ev))
		goto out_delete;
	r = emit_node(&e, j);
	if (r < 0)
		goto out_delete;
	r = -EIO;
	if (!yaml_document_end_event_initialize(&ev, 1) || !yaml_emitter_emit(&e, &ev))
		goto out_delete;
	if (!yaml_stream_end_event_initialize(&ev) || !yaml_emitter_emit(&e, &ev))
		goto out_delete;
	if (!yaml_emitter_flush(&e))
		goto out_delete;
	r = 0;
out_delete:
	yaml_emitter_delete(&e);
	return r;
}
