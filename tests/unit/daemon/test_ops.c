/*
 * daemon/ops.h, every rule and every operation, on an in-process daemon whose workers are the
 * real lockstep-vm running the idle guest (dtest.h): what a definition must satisfy here
 * (validity, absolute paths, host CPUs, gang width), names and uuids, the VM cap, a system
 * error passing its errno through, which states allow what, and the operations that wait for
 * the guest — start, shutdown (and its timeout, on a guest that ignores the power button),
 * destroy, reboot, create, a start the worker refuses — ending exactly once with the right
 * errno, never from inside the call.  Pins (on the real vCPU threads) and scheduling changes,
 * live and stored.  A worker of another protocol version is vm/protocol.h's to refuse
 * (tests/unit/vm/test_protocol.c).
 */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/daemon/dtest.h"

static int setup(void **state)
{
	struct dtest *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	assert_int_equal(dtest_start(t, 3, false), 0);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	dtest_free(*state);
	return 0;
}

static unsigned host_cpus(struct dtest *t)
{
	return sched_host_cpus(&t->d.host, NULL);
}

/* Defines `def` (which it finishes) and returns its VM. */
static struct dvm *define_def(struct dtest *t, struct vmdef *def)
{
	struct dvm *vm;
	char err[512];
	bool created;

	if (ops_define(&t->d, def, 0, &vm, &created, err, sizeof(err)))
		fail_msg("define %s: %s", def->name, err);
	vmdef_fini(def);
	return vm;
}

/* Defines `name` (the idle guest with `cmdline`) and returns it. */
static struct dvm *define(struct dtest *t, const char *name, uint32_t vcpus, const char *cmdline)
{
	struct vmdef def;

	dtest_def(&def, name, vcpus, cmdline);
	return define_def(t, &def);
}

/* Expects `ret` to be -errno `want` with `needle` in the message. */
static void refused(int ret, const char *err, int want, const char *needle)
{
	assert_int_equal(ret, want);
	if (!strstr(err, needle))
		fail_msg("\"%s\" lacks \"%s\"", err, needle);
}

static void start(struct dtest *t, struct dvm *vm)
{
	struct dtest_done done = { 0 };
	char err[512];

	assert_int_equal(ops_start(vm, dtest_done, &done, err, sizeof(err)), OPS_PENDING);
	assert_int_equal(done.calls, 0); /* never from inside the call */
	assert_true(dtest_wait_done(t, &done));
	assert_int_equal(done.err, 0);
	assert_int_equal(vm->state, DVM_RUNNING);
}

static void test_definitions(void **state)
{
	struct dtest *t = *state;
	struct vmdef def;
	struct dvm *vm, *a;
	char err[512], path[128], *image;
	bool created;
	FILE *text;

	dtest_def(&def, "a", 2, NULL);
	util_strlcpy(def.uuid, "6f1c3a52-0000-4000-8000-00000000000a", sizeof(def.uuid));
	assert_int_equal(ops_define(&t->d, &def, 0, &a, &created, err, sizeof(err)), 0);
	assert_true(created);
	assert_int_equal(ops_define(&t->d, &def, 0, &vm, &created, err, sizeof(err)), 0);
	assert_false(created);
	assert_ptr_equal(vm, a);
	refused(ops_define(&t->d, &def, OPS_DEFINE_NEW, &vm, &created, err, sizeof(err)), err,
		-EEXIST, "VM a already exists");

	/* Another uuid for a, a's uuid for b. */
	util_strlcpy(def.uuid, "6f1c3a52-0000-4000-8000-00000000000b", sizeof(def.uuid));
	refused(ops_define(&t->d, &def, 0, &vm, &created, err, sizeof(err)), err, -EEXIST,
		"exists with another uuid");
	util_strlcpy(def.uuid, a->cfg.uuid, sizeof(def.uuid));
	util_strlcpy(def.name, "b", sizeof(def.name));
	refused(ops_define(&t->d, &def, 0, &vm, &created, err, sizeof(err)), err, -EEXIST,
		"VM a already exists with uuid");
	def.uuid[0] = '\0';

	/* The definition's own rules and this host's; its files beneath an allowed directory. */
	image = def.kernel;
	def.kernel = strdup("/dev/null");
	refused(ops_define(&t->d, &def, 0, &vm, &created, err, sizeof(err)), err, -EPERM,
		"is not beneath a directory lockstepd allows");
	free(def.kernel);
	snprintf(path, sizeof(path), "%s/folder", t->root);
	assert_int_equal(mkdir(path, 0755), 0);
	def.kernel = strdup(path);
	refused(ops_define(&t->d, &def, 0, &vm, &created, err, sizeof(err)), err, -EINVAL,
		"folder is not a regular file");
	free(def.kernel);
	snprintf(path, sizeof(path), "%s/text", t->root);
	text = fopen(path, "w");
	assert_non_null(text);
	fputs("a file, but no multiboot or Linux image\n", text);
	fclose(text);
	assert_int_equal(chmod(path, 0644), 0);
	def.kernel = strdup(path);
	refused(ops_define(&t->d, &def, 0, &vm, &created, err, sizeof(err)), err, -EINVAL,
		"is not a bootable image");
	free(def.kernel);
	def.kernel = strdup("guest/idle.elf");
	refused(ops_define(&t->d, &def, 0, &vm, &created, err, sizeof(err)), err, -EINVAL,
		"\"kernel\" must be an absolute path");
	free(def.kernel);
	def.kernel = image;
	def.serial_log = strdup("b.log");
	refused(ops_define(&t->d, &def, 0, &vm, &created, err, sizeof(err)), err, -EINVAL,
		"\"serial.log\" must be an absolute path");
	free(def.serial_log);
	def.serial_log = NULL;
	util_strlcpy(def.name, "-b", sizeof(def.name));
	refused(ops_define(&t->d, &def, 0, &vm, &created, err, sizeof(err)), err, -EINVAL,
		"\"name\"");
	util_strlcpy(def.name, "b", sizeof(def.name));
	def.sched.has_cpus = true;
	util_cpuset_add(&def.sched.cpus, 1000);
	refused(ops_define(&t->d, &def, 0, &vm, &created, err, sizeof(err)), err, -EINVAL,
		"names no CPU this host has");
	def.sched.has_cpus = false;
	def.vcpus = host_cpus(t) + 1;
	def.sched.policy = VMDEF_SCHED_GANG;
	refused(ops_define(&t->d, &def, 0, &vm, &created, err, sizeof(err)), err, -E2BIG,
		"\"relaxed\" or \"adaptive\"");
	assert_int_equal(registry_count(&t->d), 1); /* nothing refused was defined */
	assert_null(registry_find(&t->d, "b"));
	def.vcpus = host_cpus(t);
	assert_int_equal(ops_define(&t->d, &def, 0, &vm, &created, err, sizeof(err)), 0);
	vmdef_fini(&def);
}

static void test_cap_and_system_errors(void **state)
{
	struct dtest *t = *state;
	char path[128], away[140], err[512];
	struct vmdef def;
	struct dvm *vm;
	bool created;

	define(t, "one", 1, NULL);
	define(t, "two", 1, NULL);
	define(t, "three", 1, NULL);
	dtest_def(&def, "four", 1, NULL);
	refused(ops_define(&t->d, &def, 0, &vm, &created, err, sizeof(err)), err, -EUSERS,
		"at most 3 VMs may be defined");
	/* A store that cannot write is a system error with its own errno. */
	ops_undefine(registry_find(&t->d, "three"), 0, err, sizeof(err));
	snprintf(path, sizeof(path), "%s/state/vms", t->root);
	snprintf(away, sizeof(away), "%s.away", path);
	assert_int_equal(rename(path, away), 0);
	assert_int_equal(symlink("/proc/version", path), 0);
	refused(ops_define(&t->d, &def, 0, &vm, &created, err, sizeof(err)), err, -ENOTDIR,
		"cannot store the definition of four: Not a directory");
	vmdef_fini(&def);
}

static void test_lifecycle(void **state)
{
	struct dtest *t = *state;
	struct dvm *vm = define(t, "life", 2, NULL);
	struct dtest_done done = { 0 };
	char err[512], *events;

	refused(ops_shutdown(vm, 1000, dtest_done, &done, err, sizeof(err)), err, -EBUSY,
		"VM life is shutoff, not running");
	refused(ops_destroy(vm, dtest_done, &done, err, sizeof(err)), err, -EBUSY,
		"VM life is not running");
	start(t, vm);
	assert_int_equal(vm->worker->nr_vcpus, 2);
	refused(ops_start(vm, dtest_done, &done, err, sizeof(err)), err, -EBUSY,
		"VM life is already running");
	refused(ops_undefine(vm, 0, err, sizeof(err)), err, -EBUSY,
		"VM life is running: destroy or shut it down first");
	/* As long as the test waits: the guest's answer to the button is no matter of time. */
	assert_int_equal(ops_shutdown(vm, DTEST_WAIT_MS, dtest_done, &done, err, sizeof(err)),
			 OPS_PENDING);
	assert_true(dtest_wait_done(t, &done));
	assert_int_equal(done.err, 0);
	assert_int_equal(done.calls, 1);
	assert_int_equal(vm->state, DVM_SHUTOFF);
	assert_string_equal(vm->reason, "guest-poweroff");
	events = dtest_events(t, "life");
	assert_string_equal(events, "defined:shutoff:defined starting:starting:starting "
				    "started:running:booted stopping:stopping:shutdown "
				    "stopped:shutoff:guest-poweroff");
	free(events);
	assert_int_equal(ops_undefine(vm, 0, err, sizeof(err)), 0);
	assert_null(registry_find(&t->d, "life"));
}

static void test_shutdown_timeout(void **state)
{
	struct dtest *t = *state;
	struct dvm *vm = define(t, "deaf", 1, "ignore_power=1");
	struct dtest_done done = { 0 };
	char err[512];

	start(t, vm);
	assert_int_equal(ops_shutdown(vm, 100, dtest_done, &done, err, sizeof(err)), OPS_PENDING);
	assert_true(dtest_wait_done(t, &done));
	refused(done.err, done.message, -ETIMEDOUT, "did not shut down in time");
	assert_int_equal(vm->state, DVM_RUNNING);
	assert_string_equal(vm->reason, "shutdown-timeout");
	/* The guest got the press and ignored it: the timeout is its doing. */
	assert_true(dtest_wait_console(t, "deaf", "idle: power button ignored"));
	assert_int_equal(vm->state, DVM_RUNNING);
	done = (struct dtest_done){ 0 };
	assert_int_equal(ops_destroy(vm, dtest_done, &done, err, sizeof(err)), OPS_PENDING);
	assert_true(dtest_wait_done(t, &done));
	assert_int_equal(done.err, 0);
	assert_int_equal(vm->state, DVM_SHUTOFF);
	assert_string_equal(vm->reason, "destroyed");
}

/* An image the daemon cannot judge and the worker refuses (exit status 65, before its hello). */
static void test_start_fails(void **state)
{
	struct dtest *t = *state;
	struct dtest_done done = { 0 };
	char err[512], path[PATH_MAX], *log;
	struct vmdef def;
	struct dvm *vm;
	size_t len;

	dtest_def_unbootable(t, &def, "broken");
	def.on_crash = VMDEF_ON_CRASH_RESTART; /* which a failed start must not trigger */
	vm = define_def(t, &def);
	assert_int_equal(ops_start(vm, dtest_done, &done, err, sizeof(err)), OPS_PENDING);
	assert_int_equal(done.calls, 0);
	assert_true(dtest_wait_done(t, &done));
	assert_int_equal(done.calls, 1);
	/* The worker's own error line from its log, its exit file's reason; failed, not crashed:
	 * nothing ran, so on_crash does not apply. */
	refused(done.err, done.message, -ECHILD,
		"VM broken did not start: lockstep-vm[broken]: error: kernel ");
	refused(done.err, done.message, -ECHILD,
		"the image requires multiboot features 0x8 that lockstep does not provide (exit "
		"status 65)");
	assert_int_equal(vm->state, DVM_FAILED);
	assert_string_equal(vm->reason, "error");
	assert_non_null(strstr(vm->error, "requires multiboot features 0x8"));
	assert_int_equal(vm->last_status, 65);
	assert_null(vm->worker);
	assert_false(vm->restart_pending);
	/* And its log, which the message names, says what is wrong with the image. */
	snprintf(path, sizeof(path), "%s/run/vms/broken.log", t->root);
	assert_true(strstr(done.message, path) != NULL);
	assert_int_equal(util_read_file(path, 1 << 20, &log, &len), 0);
	if (!strstr(log, "requires multiboot features 0x8"))
		fail_msg("the worker's log lacks the reason: %s", log);
	free(log);
	/* A failed start whose worker is gone is forgotten at once. */
	assert_int_equal(ops_destroy(vm, dtest_done, &done, err, sizeof(err)), 0);
	assert_int_equal(vm->state, DVM_SHUTOFF);
	assert_string_equal(vm->reason, "destroyed");
}

static void test_create(void **state)
{
	struct dtest *t = *state;
	struct dtest_done done = { 0 };
	struct vmdef def;
	struct dvm *vm;
	char err[512];

	dtest_def_unbootable(t, &def, "once");
	assert_int_equal(ops_create(&t->d, &def, dtest_done, &done, &vm, err, sizeof(err)),
			 OPS_PENDING);
	assert_true(dtest_wait_done(t, &done));
	assert_int_equal(done.err, -ECHILD);
	assert_null(registry_find(&t->d, "once")); /* it never ran: gone */
	vmdef_fini(&def);

	dtest_def(&def, "temp", 1, NULL);
	done = (struct dtest_done){ 0 };
	assert_int_equal(ops_create(&t->d, &def, dtest_done, &done, &vm, err, sizeof(err)),
			 OPS_PENDING);
	assert_true(dtest_wait_done(t, &done));
	assert_int_equal(done.err, 0);
	assert_true(vm->transient);
	refused(ops_create(&t->d, &def, dtest_done, &done, &vm, err, sizeof(err)), err, -EEXIST,
		"VM temp already exists");
	refused(ops_undefine(vm, OPS_UNDEFINE_WHEN_STOPPED, err, sizeof(err)), err, -EBUSY,
		"transient");
	refused(ops_set_autostart(vm, true, err, sizeof(err)), err, -EBUSY, "transient");
	done = (struct dtest_done){ 0 };
	assert_int_equal(ops_destroy(vm, dtest_done, &done, err, sizeof(err)), OPS_PENDING);
	assert_true(dtest_wait_done(t, &done));
	assert_null(registry_find(&t->d, "temp")); /* transient: gone when it stopped */
	vmdef_fini(&def);
}

static void test_undefine_when_stopped(void **state)
{
	struct dtest *t = *state;
	struct dvm *vm = define(t, "going", 1, NULL);
	struct dtest_done done = { 0 };
	char err[512];

	start(t, vm);
	assert_int_equal(ops_undefine(vm, OPS_UNDEFINE_WHEN_STOPPED, err, sizeof(err)), 0);
	assert_true(vm->transient);
	assert_int_equal(ops_destroy(vm, dtest_done, &done, err, sizeof(err)), OPS_PENDING);
	assert_true(dtest_wait_done(t, &done));
	assert_null(registry_find(&t->d, "going"));
}

static void test_reboot(void **state)
{
	struct dtest *t = *state;
	struct dvm *vm = define(t, "again", 1, NULL);
	struct dtest_done done = { 0 };
	int first_id;
	char err[512];

	refused(ops_reboot(vm, dtest_done, &done, err, sizeof(err)), err, -EBUSY,
		"VM again is shutoff, not running");
	start(t, vm);
	first_id = vm->domain_id;
	assert_int_equal(ops_reboot(vm, dtest_done, &done, err, sizeof(err)), OPS_PENDING);
	assert_true(dtest_wait_done(t, &done));
	assert_int_equal(done.err, 0);
	assert_int_equal(vm->state, DVM_RUNNING);
	assert_true(vm->domain_id > first_id);
	assert_false(vm->transient);
}

static void test_pin(void **state)
{
	struct dtest *t = *state;
	struct dvm *vm = define(t, "pinned", 2, NULL);
	struct util_cpuset cpus = { { 0 } }, none = { { 0 } };
	bool live, stored;
	cpu_set_t set;
	char err[512];

	util_cpuset_add(&cpus, 0);
	refused(ops_pin(vm, 2, &cpus, 0, &live, &stored, err, sizeof(err)), err, -ERANGE,
		"VM pinned has 2 vCPUs (0-1)");
	refused(ops_pin(vm, 0, &none, 0, &live, &stored, err, sizeof(err)), err, -ERANGE,
		"to no CPU");
	util_cpuset_add(&cpus, 1000);
	refused(ops_pin(vm, 0, &cpus, 0, &live, &stored, err, sizeof(err)), err, -ERANGE,
		"host CPU 1000 does not exist");
	memset(&cpus, 0, sizeof(cpus));
	util_cpuset_add(&cpus, 0);
	refused(ops_pin(vm, 0, &cpus, OPS_AFFECT_LIVE, &live, &stored, err, sizeof(err)), err,
		-EBUSY, "not running");
	assert_int_equal(ops_pin(vm, 1, &cpus, 0, &live, &stored, err, sizeof(err)), 0);
	assert_true(stored && !live);
	assert_int_equal(vm->cfg.sched.nr_pins, 1);
	assert_int_equal(vm->cfg.sched.pins[0].vcpu, 1);

	start(t, vm);
	assert_int_equal(ops_pin(vm, 0, &cpus, 0, &live, &stored, err, sizeof(err)), 0);
	assert_true(live && !stored);
	assert_int_equal(sched_getaffinity(vm->worker->tids[0], sizeof(set), &set), 0);
	assert_true(CPU_ISSET(0, &set));
	assert_int_equal(CPU_COUNT(&set), 1);
}

static void test_set_sched(void **state)
{
	struct dtest *t = *state;
	struct dvm *vm = define(t, "wide", host_cpus(t) + 1, NULL);
	struct vmdef_sched now;
	bool live, stored;
	char err[512];

	refused(ops_set_sched(vm, VMDEF_SCHED_GANG, 0, 0, 0, &now, &live, &stored, err,
			      sizeof(err)),
		err, -E2BIG, "\"relaxed\" or \"adaptive\"");
	assert_int_equal(vm->cfg.sched.policy, VMDEF_SCHED_HOST);
	refused(ops_set_sched(vm, VMDEF_SCHED_RELAXED, 50, 0, 0, &now, &live, &stored, err,
			      sizeof(err)),
		err, -EINVAL, "\"sched.quantum_us\" must be between 100 and 1000000");
	refused(ops_set_sched(vm, VMDEF_SCHED_RELAXED, 0, 0, OPS_AFFECT_LIVE, &now, &live, &stored,
			      err, sizeof(err)),
		err, -EBUSY, "not running");
	assert_int_equal(ops_set_sched(vm, VMDEF_SCHED_RELAXED, 0, 500, 0, &now, &live, &stored,
				       err, sizeof(err)),
			 0);
	assert_true(stored && !live);
	assert_int_equal(now.policy, VMDEF_SCHED_RELAXED);
	assert_int_equal(now.skew_us, 500);
	assert_int_equal(vm->cfg.sched.policy, VMDEF_SCHED_RELAXED);
	assert_int_equal(vm->cfg.sched.skew_us, 500);
}

static void test_autostart(void **state)
{
	struct dtest *t = *state;
	struct dvm *vm = define(t, "auto", 1, NULL);
	struct vmdef def;
	char err[512];
	bool created;

	assert_int_equal(ops_set_autostart(vm, true, err, sizeof(err)), 0);
	assert_true(vm->cfg.autostart);
	/* A redefinition from libvirt XML, which carries no autostart, keeps it... */
	dtest_def(&def, "auto", 2, NULL);
	assert_int_equal(
		ops_define(&t->d, &def, OPS_DEFINE_KEEP_AUTOSTART, &vm, &created, err, sizeof(err)),
		0);
	assert_true(vm->cfg.autostart);
	assert_int_equal(vm->cfg.vcpus, 2);
	/* ...one from JSON says what it wants. */
	assert_int_equal(ops_define(&t->d, &def, 0, &vm, &created, err, sizeof(err)), 0);
	assert_false(vm->cfg.autostart);
	vmdef_fini(&def);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_definitions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cap_and_system_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_undefine_when_stopped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reboot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_sched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_autostart, setup, teardown),
	};

	if (!dtest_kvm())
		return 77;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
