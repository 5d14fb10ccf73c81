/*
 * Fuzz target: libvirt domain XML -> struct vm_config (api/domxml.c), the parser behind
 * `virsh define` and `virsh create`.  The input is the document.
 *
 * Whatever it is, the parser must not crash, leak or change the config it was given unless it
 * accepts the whole document.  An accepted document must give a definition that
 * vm_config_validate accepts, whose XML (inactive and live forms) parses again to a
 * definition that formats to the very same XML: dumpxml output is always definable.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/virt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip(const struct vm_config *cfg, const struct domxml_live *live)
{
	struct vm_config again;
	char err[512], *xml, *xml2;

	xml = domxml_format(cfg, live);
	if (!xml)
		abort();
	vm_config_init(&again);
	if (domxml_parse(xml, strlen(xml), NULL, &again, err, sizeof(err)) != 0)
		abort(); /* our own output must parse */
	xml2 = domxml_format(&again, live);
	if (!xml2 || strcmp(xml, xml2) != 0)
		abort(); /* and format back to itself */
	free(xml);
	free(xml2);
	vm_config_fini(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct domxml_live live = { .id = 7, .console = "/run/x.console", .emulator = "/bin/vm" };
	struct vm_config cfg;
	char err[512];

	vm_config_init(&cfg);
	cfg.vcpus = 3; /* a marker: a refused document must leave it alone */
	if (domxml_parse((const char *)data, size, NULL, &cfg, err, sizeof(err)) != 0) {
		if (cfg.vcpus != 3 || cfg.name[0] || !err[0])
			abort();
		vm_config_fini(&cfg);
		return 0;
	}
	if (vm_config_validate(&cfg, err, sizeof(err)) != 0)
		abort();
	round_trip(&cfg, NULL);
	round_trip(&cfg, &live);
	vm_config_fini(&cfg);
	return 0;
}
