/*
 * The registry's state machine (daemon/registry.c) on an in-process daemon whose workers are
 * the real lockstep-vm running the idle guest (dtest.h): the announced lifecycle of a VM that
 * starts and is destroyed, a guest that triple-faults under on_crash restart (restarted at
 * once, then backing off while its runs keep ending quickly, until a destroy), a guest that
 * resets through port 0xCF9 (rebooted, backing off the same way), a worker killed under the
 * daemon's eyes, and a daemon's start: stored
 * definitions loaded (a broken one and a misnamed one skipped), autostart, and workers that
 * ended while no daemon watched, told apart by their exit file; a daemon that stops while a
 * worker ends, and the next one re-attaching to the worker that ran on.
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
	dtest_free(*state);
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
	struct dvm *vm = define(t, "plain", NULL, VMDEF_ON_CRASH_DESTROY, false);
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

struct announced {
	const char *vm, *what;
	unsigned times;
};

static bool announced(struct dtest *t, void *arg)
{
	struct announced *a = arg;
	char *events = dtest_events(t, a->vm);
	bool yes = count(events, a->what) >= a->times;

	free(events);
	return yes;
}

/* Turns the loop until lockstepd has announced `what` of the VM `times` times. */
static bool wait_announced(struct dtest *t, const char *vm, const char *what, unsigned times)
{
	struct announced a = { .vm = vm, .what = what, .times = times };

	return dtest_wait(t, announced, &a);
}

static void test_crash_restarts(void **state)
{
	struct dtest *t = *state;
	struct dvm *vm = define(t, "crashy", "crash_after_ms=20", VMDEF_ON_CRASH_RESTART, false);
	char err[512], *events;
	struct dtest_done done = { 0 };
	uint64_t begun, delay_ms;

	/* Each run crashes at once: the first restart is immediate, then they back off. */
	assert_int_equal(ops_start(vm, dtest_done, &done, err, sizeof(err)), OPS_PENDING);
	for (unsigned crash = 1; crash <= 3; crash++) {
		assert_true(dtest_wait_state(t, "crashy", DVM_CRASHED, "guest-crash"));
		assert_null(vm->worker);
		assert_true(vm->restart_pending);
		assert_int_equal(vm->quick_ends, crash);
		assert_int_equal(vm->restart_delay_ms, crash == 1 ? 0 : 1000u << (crash - 2));
		begun = util_now_ns();
		delay_ms = vm->restart_delay_ms;
		if (crash < 3) {
			assert_true(wait_announced(t, "crashy", "restarted:", crash));
			assert_true(util_now_ns() - begun >= delay_ms * 900000ull);
			assert_true(wait_announced(t, "crashy", "crashed:", crash + 1));
		}
	}
	/* A destroy ends the loop and the wait. */
	assert_int_equal(ops_destroy(vm, dtest_done, &done, err, sizeof(err)), 0);
	assert_false(vm->restart_pending);
	assert_int_equal(vm->state, DVM_SHUTOFF);
	events = dtest_events(t, "crashy");
	assert_int_equal(count(events, "restarted:"), 2);
	assert_int_equal(count(events, "crashed:crashed:guest-crash"), 3);
	assert_int_equal(count(events, "restart-pending:crashed:guest-crash"), 2);
	assert_int_equal(vm->last_status, 80);
	free(events);
}

static void test_reset_reboots(void **state)
{
	struct dtest *t = *state;
	struct dvm *vm = define(t, "resetty", "reset_after_ms=20", VMDEF_ON_CRASH_DESTROY, false);
	char err[512], *events;
	struct dtest_done done = { 0 };

	/* A reset reboots at once; one soon after the last backs off like a crash. */
	assert_int_equal(ops_start(vm, dtest_done, &done, err, sizeof(err)), OPS_PENDING);
	for (unsigned reset = 1; reset <= 2; reset++) {
		assert_true(dtest_wait_state(t, "resetty", DVM_SHUTOFF, "guest-reset"));
		assert_true(vm->restart_pending && vm->restart_reboot);
		assert_int_equal(vm->restart_delay_ms, reset == 1 ? 0 : 1000);
		if (reset == 1) {
			assert_true(wait_announced(t, "resetty", "rebooted:", 1));
			assert_true(wait_announced(t, "resetty", "stopped:", 2));
		}
	}
	assert_int_equal(ops_destroy(vm, dtest_done, &done, err, sizeof(err)), 0);
	events = dtest_events(t, "resetty");
	assert_int_equal(count(events, "rebooted:"), 1);
	assert_int_equal(count(events, "restart-pending:shutoff:guest-reset"), 1);
	assert_int_equal(count(events, "crashed:"), 0);
	free(events);
}

/* A worker killed under the daemon's eyes: no last word, so the VM crashed, "worker-died". */
static void test_worker_killed(void **state)
{
	struct dtest *t = *state;
	struct dvm *vm = define(t, "victim", NULL, VMDEF_ON_CRASH_DESTROY, false);
	struct dtest_done done = { 0 };
	char err[512], *events;

	assert_int_equal(ops_start(vm, dtest_done, &done, err, sizeof(err)), OPS_PENDING);
	assert_true(dtest_wait_done(t, &done));
	assert_int_equal(done.err, 0);
	assert_int_equal(kill(vm->worker->pid, SIGKILL), 0);
	assert_true(dtest_wait_state(t, "victim", DVM_CRASHED, "worker-died"));
	assert_null(vm->worker);
	assert_int_equal(vm->last_status, 128 + SIGKILL);
	assert_int_equal(vm->domain_id, -1);
	events = dtest_events(t, "victim");
	assert_string_equal(events, "defined:shutoff:defined starting:starting:starting "
				    "started:running:booted crashed:crashed:worker-died");
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
	struct dvm *vm = define(t, "ended", NULL, VMDEF_ON_CRASH_DESTROY, false);
	struct dtest_done done = { 0 };
	char path[256], err[512];
	int status;
	pid_t pid;

	define(t, "auto", NULL, VMDEF_ON_CRASH_DESTROY, true);
	define(t, "killed", NULL, VMDEF_ON_CRASH_DESTROY, false);
	assert_int_equal(ops_start(vm, dtest_done, &done, err, sizeof(err)), OPS_PENDING);
	assert_true(dtest_wait_done(t, &done));
	pid = vm->worker->pid;
	dtest_stop(t); /* the worker is left running, as lockstepd leaves its VMs */
	/* Stopped while no daemon watches, it tells its exit file how: "requested". */
	assert_int_equal(kill(pid, SIGTERM), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid); /* our child: nobody else reaps it now */
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
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

static bool is_scheduled(struct dtest *t, void *arg)
{
	return ((struct dvm *)arg)->scheduled;
}

static void start(struct dtest *t, struct dvm *vm)
{
	struct dtest_done done = { 0 };
	char err[512];

	assert_int_equal(ops_start(vm, dtest_done, &done, err, sizeof(err)), OPS_PENDING);
	assert_true(dtest_wait_done(t, &done));
	assert_int_equal(done.err, 0);
}

/*
 * A daemon that stops while a worker ends (a guest powering off as lockstepd quits): nothing
 * of that end reaches the VMs being freed or the scheduler, which is gone first.  The next
 * daemon re-attaches to the worker that ran on, which still obeys, and learns that the other
 * one died while nobody watched.
 */
static void test_daemon_restart(void **state)
{
	struct dtest *t = *state;
	/* In this order: the daemon lets go of "stays" before it would meet the end of "gone". */
	struct dvm *stays = define(t, "stays", NULL, VMDEF_ON_CRASH_DESTROY, false);
	struct dvm *gone = define(t, "gone", NULL, VMDEF_ON_CRASH_DESTROY, false);
	struct dtest_done done = { 0 };
	pid_t gone_pid, stays_pid;
	char err[512], *events;
	int status, id;

	start(t, stays);
	start(t, gone);
	assert_true(dtest_wait_console(t, "stays", "idle: ready cpus=1"));
	assert_true(stays->scheduled && gone->scheduled); /* the scheduler has both */
	gone_pid = gone->worker->pid;
	stays_pid = stays->worker->pid;
	id = stays->domain_id;
	/* Dead and reaped, but not yet seen by the loop: the daemon stops with its end pending. */
	assert_int_equal(kill(gone_pid, SIGKILL), 0);
	assert_int_equal(waitpid(gone_pid, NULL, 0), gone_pid);
	dtest_stop(t);
	assert_int_equal(kill(stays_pid, 0), 0); /* VMs outlive their daemon */

	assert_int_equal(dtest_start(t, 16, true), 0);
	stays = registry_find(&t->d, "stays");
	assert_int_equal(stays->state, DVM_RUNNING);
	assert_string_equal(stays->reason, "re-attached");
	assert_non_null(stays->worker);
	assert_int_equal(stays->worker->pid, stays_pid);
	assert_int_equal(stays->domain_id, id);
	gone = registry_find(&t->d, "gone");
	assert_int_equal(gone->state, DVM_CRASHED);
	assert_string_equal(gone->reason, "worker-died");
	assert_int_equal(gone->domain_id, -1);
	/* Its hello on the new connection puts it back on the scheduler. */
	assert_true(dtest_wait(t, is_scheduled, stays));

	/* The worker it re-attached to takes requests: the power button ends its guest. */
	assert_int_equal(ops_shutdown(stays, DTEST_WAIT_MS, dtest_done, &done, err, sizeof(err)),
			 OPS_PENDING);
	assert_true(dtest_wait_done(t, &done));
	assert_int_equal(done.err, 0);
	assert_int_equal(stays->state, DVM_SHUTOFF);
	assert_string_equal(stays->reason, "guest-poweroff");
	assert_null(stays->worker);
	assert_int_equal(waitpid(stays_pid, &status, 0),
			 stays_pid); /* still this process's child */
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	events = dtest_events(t, "stays");
	assert_int_equal(count(events, "stopped:shutoff:guest-poweroff"), 1);
	free(events);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_start_destroy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_restarts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_reboots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_worker_killed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_daemon_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_daemon_restart, setup, teardown),
	};

	if (!dtest_kvm())
		return 77;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
