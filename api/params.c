/*
 * Named-parameter helpers for method handlers: each looks one parameter up, checks its type
 * and range, and on failure answers the call with API_INVALID_PARAMS naming the parameter,
 * so handlers read as a list of requirements.
 */
#include <string.h>

#include "api/api.h"

static bool missing(struct api_call *call, const char *name, bool required)
{
	if (required)
		api_call_fail(call, API_INVALID_PARAMS, "missing parameter \"%s\"", name);
	return !required;
}

bool api_param_string(struct api_call *call, json_t *params, const char *name, bool required,
		      size_t max_len, const char **out)
{
	json_t *v = json_object_get(params, name);

	if (!v)
		return missing(call, name, required);
	if (!json_is_string(v)) {
		api_call_fail(call, API_INVALID_PARAMS, "parameter \"%s\" must be a string", name);
		return false;
	}
	if (json_string_length(v) > max_len ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		api_call_fail(call, API_INVALID_PARAMS,
			      "parameter \"%s\" must be at most %zu bytes without NULs", name,
			      max_len);
		return false;
	}
	*out = json_string_value(v);
	return true;
}

bool api_param_uint(struct api_call *call, json_t *params, const char *name, bool required,
		    uint64_t min, uint64_t max, uint64_t *out)
{
	json_t *v = json_object_get(params, name);
	json_int_t i;

	if (!v)
		return missing(call, name, required);
	i = json_is_integer(v) ? json_integer_value(v) : -1;
	if (!json_is_integer(v) || i < 0 || (uint64_t)i < min || (uint64_t)i > max) {
		api_call_fail(call, API_INVALID_PARAMS,
			      "parameter \"%s\" must be an integer from %llu to %llu", name,
			      (unsigned long long)min, (unsigned long long)max);
		return false;
	}
	*out = (uint64_t)i;
	return true;
}

bool api_param_bool(struct api_call *call, json_t *params, const char *name, bool required,
		    bool *out)
{
	json_t *v = json_object_get(params, name);

	if (!v)
		return missing(call, name, required);
	if (!json_is_boolean(v)) {
		api_call_fail(call, API_INVALID_PARAMS, "parameter \"%s\" must be true or false",
			      name);
		return false;
	}
	*out = json_is_true(v);
	return true;
}

bool api_params_only(struct api_call *call, json_t *params, const char *const *names)
{
	const char *key;
	json_t *v;

	json_object_foreach(params, key, v) {
		size_t i;

		for (i = 0; names[i]; i++)
			if (strcmp(key, names[i]) == 0)
				break;
		if (!names[i]) {
			api_call_fail(call, API_INVALID_PARAMS, "unknown parameter \"%.64s\"", key);
			return false;
		}
	}
	return true;
}
