/* libFuzzer target for mseg-cni's input parsers: the network config on
 * stdin (for ADD, CHECK and DEL), CNI_ARGS, prevResult's addresses and
 * version conversion, and msegd's GET /v1/rules answer.
 * Built and run by `make fuzz` (tests/fuzz/run.sh).
 *
 * A crashing input becomes a case in tests/unit/test_cni.c. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/cni/cni.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum cni_cmd cmds[] = { CNI_CMD_ADD, CNI_CMD_CHECK, CNI_CMD_DEL };
	const char *buf = (const char *)data;
	struct cni_env env;
	struct cni_error err;
	char *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		struct cni_config c;

		memset(&c, 0, sizeof(c));
		memset(&err, 0, sizeof(err));
		if (cni_config_parse(&c, buf, size, cmds[i], &err) == 0) {
			json_t *ips = NULL;

			if (c.prev_result) {
				json_t *conv = cni_result_convert(c.prev_result, "0.4.0");

				json_decref(conv);
				conv = cni_result_convert(c.prev_result, "1.0.0");
				json_decref(conv);
				if (cni_result_ips(c.prev_result, &ips, &err) == 0)
					json_decref(ips);
			}
		} else {
			free(cni_error_json(&err, NULL));
		}
		cni_config_release(&c);
	}
	free(cni_config_sniff_version(buf, size));

	memset(&env, 0, sizeof(env));
	memset(&err, 0, sizeof(err));
	cni_args_parse(&env, s, &err);
	cni_rules_is_programmed(buf, size);
	free(s);
	return 0;
}
