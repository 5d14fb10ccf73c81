/*
 * The interrupt section: whether redirectable interrupts are steered to vCPUs that run.
 */
#include <string.h>

#include "vmdef/vmdef_internal.h"

int vmdef_irq_parse(struct vmdef_parse *p, struct vmdef *def, const json_t *obj)
{
	const char *key;
	json_t *v;
	int ret;

	if ((ret = vmdef_get_object(p, "irq", obj)))
		return ret;
	json_object_foreach((json_t *)obj, key, v) {
		if (strcmp(key, "steering") == 0) {
			if ((ret = vmdef_get_bool(p, "irq.steering", v, &def->irq.steering)))
				return ret;
		} else {
			return vmdef_unknown_key(p, "irq", key);
		}
	}
	return 0;
}

json_t *vmdef_irq_json(const struct vmdef *def)
{
	return json_pack("{s:b}", "steering", def->irq.steering);
}
