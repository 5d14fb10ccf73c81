/*
 * Fuzz target: libvirt domain XML -> struct vmdef (api/domxml.c), the parser behind
 * `virsh define` and `virsh create`.  The input is the document.
 *
 * Whatever it is, the parser must not crash, leak or change the config it was given unless it
 * accepts the whole document.  An accepted document must give a definition that
 * vmdef_validate accepts, whose XML (inactive and live forms) parses again to a
 * definition that formats to the very same XML: dumpxml output is always definable.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/virt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip(const struct vmdef *cfg, const struct domxml_live *live)
{
	struct vmdef again;
	char err[512], *xml, *xml2;

	xml = domxml_format(cfg, live);
	if (!xml)
		abort();
	vmdef_init(&again);
	if (domxml_parse(xml, strlen(xml), NULL, &again, err, sizeof(err)) != 0)
		abort(); /* our own output must parse */
	xml2 = domxml_format(&again, live);
	if (!xml2 || strcmp(xml, xml2) != 0)
		abort(); /* and format back to itself */
	free(xml);
	free(xml2);
	vmdef_fini(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct domxml_live live = { .id = 7, .console = "/run/x.console", .emulator = "/bin/vm" };
	struct vmdef cfg;
	char err[512];

	vmdef_init(&cfg);
	cfg.vcpus = 3; /* a marker: a refused document must leave it alone */
	if (domxml_parse((const char *)data, size, NULL, &cfg, err, sizeof(err)) != 0) {
		if (cfg.vcpus != 3 || cfg.name[0] || !err[0])
			abort();
		vmdef_fini(&cfg);
		return 0;
	}
	if (vmdef_validate(&cfg, err, sizeof(err)) != 0)
		abort();
	round_trip(&cfg, NULL);
	round_trip(&cfg, &live);
	vmdef_fini(&cfg);
	return 0;
}
