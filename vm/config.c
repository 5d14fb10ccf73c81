/*
 * VM definitions: JSON <-> struct vm_config, strictly.
 *
 * Used by lockstep-vm (file + flags) and lockstepd (definitions over the API and on disk).
 * Each JSON section has a table of known keys; a key not in the table is an error naming its
 * full path ("sched.polcy"), so a typo never silently falls back to a default.  Parsing fills
 * a scratch copy and commits it only when the whole document was accepted.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/vm.h"

#define CONFIG_FILE_MAX (1u << 20)

static const char *const policy_names[] = { "host", "pinned", "gang", "relaxed", "adaptive" };
static const char *const on_crash_names[] = { "destroy", "restart", "preserve" };
static const char *const pause_exit_names[] = { "auto", "on", "off" };

/* KVM_FEATURE_* bit numbers from the KVM paravirtual CPUID leaf 0x40000001. */
static const struct {
	const char *name;
	unsigned bit;
} kvm_feature_names[] = {
	{ "clocksource", 0 },	     { "nop_io_delay", 1 },	{ "clocksource2", 3 },
	{ "async_pf", 4 },	     { "steal_time", 5 },	{ "pv_eoi", 6 },
	{ "pv_unhalt", 7 },	     { "pv_tlb_flush", 9 },	{ "async_pf_vmexit", 10 },
	{ "pv_send_ipi", 11 },	     { "poll_control", 12 },	{ "pv_sched_yield", 13 },
	{ "async_pf_int", 14 },	     { "msi_ext_dest_id", 15 }, { "hc_map_gpa_range", 16 },
	{ "migration_control", 17 },
};

struct parse {
	char *err;
	size_t err_len;
};

/*
 * Fails the parse with a message naming what is wrong; -EINVAL.  The constant is spelled out
 * (not util_error's return) so that the compiler sees a failing reader never returns 0 and
 * never warns about the values only a successful read sets.
 */
#define fail(p, ...) (util_error((p)->err, (p)->err_len, -EINVAL, __VA_ARGS__), -EINVAL)

const char *vm_sched_policy_name(enum vm_sched_policy policy)
{
	return (unsigned)policy < 5 ? policy_names[policy] : "?";
}

const char *vm_on_crash_name(enum vm_on_crash on_crash)
{
	return (unsigned)on_crash < 3 ? on_crash_names[on_crash] : "?";
}

const char *vm_pause_exits_name(enum vm_pause_exits pause_exits)
{
	return (unsigned)pause_exits < 3 ? pause_exit_names[pause_exits] : "?";
}

const char *vm_kvm_feature_name(unsigned bit)
{
	for (size_t i = 0; i < sizeof(kvm_feature_names) / sizeof(kvm_feature_names[0]); i++)
		if (kvm_feature_names[i].bit == bit)
			return kvm_feature_names[i].name;
	return NULL;
}

static int lookup_name(const char *s, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

int vm_sched_policy_parse(const char *s, enum vm_sched_policy *out)
{
	int i = lookup_name(s, policy_names, 5);

	if (i < 0)
		return -EINVAL;
	*out = (enum vm_sched_policy)i;
	return 0;
}

bool vm_config_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > VM_NAME_MAX || name[0] == '.' || name[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool uuid_valid(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		char c = s[i];

		if (dash ? c != '-' :
			   !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

void vm_config_init(struct vm_config *cfg)
{
	*cfg = (struct vm_config){
		.vcpus = 1,
		.memory = VM_MEMORY_DEFAULT,
		.on_crash = VM_ON_CRASH_DESTROY,
		.sched = { .policy = VM_SCHED_HOST,
			   .quantum_us = VM_QUANTUM_US_DEFAULT,
			   .skew_us = VM_SKEW_US_DEFAULT },
		.pvlock = { .enabled = true,
			    .kvm_features = VM_KVM_FEATURES_HOST,
			    .pause_exits = VM_PAUSE_EXITS_AUTO },
		.irq = { .steering = true },
	};
}

void vm_config_fini(struct vm_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->kernel);
	free(cfg->cmdline);
	free(cfg->serial_log);
	free(cfg->sched.pins);
	vm_config_init(cfg);
}

static int dup_str(char **dst, const char *src)
{
	free(*dst); /* parsing over a config replaces its strings */
	if (!src) {
		*dst = NULL;
		return 0;
	}
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

int vm_config_copy(struct vm_config *dst, const struct vm_config *src)
{
	struct vm_config tmp = *src;

	tmp.kernel = tmp.cmdline = tmp.serial_log = NULL;
	tmp.sched.pins = NULL;
	if (dup_str(&tmp.kernel, src->kernel) || dup_str(&tmp.cmdline, src->cmdline) ||
	    dup_str(&tmp.serial_log, src->serial_log))
		goto err;
	if (src->sched.nr_pins) {
		tmp.sched.pins = calloc(src->sched.nr_pins, sizeof(*tmp.sched.pins));
		if (!tmp.sched.pins)
			goto err;
		memcpy(tmp.sched.pins, src->sched.pins,
		       src->sched.nr_pins * sizeof(*tmp.sched.pins));
	}
	*dst = tmp;
	return 0;
err:
	vm_config_fini(&tmp);
	return -ENOMEM;
}

/* ---- typed field readers: each names the key's path in its error ---- */

static int get_string(struct parse *p, const char *path, const json_t *v, size_t max,
		      const char **out)
{
	if (!json_is_string(v))
		return fail(p, "\"%s\" must be a string", path);
	if (json_string_length(v) > max)
		return fail(p, "\"%s\" is longer than %zu bytes", path, max);
	if (strlen(json_string_value(v)) != json_string_length(v))
		return fail(p, "\"%s\" contains a NUL byte", path);
	*out = json_string_value(v);
	return 0;
}

static int get_uint(struct parse *p, const char *path, const json_t *v, uint64_t min, uint64_t max,
		    uint64_t *out)
{
	json_int_t i;

	if (!json_is_integer(v))
		return fail(p, "\"%s\" must be an integer between %llu and %llu", path,
			    (unsigned long long)min, (unsigned long long)max);
	i = json_integer_value(v);
	if (i < 0 || (uint64_t)i < min || (uint64_t)i > max)
		return fail(p, "\"%s\" must be between %llu and %llu (got %lld)", path,
			    (unsigned long long)min, (unsigned long long)max, (long long)i);
	*out = (uint64_t)i;
	return 0;
}

static int get_bool(struct parse *p, const char *path, const json_t *v, bool *out)
{
	if (!json_is_boolean(v))
		return fail(p, "\"%s\" must be true or false", path);
	*out = json_is_true(v);
	return 0;
}

static int get_enum(struct parse *p, const char *path, const json_t *v, const char *const *names,
		    int n, int *out)
{
	char choices[128] = "";
	int i;

	if (json_is_string(v)) {
		i = lookup_name(json_string_value(v), names, n);
		if (i >= 0) {
			*out = i;
			return 0;
		}
	}
	for (i = 0; i < n; i++) {
		strncat(choices, i ? ", " : "", sizeof(choices) - strlen(choices) - 1);
		strncat(choices, names[i], sizeof(choices) - strlen(choices) - 1);
	}
	return fail(p, "\"%s\" must be one of: %s", path, choices);
}

static int get_cpuset(struct parse *p, const char *path, const json_t *v, struct util_cpuset *out)
{
	const char *s;
	int ret = get_string(p, path, v, 1024, &s);

	if (ret)
		return ret;
	if (util_cpuset_parse(s, out))
		return fail(p, "\"%s\" must be a host CPU list such as \"0-3,6\" (got \"%s\")",
			    path, s);
	return 0;
}

static int get_object(struct parse *p, const char *path, const json_t *v)
{
	if (!json_is_object(v))
		return fail(p, "\"%s\" must be an object", path);
	return 0;
}

static int unknown_key(struct parse *p, const char *section, const char *key)
{
	if (section)
		return fail(p, "unknown key \"%s.%s\"", section, key);
	return fail(p, "unknown key \"%s\"", key);
}

/* ---- sections ---- */

static int parse_memory(struct parse *p, const json_t *v, uint64_t *out)
{
	uint64_t bytes;

	if (json_is_integer(v)) {
		int ret =
			get_uint(p, "memory", v, VM_MEMORY_MIN >> 20, VM_MEMORY_MAX >> 20, &bytes);

		if (ret)
			return ret;
		*out = bytes << 20;
		return 0;
	}
	if (!json_is_string(v) || util_parse_size(json_string_value(v), 1u << 20, &bytes))
		return fail(p, "\"memory\" must be MiB as an integer or a size such as \"512M\" "
			       "or \"2G\"");
	if (bytes < VM_MEMORY_MIN || bytes > VM_MEMORY_MAX)
		return fail(p, "\"memory\" must be between 2 MiB and 256 GiB");
	if (bytes & ((1u << 20) - 1))
		return fail(p, "\"memory\" must be a whole number of MiB");
	*out = bytes;
	return 0;
}

static int parse_serial(struct parse *p, struct vm_config *cfg, const json_t *obj)
{
	const char *key;
	json_t *v;
	int ret;

	if ((ret = get_object(p, "serial", obj)))
		return ret;
	json_object_foreach((json_t *)obj, key, v) {
		if (strcmp(key, "log") == 0) {
			const char *s;

			if (json_is_null(v)) {
				free(cfg->serial_log);
				cfg->serial_log = NULL;
				continue;
			}
			if ((ret = get_string(p, "serial.log", v, 4095, &s)))
				return ret;
			if ((ret = dup_str(&cfg->serial_log, s)))
				return ret;
		} else if (strcmp(key, "stdout") == 0) {
			if ((ret = get_bool(p, "serial.stdout", v, &cfg->serial_stdout)))
				return ret;
		} else {
			return unknown_key(p, "serial", key);
		}
	}
	return 0;
}

static int parse_pins(struct parse *p, struct vm_sched_config *sc, const json_t *obj)
{
	const char *key;
	json_t *v;
	int ret;

	if ((ret = get_object(p, "sched.pin", obj)))
		return ret;
	free(sc->pins);
	sc->nr_pins = 0;
	sc->pins = calloc(json_object_size(obj) ? json_object_size(obj) : 1, sizeof(*sc->pins));
	if (!sc->pins)
		return -ENOMEM;
	json_object_foreach((json_t *)obj, key, v) {
		char path[64];
		uint64_t vcpu;

		snprintf(path, sizeof(path), "sched.pin.%.32s", key);
		if (util_parse_u64(key, 0, VM_VCPUS_MAX - 1, &vcpu) || (key[0] == '0' && key[1]))
			return fail(p, "\"%s\": pin keys are vCPU numbers (0..%u)", path,
				    VM_VCPUS_MAX - 1);
		sc->pins[sc->nr_pins].vcpu = (uint32_t)vcpu;
		if ((ret = get_cpuset(p, path, v, &sc->pins[sc->nr_pins].cpus)))
			return ret;
		sc->nr_pins++;
	}
	return 0;
}

static int parse_sched(struct parse *p, struct vm_config *cfg, const json_t *obj)
{
	struct vm_sched_config *sc = &cfg->sched;
	const char *key;
	json_t *v;
	uint64_t u;
	int ret, i;

	if ((ret = get_object(p, "sched", obj)))
		return ret;
	json_object_foreach((json_t *)obj, key, v) {
		if (strcmp(key, "policy") == 0) {
			if ((ret = get_enum(p, "sched.policy", v, policy_names, 5, &i)))
				return ret;
			sc->policy = (enum vm_sched_policy)i;
		} else if (strcmp(key, "quantum_us") == 0) {
			if ((ret = get_uint(p, "sched.quantum_us", v, 100, 1000000, &u)))
				return ret;
			sc->quantum_us = (uint32_t)u;
		} else if (strcmp(key, "skew_us") == 0) {
			if ((ret = get_uint(p, "sched.skew_us", v, 10, 1000000, &u)))
				return ret;
			sc->skew_us = (uint32_t)u;
		} else if (strcmp(key, "cpus") == 0) {
			if ((ret = get_cpuset(p, "sched.cpus", v, &sc->cpus)))
				return ret;
			sc->has_cpus = true;
		} else if (strcmp(key, "pin") == 0) {
			if ((ret = parse_pins(p, sc, v)))
				return ret;
		} else {
			return unknown_key(p, "sched", key);
		}
	}
	return 0;
}

static int parse_kvm_features(struct parse *p, uint32_t *mask, const json_t *v)
{
	size_t idx;
	json_t *item;

	if (json_is_string(v) && strcmp(json_string_value(v), "host") == 0) {
		*mask = VM_KVM_FEATURES_HOST;
		return 0;
	}
	if (!json_is_array(v))
		return fail(p,
			    "\"pvlock.kvm_features\" must be \"host\" or a list of feature names");
	*mask = 0;
	json_array_foreach((json_t *)v, idx, item) {
		size_t k, n = sizeof(kvm_feature_names) / sizeof(kvm_feature_names[0]);

		if (!json_is_string(item))
			return fail(p, "\"pvlock.kvm_features[%zu]\" must be a string", idx);
		for (k = 0; k < n; k++)
			if (strcmp(json_string_value(item), kvm_feature_names[k].name) == 0)
				break;
		if (k == n)
			return fail(p,
				    "\"pvlock.kvm_features[%zu]\": unknown KVM feature \"%.40s\"",
				    idx, json_string_value(item));
		*mask |= 1u << kvm_feature_names[k].bit;
	}
	return 0;
}

static int parse_pvlock(struct parse *p, struct vm_config *cfg, const json_t *obj)
{
	struct vm_pvlock_config *pc = &cfg->pvlock;
	const char *key;
	json_t *v;
	int ret, i;

	if ((ret = get_object(p, "pvlock", obj)))
		return ret;
	json_object_foreach((json_t *)obj, key, v) {
		if (strcmp(key, "enabled") == 0) {
			if ((ret = get_bool(p, "pvlock.enabled", v, &pc->enabled)))
				return ret;
		} else if (strcmp(key, "kvm_features") == 0) {
			if ((ret = parse_kvm_features(p, &pc->kvm_features, v)))
				return ret;
		} else if (strcmp(key, "pause_exits") == 0) {
			if ((ret = get_enum(p, "pvlock.pause_exits", v, pause_exit_names, 3, &i)))
				return ret;
			pc->pause_exits = (enum vm_pause_exits)i;
		} else {
			return unknown_key(p, "pvlock", key);
		}
	}
	return 0;
}

static int parse_irq(struct parse *p, struct vm_config *cfg, const json_t *obj)
{
	const char *key;
	json_t *v;
	int ret;

	if ((ret = get_object(p, "irq", obj)))
		return ret;
	json_object_foreach((json_t *)obj, key, v) {
		if (strcmp(key, "steering") == 0) {
			if ((ret = get_bool(p, "irq.steering", v, &cfg->irq.steering)))
				return ret;
		} else {
			return unknown_key(p, "irq", key);
		}
	}
	return 0;
}

static bool pci_address_valid(const char *s)
{
	unsigned dom, bus, dev, fn;
	char tail;

	return strlen(s) == 12 &&
	       sscanf(s, "%4x:%2x:%2x.%1x%c", &dom, &bus, &dev, &fn, &tail) == 4 && dev < 32 &&
	       fn < 8;
}

static int parse_devices(struct parse *p, struct vm_config *cfg, const json_t *arr)
{
	size_t idx;
	json_t *dev;

	if (!json_is_array(arr))
		return fail(p, "\"devices\" must be a list");
	if (json_array_size(arr) > VM_DEVICES_MAX)
		return fail(p, "\"devices\" has more than %d entries", VM_DEVICES_MAX);
	cfg->nr_devices = 0;
	json_array_foreach((json_t *)arr, idx, dev) {
		struct vm_device_config *d = &cfg->devices[cfg->nr_devices];
		const char *key, *s;
		char path[48];
		json_t *v;
		int ret;

		snprintf(path, sizeof(path), "devices[%zu]", idx);
		if ((ret = get_object(p, path, dev)))
			return ret;
		memset(d, 0, sizeof(*d));
		json_object_foreach(dev, key, v) {
			snprintf(path, sizeof(path), "devices[%zu].%.16s", idx, key);
			if (strcmp(key, "type") == 0) {
				if ((ret = get_string(p, path, v, sizeof(d->type) - 1, &s)))
					return ret;
				if (strcmp(s, "vfio-pci") != 0)
					return fail(p, "\"%s\" must be \"vfio-pci\"", path);
				strcpy(d->type, s);
			} else if (strcmp(key, "host") == 0) {
				if ((ret = get_string(p, path, v, sizeof(d->host) - 1, &s)))
					return ret;
				if (!pci_address_valid(s))
					return fail(p,
						    "\"%s\" must be a PCI address such as "
						    "\"0000:00:03.0\"",
						    path);
				strcpy(d->host, s);
			} else {
				return fail(p, "unknown key \"%s\"", path);
			}
		}
		if (!d->type[0] || !d->host[0])
			return fail(p, "\"devices[%zu]\" needs \"type\" and \"host\"", idx);
		cfg->nr_devices++;
	}
	return 0;
}

static int parse_top(struct parse *p, struct vm_config *cfg, const json_t *obj)
{
	const char *key, *s;
	json_t *v;
	uint64_t u;
	int ret, i;

	if (!json_is_object(obj))
		return fail(p, "a VM definition must be a JSON object");
	json_object_foreach((json_t *)obj, key, v) {
		ret = 0;
		if (strcmp(key, "name") == 0) {
			if (!(ret = get_string(p, "name", v, VM_NAME_MAX, &s))) {
				if (!vm_config_name_valid(s))
					return fail(p,
						    "\"name\" must be 1-63 characters of "
						    "A-Z a-z 0-9 . _ - not starting with . or -");
				strcpy(cfg->name, s);
			}
		} else if (strcmp(key, "uuid") == 0) {
			if (!(ret = get_string(p, "uuid", v, 36, &s))) {
				if (!uuid_valid(s))
					return fail(p, "\"uuid\" must look like "
						       "\"8f3169e4-9e17-5347-a623-47fff434bb04\"");
				strcpy(cfg->uuid, s);
			}
		} else if (strcmp(key, "vcpus") == 0) {
			if (!(ret = get_uint(p, "vcpus", v, 1, VM_VCPUS_MAX, &u)))
				cfg->vcpus = (uint32_t)u;
		} else if (strcmp(key, "memory") == 0) {
			ret = parse_memory(p, v, &cfg->memory);
		} else if (strcmp(key, "kernel") == 0) {
			if (!(ret = get_string(p, "kernel", v, 4095, &s)))
				ret = dup_str(&cfg->kernel, s);
		} else if (strcmp(key, "cmdline") == 0) {
			if (!(ret = get_string(p, "cmdline", v, VM_CMDLINE_MAX, &s)))
				ret = dup_str(&cfg->cmdline, s);
		} else if (strcmp(key, "serial") == 0) {
			ret = parse_serial(p, cfg, v);
		} else if (strcmp(key, "on_crash") == 0) {
			if (!(ret = get_enum(p, "on_crash", v, on_crash_names, 3, &i)))
				cfg->on_crash = (enum vm_on_crash)i;
		} else if (strcmp(key, "autostart") == 0) {
			ret = get_bool(p, "autostart", v, &cfg->autostart);
		} else if (strcmp(key, "sched") == 0) {
			ret = parse_sched(p, cfg, v);
		} else if (strcmp(key, "pvlock") == 0) {
			ret = parse_pvlock(p, cfg, v);
		} else if (strcmp(key, "irq") == 0) {
			ret = parse_irq(p, cfg, v);
		} else if (strcmp(key, "devices") == 0) {
			ret = parse_devices(p, cfg, v);
		} else {
			ret = unknown_key(p, NULL, key);
		}
		if (ret)
			return ret;
	}
	return 0;
}

int vm_config_from_json(struct vm_config *cfg, const json_t *obj, char *err, size_t err_len)
{
	struct parse p = { .err = err, .err_len = err_len };
	struct vm_config tmp;
	int ret;

	ret = vm_config_copy(&tmp, cfg);
	if (ret)
		return ret;
	ret = parse_top(&p, &tmp, obj);
	if (ret) {
		vm_config_fini(&tmp);
		return ret;
	}
	vm_config_fini(cfg);
	*cfg = tmp;
	return 0;
}

int vm_config_parse(struct vm_config *cfg, const char *text, size_t len, char *err, size_t err_len)
{
	json_error_t jerr;
	json_t *root;
	int ret;

	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		if (err && err_len)
			snprintf(err, err_len, "line %d, column %d: %s", jerr.line, jerr.column,
				 jerr.text);
		return -EINVAL;
	}
	ret = vm_config_from_json(cfg, root, err, err_len);
	json_decref(root);
	return ret;
}

int vm_config_load(struct vm_config *cfg, const char *path, char *err, size_t err_len)
{
	size_t len;
	char *text;
	int ret;

	ret = util_read_file(path, CONFIG_FILE_MAX, &text, &len);
	if (ret) {
		if (err && err_len)
			snprintf(err, err_len, "%s: %s", path,
				 ret == -EFBIG ? "larger than 1 MiB" : strerror(-ret));
		return ret;
	}
	ret = vm_config_parse(cfg, text, len, err, err_len);
	free(text);
	if (ret && err && err_len) {
		char *detail = strdup(err);

		if (detail)
			snprintf(err, err_len, "%s: %s", path, detail);
		free(detail);
	}
	return ret;
}
