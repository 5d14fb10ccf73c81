/*
 * Shared between api/domxml.c, api/domxml_out.c and api/domxml_meta.c: lockstep's own settings
 * in a domain's <metadata>, under DOMXML_NAMESPACE.
 */
#ifndef LOCKSTEP_API_DOMXML_INTERNAL_H
#define LOCKSTEP_API_DOMXML_INTERNAL_H

#include <libxml/tree.h>

#include "api/virt.h"

/* Settings of passthrough devices kept in <metadata> (libvirt's <hostdev> has no place for
 * them), applied to the <hostdev> of the same address once the whole document is read. */
struct domxml_hostdev_meta {
	unsigned n;
	struct {
		char host[16];
		enum vmdef_reset reset;
	} dev[VMDEF_DEVICES_MAX];
};

/* Reads <lockstep:vm> from a <metadata> element; elements of other namespaces are left alone.
 * -EINVAL with `err` filled for anything in lockstep's namespace that it does not know. */
int domxml_parse_metadata(const xmlNode *metadata, struct vmdef *cfg,
			  struct domxml_hostdev_meta *hostdevs, char *err, size_t err_len);
/* Appends <lockstep:vm> with every lockstep-specific setting to `metadata`; -ENOMEM. */
int domxml_format_metadata(xmlNode *metadata, const struct vmdef *cfg);

#endif /* LOCKSTEP_API_DOMXML_INTERNAL_H */
