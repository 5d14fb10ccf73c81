/*
 * The two tables from an operation's -errno (daemon/ops.h's convention) to the wire: JSON-RPC
 * codes (api_code_from_errno, and api_call_fail_err's data.errno) and libvirt's error numbers
 * (api_virt_error_from_errno).  Every errno of the convention has its own meaning on both
 * wires; a full disk is a system error with its errno, never the VM cap; anything else is a
 * system error too.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/api.h"
#include "api/virt.h"

static const struct {
	int err;
	int rpc;
	int virt;
} table[] = {
	{ -ENOENT, API_NO_SUCH_VM, VIRT_ERR_NO_DOMAIN },
	{ -EEXIST, API_VM_EXISTS, VIRT_ERR_DOM_EXIST },
	{ -EBUSY, API_BAD_STATE, VIRT_ERR_OPERATION_INVALID },
	{ -ECHILD, API_BAD_STATE, VIRT_ERR_OPERATION_FAILED },
	{ -EINVAL, API_BAD_DEFINITION, VIRT_ERR_CONFIG_UNSUPPORTED },
	{ -E2BIG, API_BAD_DEFINITION, VIRT_ERR_CONFIG_UNSUPPORTED },
	{ -ERANGE, API_INVALID_PARAMS, VIRT_ERR_INVALID_ARG },
	{ -EUSERS, API_LIMIT, VIRT_ERR_OPERATION_FAILED },
	{ -EPERM, API_PERMISSION, VIRT_ERR_OPERATION_DENIED },
	{ -ETIMEDOUT, API_TIMEOUT, VIRT_ERR_OPERATION_TIMEOUT },
	{ -ESHUTDOWN, API_INTERNAL_ERROR, VIRT_ERR_OPERATION_FAILED },
	{ -EOPNOTSUPP, API_UNSUPPORTED, VIRT_ERR_OPERATION_UNSUPPORTED },
	{ -ENOSPC, API_SYSTEM_ERROR, VIRT_ERR_SYSTEM_ERROR },
	{ -EDQUOT, API_SYSTEM_ERROR, VIRT_ERR_SYSTEM_ERROR },
	{ -EACCES, API_SYSTEM_ERROR, VIRT_ERR_SYSTEM_ERROR },
	{ -EIO, API_SYSTEM_ERROR, VIRT_ERR_SYSTEM_ERROR },
	{ -ESRCH, API_SYSTEM_ERROR, VIRT_ERR_SYSTEM_ERROR },
	{ -ENOMEM, API_SYSTEM_ERROR, VIRT_ERR_NO_MEMORY },
};

static void test_tables(void **state)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		assert_int_equal(api_code_from_errno(table[i].err), table[i].rpc);
		assert_int_equal(api_virt_error_from_errno(table[i].err), table[i].virt);
	}
}

/* The rule errnos that share a JSON-RPC code are told apart on the libvirt side, or are the
 * same rule (E2BIG is a definition the host cannot give), and no two JSON-RPC meanings share
 * a libvirt code but the failed operations. */
static void test_distinct(void **state)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		for (size_t j = 0; j < i; j++) {
			if (table[i].rpc != table[j].rpc || table[i].rpc == API_SYSTEM_ERROR)
				continue;
			if (table[i].err == -E2BIG && table[j].err == -EINVAL)
				continue;
			assert_int_not_equal(table[i].virt, table[j].virt);
		}
	}
	assert_int_not_equal(api_code_from_errno(-ENOSPC), api_code_from_errno(-EUSERS));
}

/* What a client of a session sees: the code, the message as given, data.errno only for a
 * system error. */
static void capture(void *opaque, const char *frame, size_t len)
{
	json_t **last = opaque;

	json_decref(*last);
	*last = json_loadb(frame, len, 0, NULL);
}

static void fail_with(void *ctx, struct api_call *call, json_t *params)
{
	api_call_fail_err(call, (int)json_integer_value(json_object_get(params, "err")),
			  "the operation's message");
}

/* The error object of the reply (*last keeps the reply). */
static json_t *call_failing(int err, json_t **last)
{
	static const struct api_method methods[] = { { "op", fail_with, false } };
	static const struct api_session_ops ops = { .send = capture };
	struct api_session *s;
	char frame[128];
	int n;

	assert_int_equal(api_session_new(methods, 1, NULL, &ops, last, NULL, &s), 0);
	n = snprintf(frame, sizeof(frame),
		     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"op\",\"params\":{\"err\":%d}}\n",
		     err);
	api_session_feed(s, frame, (size_t)n);
	api_session_close(s);
	assert_non_null(*last);
	return json_object_get(*last, "error");
}

static void test_fail_err(void **state)
{
	json_t *last = NULL;
	json_t *e = call_failing(-ENOSPC, &last);

	assert_int_equal(json_integer_value(json_object_get(e, "code")), API_SYSTEM_ERROR);
	assert_string_equal(json_string_value(json_object_get(e, "message")),
			    "the operation's message");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(e, "data"), "errno")),
			 ENOSPC);
	e = call_failing(-EUSERS, &last);
	assert_int_equal(json_integer_value(json_object_get(e, "code")), API_LIMIT);
	assert_null(json_object_get(e, "data"));
	e = call_failing(-ENOENT, &last);
	assert_int_equal(json_integer_value(json_object_get(e, "code")), API_NO_SUCH_VM);
	assert_null(json_object_get(e, "data"));
	json_decref(last);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tables),
		cmocka_unit_test(test_distinct),
		cmocka_unit_test(test_fail_err),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
