/*
 * Internals of vmdef/ shared by its files: the parse state, the typed field readers (each
 * names the key's path in its error) and each section's three functions — parse its JSON,
 * check its cross-field rules, print it back.  vmdef/vmdef.c puts the sections together.
 */
#ifndef LOCKSTEP_VMDEF_INTERNAL_H
#define LOCKSTEP_VMDEF_INTERNAL_H

#include <errno.h>

#include "vmdef/vmdef.h"

struct vmdef_parse {
	char *err;
	size_t err_len;
};

/*
 * Fails the parse with a message naming what is wrong; -EINVAL.  The constant is spelled out
 * (not util_error's return) so that the compiler sees a failing reader never returns 0 and
 * never warns about the values only a successful read sets.
 */
#define vmdef_fail(p, ...) (util_error((p)->err, (p)->err_len, -EINVAL, __VA_ARGS__), -EINVAL)

/* ---- typed field readers (vmdef/vmdef.c) ---- */

int vmdef_get_string(struct vmdef_parse *p, const char *path, const json_t *v, size_t max,
		     const char **out);
int vmdef_get_uint(struct vmdef_parse *p, const char *path, const json_t *v, uint64_t min,
		   uint64_t max, uint64_t *out);
int vmdef_get_bool(struct vmdef_parse *p, const char *path, const json_t *v, bool *out);
/* One of `n` names; *out is its index. */
int vmdef_get_enum(struct vmdef_parse *p, const char *path, const json_t *v,
		   const char *const *names, int n, int *out);
int vmdef_get_cpuset(struct vmdef_parse *p, const char *path, const json_t *v,
		     struct util_cpuset *out);
int vmdef_get_object(struct vmdef_parse *p, const char *path, const json_t *v);
int vmdef_unknown_key(struct vmdef_parse *p, const char *section, const char *key);
/* Replaces *dst with a copy of `src` (NULL allowed); -ENOMEM. */
int vmdef_dup_str(char **dst, const char *src);
/* The index of `s` in `names`, or -1. */
int vmdef_lookup_name(const char *s, const char *const *names, int n);

/* ---- sections: the top-level keys (machine.c) and one object each ---- */

/* 1 if `key` is one of the machine's top-level keys (*ret then says how it went), else 0. */
int vmdef_machine_parse(struct vmdef_parse *p, struct vmdef *def, const char *key, const json_t *v,
			int *ret);
int vmdef_machine_validate(const struct vmdef *def, char *err, size_t err_len);
/* The top-level keys into `obj`; -ENOMEM. */
int vmdef_machine_json(const struct vmdef *def, json_t *obj);

int vmdef_serial_parse(struct vmdef_parse *p, struct vmdef *def, const json_t *obj);
int vmdef_serial_validate(const struct vmdef *def, char *err, size_t err_len);
json_t *vmdef_serial_json(const struct vmdef *def);

int vmdef_sched_parse(struct vmdef_parse *p, struct vmdef *def, const json_t *obj);
int vmdef_sched_validate(const struct vmdef *def, char *err, size_t err_len);
json_t *vmdef_sched_json(const struct vmdef *def);

int vmdef_pvlock_parse(struct vmdef_parse *p, struct vmdef *def, const json_t *obj);
json_t *vmdef_pvlock_json(const struct vmdef *def);

int vmdef_irq_parse(struct vmdef_parse *p, struct vmdef *def, const json_t *obj);
json_t *vmdef_irq_json(const struct vmdef *def);

int vmdef_devices_parse(struct vmdef_parse *p, struct vmdef *def, const json_t *arr);
int vmdef_devices_validate(const struct vmdef *def, char *err, size_t err_len);
json_t *vmdef_devices_json(const struct vmdef *def);

#endif /* LOCKSTEP_VMDEF_INTERNAL_H */
