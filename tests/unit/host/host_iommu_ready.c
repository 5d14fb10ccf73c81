/*
 * Runs the passthrough path's first check, host_iommu_ready(), on this host for a PCI
 * device (or none): prints "ready" or the refusal in the host check's words, and exits 0 or
 * 1.  The bed tests run it inside L1 against emulated IOMMUs.
 */
#include <stdio.h>
#include <string.h>

#include "host/host.h"

int main(int argc, char **argv)
{
	char why[512] = "";
	int ret;

	if (argc > 2 || (argc == 2 && strcmp(argv[1], "--help") == 0)) {
		fputs("usage: host_iommu_ready [BDF]\n", stderr);
		return 2;
	}
	ret = host_iommu_ready("", argc == 2 ? argv[1] : NULL, why, sizeof(why));
	if (ret) {
		printf("refused (%s): %s\n", strerror(-ret), why);
		return 1;
	}
	puts("ready");
	return 0;
}
