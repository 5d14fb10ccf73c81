/*
 * The serial console section: where COM1's output goes ("log": a file, "stdout": the
 * worker's standard output).
 */
#include <stdlib.h>
#include <string.h>

#include "vmdef/vmdef_internal.h"

int vmdef_serial_parse(struct vmdef_parse *p, struct vmdef *def, const json_t *obj)
{
	const char *key;
	json_t *v;
	int ret;

	if ((ret = vmdef_get_object(p, "serial", obj)))
		return ret;
	json_object_foreach((json_t *)obj, key, v) {
		if (strcmp(key, "log") == 0) {
			const char *s;

			if (json_is_null(v)) {
				free(def->serial_log);
				def->serial_log = NULL;
				continue;
			}
			if ((ret = vmdef_get_string(p, "serial.log", v, 4095, &s)))
				return ret;
			if ((ret = vmdef_dup_str(&def->serial_log, s)))
				return ret;
		} else if (strcmp(key, "stdout") == 0) {
			if ((ret = vmdef_get_bool(p, "serial.stdout", v, &def->serial_stdout)))
				return ret;
		} else {
			return vmdef_unknown_key(p, "serial", key);
		}
	}
	return 0;
}

int vmdef_serial_validate(const struct vmdef *def, char *err, size_t err_len)
{
	if (def->serial_log && !def->serial_log[0])
		return util_error(err, err_len, -EINVAL, "\"serial.log\" must not be empty");
	return 0;
}

json_t *vmdef_serial_json(const struct vmdef *def)
{
	json_t *serial = json_pack("{s:b}", "stdout", def->serial_stdout);

	if (serial && def->serial_log &&
	    json_object_set_new(serial, "log", json_string(def->serial_log))) {
		json_decref(serial);
		return NULL;
	}
	return serial;
}
