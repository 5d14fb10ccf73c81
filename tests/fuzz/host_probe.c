/*
 * Fuzz target: what lockstepd reads from another process for the host check, the JSON of
 * `lockstep-vm --host-probe` (host_kvm_from_json), and recorded CPUID tables
 * (host_cpuid_parse), fed the same bytes.  Any input is accepted or refused with -EINVAL (or
 * -E2BIG for too many leaves) and a message, never a crash; an accepted probe answer written
 * back with host_kvm_to_json reads back identical.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct host_kvm k, back;
	static struct host_cpuid c;
	char err[256] = "", *text;
	json_t *j, *again;
	int ret;

	j = json_loadb((const char *)data, size, 0, NULL);
	if (j) {
		ret = host_kvm_from_json(j, &k, err, sizeof(err));
		json_decref(j);
		if (ret && (ret != -EINVAL || !err[0]))
			abort();
		if (!ret) {
			again = host_kvm_to_json(&k);
			if (!again || host_kvm_from_json(again, &back, err, sizeof(err)) ||
			    memcmp(&k, &back, sizeof(k)) != 0)
				abort();
			json_decref(again);
		}
	}
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	err[0] = '\0';
	ret = host_cpuid_parse(text, &c, err, sizeof(err));
	if (ret && ((ret != -EINVAL && ret != -E2BIG) || !err[0]))
		abort();
	free(text);
	return 0;
}
