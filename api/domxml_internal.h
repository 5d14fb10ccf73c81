/*
 * Shared between api/domxml.c, api/domxml_out.c and api/domxml_meta.c: lockstep's own settings
 * in a domain's <metadata>, under DOMXML_NAMESPACE.
 */
#ifndef LOCKSTEP_API_DOMXML_INTERNAL_H
#define LOCKSTEP_API_DOMXML_INTERNAL_H

#include <libxml/tree.h>

#include "api/virt.h"

/* Reads <lockstep:vm> from a <metadata> element; elements of other namespaces are left alone.
 * -EINVAL with `err` filled for anything in lockstep's namespace that it does not know. */
int domxml_parse_metadata(const xmlNode *metadata, struct vmdef *cfg, char *err, size_t err_len);
/* Appends <lockstep:vm> with every lockstep-specific setting to `metadata`; -ENOMEM. */
int domxml_format_metadata(xmlNode *metadata, const struct vmdef *cfg);

#endif /* LOCKSTEP_API_DOMXML_INTERNAL_H */
