/*
 * Fuzz target: VM definitions (vm_config_parse), the JSON lockstepd accepts from API clients
 * and lockstep-vm reads from files.  Any input must be accepted or refused with -EINVAL and a
 * message, never crash or leak.  An accepted definition is also validated, written back with
 * vm_config_to_json and parsed again, and parsed a second time over itself; a definition that
 * validates must survive the round trip unchanged, and re-parsing must be idempotent.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/vm/vmtest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dump(const struct vm_config *cfg)
{
	char *s = vmtest_config_dump(cfg);

	if (!s)
		abort();
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm_config cfg, again;
	char err[256] = "", *first, *second;
	int ret;

	vm_config_init(&cfg);
	ret = vm_config_parse(&cfg, (const char *)data, size, err, sizeof(err));
	if (ret) {
		/* Refusals are -EINVAL and always say why. */
		if (ret != -EINVAL || !err[0])
			abort();
		vm_config_fini(&cfg);
		return 0;
	}
	first = dump(&cfg);

	/* The same document over the result changes nothing. */
	if (vm_config_parse(&cfg, (const char *)data, size, err, sizeof(err)))
		abort();
	second = dump(&cfg);
	if (strcmp(first, second) != 0)
		abort();
	free(second);

	if (vm_config_validate(&cfg, err, sizeof(err)) == 0) {
		vm_config_init(&again);
		if (vm_config_parse(&again, first, strlen(first), err, sizeof(err)))
			abort(); /* a valid definition's JSON must parse */
		second = dump(&again);
		if (strcmp(first, second) != 0)
			abort();
		if (vm_config_validate(&again, err, sizeof(err)))
			abort();
		free(second);
		vm_config_fini(&again);
	}
	free(first);
	vm_config_fini(&cfg);
	return 0;
}
