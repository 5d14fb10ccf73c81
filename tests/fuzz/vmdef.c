/*
 * Fuzz target: VM definitions (vmdef_parse), the JSON lockstepd accepts from API clients
 * and lockstep-vm reads from files.  Any input must be accepted or refused with -EINVAL and a
 * message, never crash or leak.  An accepted definition is also validated, written back with
 * vmdef_to_json and parsed again, and parsed a second time over itself; a definition that
 * validates must survive the round trip unchanged, and re-parsing must be idempotent.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/vmdef/vmdeftest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dump(const struct vmdef *cfg)
{
	char *s = vmdeftest_dump(cfg);

	if (!s)
		abort();
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmdef cfg, again;
	char err[256] = "", *first, *second;
	int ret;

	vmdef_init(&cfg);
	ret = vmdef_parse(&cfg, (const char *)data, size, err, sizeof(err));
	if (ret) {
		/* Refusals are -EINVAL and always say why. */
		if (ret != -EINVAL || !err[0])
			abort();
		vmdef_fini(&cfg);
		return 0;
	}
	first = dump(&cfg);

	/* The same document over the result changes nothing. */
	if (vmdef_parse(&cfg, (const char *)data, size, err, sizeof(err)))
		abort();
	second = dump(&cfg);
	if (strcmp(first, second) != 0)
		abort();
	free(second);

	if (vmdef_validate(&cfg, err, sizeof(err)) == 0) {
		vmdef_init(&again);
		if (vmdef_parse(&again, first, strlen(first), err, sizeof(err)))
			abort(); /* a valid definition's JSON must parse */
		second = dump(&again);
		if (strcmp(first, second) != 0)
			abort();
		if (vmdef_validate(&again, err, sizeof(err)))
			abort();
		free(second);
		vmdef_fini(&again);
	}
	free(first);
	vmdef_fini(&cfg);
	return 0;
}
