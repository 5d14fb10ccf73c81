/*
 * The registry's state machine (daemon/registry.c) on an in-process daemon whose workers are
 * the stand-in (dtest.h): the announced lifecycle of a VM that starts and is destroyed, a
 * guest crash under on_crash restart (at most three restarts a minute, then it stays
 * crashed), a guest reset (rebooted, with the same bound), and a daemon's start: stored
 * definitions loaded (a broken one and a misnamed one skipped), autostart, and workers that
 * ended while no daemon watched, told apart by their exit file.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/daemon/dtest.h"

static int setup(void **state)
{
	struct dtest *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	assert_int_equal(dtest_start(t, 16, false), 0);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct dtest *t = *state;
	struct util_list *pos;

	util_list_for_each(pos, &t->d.vms) {
		struct dvm *vm = util_container_of(pos, struct dvm, link);

		if (vm->worker)
			kill(vm->worker->pid, SIGKILL);
	}
	dtest_stop(t);
	dtest_cleanup(t);
	free(t);
	return 0;
}

static struct dvm *define(struct dtest *t, const char *name, const char *cmdline,
			  enum vmdef_on_crash on_crash, bool autostart)
{
	struct vmdef def;
	struct dvm *vm;
	char err[512];
	bool created;

	dtest_def(&def, name, 1, cmdline);
	def.on_crash = on_crash;
	def.autostart = autostart;
	if (ops_define(&t->d, &def, 0, &vm, &created, err, sizeof(err)))
		fail_msg("define %s: %s", name, err);
	vmdef_fini(&def);
	return vm;
}

static unsigned count(const char *events, const char *what)
{
	unsigned n = 0;

	for (const char *p = events; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

static void test_start_destroy(void **state)
{
	struct dtest *t = *state;
	struct dvm *vm = define(t, "plain", "run", VMDEF_ON_CRASH_DESTROY, false);
	struct dtest_done done = { 0 };
	char err[512], *events;

	assert_int_equal(vm->state, DVM_SHUTOFF);
	assert_int_equal(vm->domain_id, -1);
	assert_int_equal(ops_start(vm, dtest_done, &done, err, sizeof(err)), OPS_PENDING);
	assert_true(dtest_wait_done(t, &done));
	assert_true(vm->domain_id > 0);
	assert_non_null(registry_find_id(&t->d, vm->domain_id));
	assert_ptr_equal(registry_find_uuid(&t->d, vm->cfg.uuid), vm);
	done = (struct dtest_done){ 0 };
	assert_int_equal(ops_destroy(vm, dtest_done, &done, err, sizeof(err)), OPS_PENDING);
	assert_true(dtest_wait_done(t, &done));
	assert_int_equal(vm->domain_id, -1);
	assert_int_equal(vm->last_status, 0);
	assert_non_null(vm->last_stats); /* the worker's last report outlives it */
	events = dtest_events(t, "plain");
	assert_string_equal(events, "defined:shutoff:defined starting:starting:starting "
				    "started:running:booted stopped:shutoff:destroyed");
	free(events);
}

static void test_crash_restarts(void **state)
{
	struct dtest *t = *state;
	struct dvm *vm = define(t, "crashy", "crash", VMDEF_ON_CRASH_RESTART, false);
	char err[512], *events;
	struct dtest_done done = { 0 };

	assert_int_equal(ops_start(vm, dtest_done, &done, err, sizeof(err)), OPS_PENDING);
	/* Each run crashes; three restarts within a minute, then it stays crashed. */
	for (;;) {
		assert_true(dtest_wait_state(t, "crashy", DVM_CRASHED, "guest-crash"));
		if (!vm->worker)
			break;
		uv_run(t->d.loop, UV_RUN_ONCE);
	}
	events = dtest_events(t, "crashy");
	assert_int_equal(count(events, "restarted:"), 3);
	assert_int_equal(count(events, "crashed:crashed:guest-crash"), 4);
	assert_int_equal(vm->last_status, 80);
	free(events);
}

static void test_reset_reboots(void **state)
{
	struct dtest *t = *state;
	struct dvm *vm = define(t, "resetty", "reset", VMDEF_ON_CRASH_DESTROY, false);
	char err[512], *events;
	struct dtest_done done = { 0 };

	assert_int_equal(ops_start(vm, dtest_done, &done, err, sizeof(err)), OPS_PENDING);
	for (;;) {
		assert_true(dtest_wait_state(t, "resetty", DVM_SHUTOFF, "guest-reset"));
		if (!vm->worker)
			break;
		uv_run(t->d.loop, UV_RUN_ONCE);
	}
	events = dtest_events(t, "resetty");
	assert_int_equal(count(events, "rebooted:"), 3);
	assert_int_equal(count(events, "crashed:"), 0);
	free(events);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* A daemon's start: what is stored, what autostarts, what ended while it was away. */
static void test_daemon_start(void **state)
{
	struct dtest *t = *state;
	struct dvm *vm = define(t, "ended", "run", VMDEF_ON_CRASH_DESTROY, false);
	struct dtest_done done = { 0 };
	char path[256], err[512];
	pid_t pid;

	define(t, "auto", "run", VMDEF_ON_CRASH_DESTROY, true);
	define(t, "killed", NULL, VMDEF_ON_CRASH_DESTROY, false);
	assert_int_equal(ops_start(vm, dtest_done, &done, err, sizeof(err)), OPS_PENDING);
	assert_true(dtest_wait_done(t, &done));
	pid = vm->worker->pid;
	dtest_stop(t); /* the worker is left running; without its daemon the stand-in ends */
	assert_int_equal(waitpid(pid, NULL, 0), pid); /* our child: nobody else reaps it now */
	/* A record of a worker that is gone and left no word: killed while nobody watched. */
	snprintf(path, sizeof(path), "%s/run/vms/killed.run", t->root);
	write_text(path, "{\"pid\": 2147483600, \"start_ticks\": 1, \"domain_id\": 9, "
			 "\"started\": 1}");
	snprintf(path, sizeof(path), "%s/state/vms/broken.json", t->root);
	write_text(path, "{\"name\": ");
	snprintf(path, sizeof(path), "%s/state/vms/misnamed.json", t->root);
	write_text(path, "{\"name\": \"other\", \"kernel\": \"/dev/null\"}");

	assert_int_equal(dtest_start(t, 16, true), 0);
	assert_int_equal(registry_count(&t->d), 3);
	assert_null(registry_find(&t->d, "broken"));
	assert_null(registry_find(&t->d, "other"));
	vm = registry_find(&t->d, "ended");
	assert_int_equal(vm->state, DVM_SHUTOFF);
	assert_string_equal(vm->reason, "requested"); /* from its exit file */
	vm = registry_find(&t->d, "killed");
	assert_int_equal(vm->state, DVM_CRASHED);
	assert_string_equal(vm->reason, "worker-died");
	assert_int_equal(vm->domain_id, -1);
	assert_true(t->d.next_domain_id > 9); /* ids are not reused */
	assert_true(dtest_wait_state(t, "auto", DVM_RUNNING, "booted"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_start_destroy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_restarts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_reboots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_daemon_start, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
