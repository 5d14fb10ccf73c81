/*
 * Persistence.  Definitions live in STATE_DIR/vms/NAME.json and survive reboots; what belongs
 * to a running VM lives in RUN_DIR/vms/ (NAME.run: the worker's pid and start time; NAME.ctl:
 * its control socket; NAME.exit: how it ended, written by the worker itself; NAME.console and
 * NAME.log: its serial output and its own log) and survives daemon restarts, not reboots.
 *
 * Every file is written atomically (temp file, fsync, rename, fsync of the directory), so a
 * crash at any moment leaves either the old or the new version.  Loop thread only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/daemon.h"

int store_init(struct daemon *d)
{
	char path[PATH_MAX];
	int ret;

	snprintf(path, sizeof(path), "%s/vms", d->opts.state_dir);
	ret = util_mkdir_p(path, 0700);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "%s/vms", d->opts.run_dir);
	return util_mkdir_p(path, 0700);
}

static int fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	char *slash;
	int fd, ret = 0;

	if (util_strlcpy(dir, path, sizeof(dir)))
		return -ENAMETOOLONG;
	slash = strrchr(dir, '/');
	if (!slash)
		return 0;
	*slash = '\0';
	fd = open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int store_write_atomic(const char *path, const json_t *json)
{
	char tmp[PATH_MAX];
	char *text;
	size_t len, off = 0;
	int fd, ret = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	text = json_dumps(json, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!text)
		return -ENOMEM;
	len = strlen(text);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			break;
		}
		off += (size_t)n;
	}
	if (!ret && (write(fd, "\n", 1) != 1 || fsync(fd) < 0))
		ret = -errno;
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret)
		unlink(tmp);
	else
		ret = fsync_dir_of(path);
out:
	free(text);
	return ret;
}

static void definition_path(struct daemon *d, const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/vms/%s.json", d->opts.state_dir, name);
}

int store_save_definition(struct daemon *d, const struct vmdef *cfg)
{
	char path[PATH_MAX];
	json_t *json = vmdef_to_json(cfg);
	int ret;

	if (!json)
		return -ENOMEM;
	definition_path(d, cfg->name, path, sizeof(path));
	ret = store_write_atomic(path, json);
	json_decref(json);
	return ret;
}

int store_remove_definition(struct daemon *d, const char *name)
{
	char path[PATH_MAX];

	definition_path(d, name, path, sizeof(path));
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return fsync_dir_of(path);
}

static void load_one(struct daemon *d, const char *dir, const char *file)
{
	char path[PATH_MAX + 256], err[PATH_MAX + 512];
	struct vmdef cfg;
	size_t stem = strlen(file) - 5; /* ".json" */
	struct dvm *vm;
	int ret;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	vmdef_init(&cfg);
	ret = vmdef_load(&cfg, path, err, sizeof(err));
	if (!ret)
		ret = vmdef_validate(&cfg, err, sizeof(err));
	if (!ret && (strlen(cfg.name) != stem || strncmp(cfg.name, file, stem) != 0)) {
		snprintf(err, sizeof(err), "%s: defines VM \"%s\", not \"%.*s\"", path, cfg.name,
			 (int)stem, file);
		ret = -EINVAL;
	}
	if (!ret) {
		ret = registry_define(d, &cfg, &vm);
		if (ret)
			snprintf(err, sizeof(err), "%s: %s", path, strerror(-ret));
	}
	if (ret)
		util_log(&d->log, UTIL_LOG_ERROR, "skipping a stored definition: %s", err);
	vmdef_fini(&cfg);
}

int store_load_definitions(struct daemon *d)
{
	char dir[PATH_MAX];
	struct dirent *de;
	DIR *dp;

	snprintf(dir, sizeof(dir), "%s/vms", d->opts.state_dir);
	dp = opendir(dir);
	if (!dp)
		return -errno;
	while ((de = readdir(dp))) {
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.' || len <= 5 || strcmp(de->d_name + len - 5, ".json"))
			continue;
		load_one(d, dir, de->d_name);
	}
	closedir(dp);
	return 0;
}

int store_save_runtime(struct dvm *vm)
{
	char path[PATH_MAX];
	json_t *rec;
	int ret;

	if (!vm->worker)
		return 0;
	rec = json_pack("{s:i, s:I, s:i, s:I}", "pid", (int)vm->worker->pid, "start_ticks",
			(json_int_t)vm->worker->start_ticks, "domain_id", vm->domain_id, "started",
			(json_int_t)vm->started_realtime);
	if (!rec)
		return -ENOMEM;
	dvm_run_path(vm, ".run", path, sizeof(path));
	ret = store_write_atomic(path, rec);
	json_decref(rec);
	return ret;
}

void store_remove_runtime(struct dvm *vm)
{
	char path[PATH_MAX];

	dvm_run_path(vm, ".run", path, sizeof(path));
	unlink(path);
}

int store_read_exit(struct dvm *vm, enum vm_stop_reason *reason, int *status)
{
	char path[PATH_MAX];

	dvm_run_path(vm, ".exit", path, sizeof(path));
	return vm_proto_exit_read(path, reason, status);
}

/* How a worker that ended while no daemon watched it went: its exit file, if it wrote one. */
static void recover_ended(struct dvm *vm)
{
	enum vm_stop_reason reason;
	int status;

	if (store_read_exit(vm, &reason, &status) == 0) {
		vm->last_status = status;
		dvm_set_state(vm, vm_stop_reason_is_crash(reason) ? DVM_CRASHED : DVM_SHUTOFF,
			      vm_stop_reason_name(reason));
	} else {
		/* No last word: it was killed while we were away. */
		dvm_set_state(vm, DVM_CRASHED, "worker-died");
	}
	store_remove_runtime(vm);
}

void store_recover_runtime(struct daemon *d)
{
	struct util_list *pos;

	util_list_for_each(pos, &d->vms) {
		struct dvm *vm = util_container_of(pos, struct dvm, link);
		char path[PATH_MAX];
		json_t *rec;
		int pid, ret;

		dvm_run_path(vm, ".run", path, sizeof(path));
		rec = json_load_file(path, 0, NULL);
		if (!rec)
			continue;
		pid = (int)json_integer_value(json_object_get(rec, "pid"));
		vm->domain_id = (int)json_integer_value(json_object_get(rec, "domain_id"));
		vm->started_realtime =
			(uint64_t)json_integer_value(json_object_get(rec, "started"));
		if (vm->domain_id >= d->next_domain_id)
			d->next_domain_id = vm->domain_id + 1;
		ret = pid > 1 ? worker_attach(vm, pid,
					      (uint64_t)json_integer_value(
						      json_object_get(rec, "start_ticks"))) :
				-ESRCH;
		json_decref(rec);
		if (ret == 0) {
			util_log(&d->log, UTIL_LOG_INFO, "re-attached to VM %s (worker pid %d)",
				 vm->cfg.name, pid);
			continue;
		}
		vm->domain_id = -1;
		recover_ended(vm);
	}
}
