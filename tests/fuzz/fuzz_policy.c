/* libFuzzer target for the document parsers: policies (YAML and JSON),
 * inventories and endpoint bodies.
 * Built and run by `make fuzz` (tests/fuzz/run.sh).
 *
 * Crashing inputs become regression files in tests/bad/ (with a .err). */
#include <stddef.h>
#include <stdint.h>

#include "mseg/model/inventory.h"
#include "mseg/model/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mseg_policy_set set;
	struct mseg_inventory inv;
	struct mseg_endpoint *ep = NULL;
	struct mseg_err err;
	char buf[1024];

	policy_set_init(&set);
	if (policy_parse_buffer(&set, "fuzz", (const char *)data, size, &err) < 0)
		err_format(&err, buf, sizeof(buf));
	policy_set_release(&set);

	inventory_init(&inv);
	if (inventory_parse_buffer(&inv, "fuzz", (const char *)data, size, &err) < 0)
		err_format(&err, buf, sizeof(buf));
	inventory_release(&inv);

	if (endpoint_parse_buffer("fuzz-1", "fuzz", (const char *)data, size, &ep, &err) == 0)
		ep = endpoint_free(ep);
	return 0;
}
