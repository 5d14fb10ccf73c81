/*
 * A helper shared by the vmdef/ unit tests and the vmdef fuzz target: a definition in a form
 * two definitions can be compared in.
 */
#ifndef LOCKSTEP_TESTS_VMDEFTEST_H
#define LOCKSTEP_TESTS_VMDEFTEST_H

#include <stdlib.h>

#include "vmdef/vmdef.h"

/* The definition as compact JSON with sorted keys (malloc'ed), to compare two definitions. */
static inline char *vmdeftest_dump(const struct vmdef *def)
{
	json_t *obj = vmdef_to_json(def);
	char *s = obj ? json_dumps(obj, JSON_SORT_KEYS | JSON_COMPACT) : NULL;

	json_decref(obj);
	return s;
}

#endif /* LOCKSTEP_TESTS_VMDEFTEST_H */
