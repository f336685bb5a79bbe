/* `-o yaml` (client/yaml_out.c): what libyaml's parser reads back from the
 * output is the JSON that went in; strings a YAML 1.1 reader would take for
 * bools, nulls or numbers are quoted, the JSON's own numbers and bools are
 * not. */
#include <stdlib.h>
#include <strings.h>

#include <jansson.h>
#include <yaml.h>

#include "mseg/client/yaml_out.h"
#include "t.h"

static char *emit(const json_t *j)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	T_CHECK(m != NULL, "open_memstream");
	if (!m)
		return NULL;
	T_CHECK(yaml_out_print(m, j) == 0, "yaml_out_print");
	fclose(m);
	return buf;
}

/* How a YAML 1.1 reader types a plain scalar (the subset that matters
 * here: bools, nulls, decimal, hex and exponent numbers). */
static json_t *resolve_plain(const char *s)
{
	static const char *const t[] = { "y", "yes", "true", "on" };
	static const char *const f[] = { "n", "no", "false", "off" };
	char *end;
	double d;

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, t[i]) == 0)
			return json_true();
		if (strcasecmp(s, f[i]) == 0)
			return json_false();
	}
	if (!s[0] || strcmp(s, "~") == 0 || strcasecmp(s, "null") == 0)
		return json_null();
	d = strtod(s, &end);
	if (!*end) {
		long long ll = strtoll(s, &end, 0);

		return *end ? json_real(d) : json_integer(ll);
	}
	return json_string(s);
}

/* Read one document back into JSON: quoted scalars are strings, plain
 * ones are typed as above. */
static json_t *parse_node(yaml_parser_t *p, yaml_event_t *ev);

static json_t *parse_back(const char *text)
{
	yaml_parser_t p;
	yaml_event_t ev;
	json_t *root = NULL;

	yaml_parser_initialize(&p);
	yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
	while (yaml_parser_parse(&p, &ev)) {
		yaml_event_type_t type = ev.type;

		if (type == YAML_SCALAR_EVENT || type == YAML_MAPPING_START_EVENT ||
		    type == YAML_SEQUENCE_START_EVENT) {
			root = parse_node(&p, &ev);
			continue;
		}
		yaml_event_delete(&ev);
		if (type == YAML_STREAM_END_EVENT)
			break;
	}
	T_CHECK(p.error == YAML_NO_ERROR, "the output parses: %s", p.problem ? p.problem : "");
	yaml_parser_delete(&p);
	return root;
}

static json_t *parse_node(yaml_parser_t *p, yaml_event_t *ev)
{
	json_t *j = NULL;

	if (ev->type == YAML_SCALAR_EVENT) {
		const char *v = (const char *)ev->data.scalar.value;

		j = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? resolve_plain(v) :
									json_string(v);
	} else if (ev->type == YAML_SEQUENCE_START_EVENT) {
		yaml_event_t e;

		j = json_array();
		while (yaml_parser_parse(p, &e) && e.type != YAML_SEQUENCE_END_EVENT)
			json_array_append_new(j, parse_node(p, &e));
		yaml_event_delete(&e);
	} else if (ev->type == YAML_MAPPING_START_EVENT) {
		yaml_event_t k, v;

		j = json_object();
		while (yaml_parser_parse(p, &k) && k.type == YAML_SCALAR_EVENT) {
			char *key = strdup((const char *)k.data.scalar.value);
			json_t *typed = resolve_plain((const char *)k.data.scalar.value);

			T_CHECK(k.data.scalar.style != YAML_PLAIN_SCALAR_STYLE || json_is_string(typed),
				"key '%s' plain but not a string", (const char *)k.data.scalar.value);
			json_decref(typed);
			yaml_event_delete(&k);
			if (!yaml_parser_parse(p, &v)) {
				free(key);
				break;
			}
			json_object_set_new(j, key, parse_node(p, &v));
			free(key);
		}
		yaml_event_delete(&k);
	}
	yaml_event_delete(ev);
	return j;
}

static void test_round_trip(void)
{
	json_t *in = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s,"
			       " s:i, s:f, s:b, s:b, s:n, s:[s, s, [s, i], {s:s}], s:{}, s:[],"
			       " s:s, s:s, s:s, s:s}",
			       "a", "True", "b", "On", "c", "off", "d", "123", "e", "",
			       "f", "yes", "g", "~", "h", "null", "i", "1e3", "j", "0x1F",
			       "k", "2026-12-06T04:28:43Z", "l", "10.0.0.1",
			       "n_int", 42, "n_real", 1.5, "t", 1, "fls", 0, "nul",
			       "list", "web", "N", "Y", 7, "x", "NO",
			       "empty_obj", "empty_arr",
			       "multi", "line one\nline two\n", "colon", "a: b", "hash", "x #y",
			       "on", "key that is a bool word");
	char *text;
	json_t *out;

	T_CHECK(in != NULL, "json_pack");
	if (!in)
		return;
	text = emit(in);
	out = text ? parse_back(text) : NULL;
	T_CHECK(out && json_equal(in, out), "not the same after the round trip:\n%s",
		text ? text : "");
	/* numbers and bools of the JSON are plain */
	T_CHECK(text && strstr(text, "\nn_int: 42\n") && strstr(text, "\nt: true\n") &&
			strstr(text, "\nnul: null\n"),
		"plain numbers and bools:\n%s", text ? text : "");
	/* plain strings stay plain */
	T_CHECK(text && strstr(text, "- web\n"), "a plain string:\n%s", text ? text : "");
	json_decref(out);
	json_decref(in);
	free(text);
}

static void test_needs_quotes(void)
{
	static const char *const quoted[] = {
		"True", "TRUE", "On", "ON", "off", "yes", "No", "y", "N", "~", "null", "Null",
		"", "1e3", "0x1F", "123", "-1", "+1.5", ".5", "1_000", "1:30", "0o17", "0b101",
		".inf", "-.Inf", ".NaN", "2026-12-06", "2026-12-06T04:28:43Z", "<<", "=",
	};
	static const char *const plain[] = {
		"web", "shop/db", "tcp/5432", "10.0.0.0/8", "enforce", "onion", "nothing", "x1",
		"fd00::1", "Yesterday",
	};

	for (size_t i = 0; i < sizeof(quoted) / sizeof(quoted[0]); i++)
		T_CHECK(yaml_out_needs_quotes(quoted[i]), "'%s' not quoted", quoted[i]);
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		T_CHECK(!yaml_out_needs_quotes(plain[i]), "'%s' quoted", plain[i]);
}

int main(void)
{
	T_RUN(test_needs_quotes);
	T_RUN(test_round_trip);
	return t_exit();
}
