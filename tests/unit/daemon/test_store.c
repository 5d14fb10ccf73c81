/*
 * The daemon's store (daemon/store.c), on a struct daemon that has only its options and log:
 * atomic writes (the content, no temporary file left, an unwritable place an errno), stored
 * definitions saved, loaded back through the callback (broken, invalid and misnamed files
 * skipped), and removed, the runtime record and the exit file of a worker, and the run
 * directory's paths and their removal.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

#include "daemon/daemon.h"

struct fixture {
	struct daemon d;
	struct dvm vm; /* just its definition and daemon: what paths are made of */
	char root[64];
	char loaded[4][64];
	unsigned nr_loaded;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->root, sizeof(f->root), "/tmp/lockstep-store-XXXXXX");
	assert_non_null(mkdtemp(f->root));
	snprintf(f->d.opts.run_dir, sizeof(f->d.opts.run_dir), "%s/run", f->root);
	snprintf(f->d.opts.state_dir, sizeof(f->d.opts.state_dir), "%s/state", f->root);
	util_log_init(&f->d.log, "store-test", UTIL_LOG_ERROR, 2);
	assert_int_equal(store_init(&f->d), 0);
	vmdef_init(&f->vm.cfg);
	util_strlcpy(f->vm.cfg.name, "web-1", sizeof(f->vm.cfg.name));
	f->vm.cfg.kernel = strdup("/srv/k.elf");
	f->vm.d = &f->d;
	*state = f;
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vmdef_fini(&f->vm.cfg);
	nftw(f->root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static char *slurp(const char *path)
{
	char *text;
	size_t len;

	return util_read_file(path, 1 << 20, &text, &len) ? NULL : text;
}

static void test_write_atomic(void **state)
{
	struct fixture *f = *state;
	json_t *json = json_pack("{s:i}", "a", 1);
	char path[128], tmp[160], *text;

	snprintf(path, sizeof(path), "%s/x.json", f->root);
	assert_int_equal(store_write_atomic(path, json), 0);
	text = slurp(path);
	assert_non_null(text);
	assert_string_equal(text, "{\n  \"a\": 1\n}\n");
	free(text);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_int_equal(access(tmp, F_OK), -1);
	snprintf(path, sizeof(path), "%s/missing/x.json", f->root);
	assert_int_equal(store_write_atomic(path, json), -ENOENT);
	json_decref(json);
}

static int loaded(struct daemon *d, const struct vmdef *def)
{
	struct fixture *f = util_container_of(d, struct fixture, d);

	util_strlcpy(f->loaded[f->nr_loaded++], def->name, sizeof(f->loaded[0]));
	return strcmp(def->name, "refused") == 0 ? -EEXIST : 0;
}

static void put(struct fixture *f, const char *file, const char *text)
{
	char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/state/vms/%s", f->root, file);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void test_definitions(void **state)
{
	struct fixture *f = *state;
	char path[256];

	assert_int_equal(store_save_definition(&f->d, &f->vm.cfg), 0);
	put(f, "broken.json", "{\"name\": ");
	put(f, "invalid.json", "{\"name\": \"invalid\"}"); /* no kernel */
	put(f, "misnamed.json", "{\"name\": \"other\", \"kernel\": \"/k\"}");
	put(f, "refused.json", "{\"name\": \"refused\", \"kernel\": \"/k\"}");
	put(f, "notes.txt", "not a definition");
	store_load_definitions(&f->d, loaded);
	assert_int_equal(f->nr_loaded, 2); /* web-1, and refused which the callback refused */
	assert_true(strcmp(f->loaded[0], "web-1") == 0 || strcmp(f->loaded[1], "web-1") == 0);
	assert_int_equal(store_remove_definition(&f->d, "web-1"), 0);
	snprintf(path, sizeof(path), "%s/state/vms/web-1.json", f->root);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(store_remove_definition(&f->d, "web-1"), 0); /* gone is fine */
}

static void test_runtime(void **state)
{
	struct fixture *f = *state;
	struct store_runtime rec = {
		.pid = 4242, .start_ticks = 1234567, .domain_id = 7, .started = 1700000000
	};
	struct store_runtime back;
	enum vm_stop_reason reason;
	char path[256];
	int status, syscall, fd;

	assert_int_equal(store_read_runtime(&f->vm, &back), -ENOENT);
	assert_int_equal(store_save_runtime(&f->vm, &rec), 0);
	assert_int_equal(store_read_runtime(&f->vm, &back), 0);
	assert_int_equal(back.pid, rec.pid);
	assert_int_equal(back.start_ticks, rec.start_ticks);
	assert_int_equal(back.domain_id, rec.domain_id);
	assert_int_equal(back.started, rec.started);
	store_remove_runtime(&f->vm);
	assert_int_equal(store_read_runtime(&f->vm, &back), -ENOENT);

	assert_int_equal(store_read_exit(&f->vm, &reason, &status, &syscall), -ENOENT);
	store_run_path(&f->vm, ".exit", path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(vm_proto_exit_write_fd(fd, VM_STOP_GUEST_CRASH, 80), 0);
	close(fd);
	assert_int_equal(store_read_exit(&f->vm, &reason, &status, &syscall), 0);
	assert_int_equal(reason, VM_STOP_GUEST_CRASH);
	assert_int_equal(status, 80);
	assert_int_equal(syscall, -1);
}

static void test_paths(void **state)
{
	struct fixture *f = *state;
	char path[256], want[256];

	store_run_path(&f->vm, ".ctl", path, sizeof(path));
	snprintf(want, sizeof(want), "%s/run/vms/web-1.ctl", f->root);
	assert_string_equal(path, want);
	store_console_path(&f->vm, path, sizeof(path));
	snprintf(want, sizeof(want), "%s/run/vms/web-1.console", f->root);
	assert_string_equal(path, want);
	/* A client-chosen log is the worker's to write; lockstepd reads only its own copy. */
	f->vm.cfg.serial_log = strdup("/var/log/web-1.log");
	assert_string_equal(store_console_path(&f->vm, path, sizeof(path)), want);

	store_run_path(&f->vm, ".log", path, sizeof(path));
	fclose(fopen(path, "w"));
	store_run_path(&f->vm, ".def.json", path, sizeof(path));
	fclose(fopen(path, "w"));
	store_remove_run_files(&f->vm);
	assert_int_equal(access(path, F_OK), -1);
	store_run_path(&f->vm, ".log", path, sizeof(path));
	assert_int_equal(access(path, F_OK), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_atomic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_definitions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_runtime, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paths, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
