/*
 * Persistence.  Definitions live in STATE_DIR/vms/NAME.json and survive reboots; what belongs
 * to a running VM lives in RUN_DIR/vms/ (NAME.run: the worker's pid and start time; NAME.ctl:
 * its control socket; NAME.exit: how it ended, written by the worker itself; NAME.console and
 * NAME.log: its serial output and its own log) and survives daemon restarts, not reboots.
 *
 * Every file is written atomically (temp file, fsync, rename, fsync of the directory), so a
 * crash at any moment leaves either the old or the new version.  Both directories must be
 * lockstepd's own and writable by no one else (store_init), and nothing in them is opened
 * through a symbolic link.  Only files: what they mean
 * for the VMs is the registry's.  Loop thread only.
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

/*
 * A directory lockstepd keeps its files in must be its own user's and writable by no one else:
 * what lies there is believed (a NAME.run names the process destroy kills; a log or console
 * is opened by its name), so another user able to plant files there would choose.  `follow`:
 * the administrator's own path may be a symbolic link (/var/run -> /run); what it leads to is
 * checked.  The directories below it never are.
 */
static int check_dir(struct daemon *d, const char *path, bool follow)
{
	struct stat st;

	if ((follow ? stat(path, &st) : lstat(path, &st)) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode)) {
		util_log(&d->log, UTIL_LOG_ERROR, "%s is not a directory", path);
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		util_log(
			&d->log, UTIL_LOG_ERROR,
			"%s belongs to uid %u and has mode %04o: lockstepd keeps its files only in "
			"a directory of its own user (uid %u) that no one else may write to",
			path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
			(unsigned)geteuid());
		return -EPERM;
	}
	return 0;
}

int store_init(struct daemon *d)
{
	const char *const dirs[] = { d->opts.state_dir, d->opts.run_dir };
	char path[PATH_MAX];
	int ret;

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/vms", dirs[i]);
		ret = util_mkdir_p(path, 0700);
		if (!ret)
			ret = check_dir(d, dirs[i], true);
		if (!ret)
			ret = check_dir(d, path, false);
		if (ret)
			return ret;
	}
	return 0;
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
	/* A new file: whatever lies at its name (a link left there) is replaced, never followed. */
	if (unlink(tmp) < 0 && errno != ENOENT) {
		ret = -errno;
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
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

static void load_one(struct daemon *d, const char *dir, const char *file, store_definition_fn fn)
{
	char path[PATH_MAX + 256], err[PATH_MAX + 512];
	struct vmdef def;
	size_t stem = strlen(file) - 5; /* ".json" */
	int ret;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	vmdef_init(&def);
	ret = vmdef_load(&def, path, err, sizeof(err));
	if (!ret)
		ret = vmdef_validate(&def, err, sizeof(err));
	if (!ret && (strlen(def.name) != stem || strncmp(def.name, file, stem) != 0)) {
		snprintf(err, sizeof(err), "%s: defines VM \"%s\", not \"%.*s\"", path, def.name,
			 (int)stem, file);
		ret = -EINVAL;
	}
	if (!ret) {
		ret = fn(d, &def);
		if (ret)
			snprintf(err, sizeof(err), "%s: %s", path, strerror(-ret));
	}
	if (ret)
		util_log(&d->log, UTIL_LOG_ERROR, "skipping a stored definition: %s", err);
	vmdef_fini(&def);
}

void store_load_definitions(struct daemon *d, store_definition_fn fn)
{
	char dir[PATH_MAX];
	struct dirent *de;
	DIR *dp;

	snprintf(dir, sizeof(dir), "%s/vms", d->opts.state_dir);
	dp = opendir(dir);
	if (!dp) {
		util_log(&d->log, UTIL_LOG_ERROR, "cannot read %s: %s", dir, strerror(errno));
		return;
	}
	while ((de = readdir(dp))) {
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.' || len <= 5 || strcmp(de->d_name + len - 5, ".json"))
			continue;
		load_one(d, dir, de->d_name, fn);
	}
	closedir(dp);
}

void store_run_path(const struct dvm *vm, const char *suffix, char *buf, size_t size)
{
	snprintf(buf, size, "%s/vms/%s%s", vm->d->opts.run_dir, vm->cfg.name, suffix);
}

/* lockstepd's copy, whatever serial.log says: the daemon never opens a client's file. */
const char *store_console_path(const struct dvm *vm, char *buf, size_t size)
{
	store_run_path(vm, ".console", buf, size);
	return buf;
}

int store_save_runtime(const struct dvm *vm, const struct store_runtime *rec)
{
	char path[PATH_MAX];
	json_t *json;
	int ret;

	json = json_pack("{s:i, s:I, s:i, s:I, s:O?}", "pid", (int)rec->pid, "start_ticks",
			 (json_int_t)rec->start_ticks, "domain_id", rec->domain_id, "started",
			 (json_int_t)rec->started, "devices", rec->devices);
	if (!json)
		return -ENOMEM;
	store_run_path(vm, ".run", path, sizeof(path));
	ret = store_write_atomic(path, json);
	json_decref(json);
	return ret;
}

int store_read_runtime(const struct dvm *vm, struct store_runtime *rec)
{
	char path[PATH_MAX];
	json_t *json;
	int fd;

	store_run_path(vm, ".run", path, sizeof(path));
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -ENOENT;
	json = json_loadfd(fd, 0, NULL);
	close(fd);
	if (!json)
		return -ENOENT;
	*rec = (struct store_runtime){
		.pid = (pid_t)json_integer_value(json_object_get(json, "pid")),
		.start_ticks = (uint64_t)json_integer_value(json_object_get(json, "start_ticks")),
		.domain_id = (int)json_integer_value(json_object_get(json, "domain_id")),
		.started = (uint64_t)json_integer_value(json_object_get(json, "started")),
		.devices = json_incref(json_object_get(json, "devices")),
	};
	json_decref(json);
	return 0;
}

void store_remove_runtime(const struct dvm *vm)
{
	char path[PATH_MAX];

	store_run_path(vm, ".run", path, sizeof(path));
	unlink(path);
}

int store_read_exit(const struct dvm *vm, enum vm_stop_reason *reason, int *status, int *syscall)
{
	char path[PATH_MAX];

	store_run_path(vm, ".exit", path, sizeof(path));
	return vm_proto_exit_read(path, reason, status, syscall);
}

void store_remove_run_files(const struct dvm *vm)
{
	static const char *const suffixes[] = { ".console", ".log", ".def.json",
						".exit",    ".run", ".ctl" };
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		store_run_path(vm, suffixes[i], path, sizeof(path));
		unlink(path);
	}
}
