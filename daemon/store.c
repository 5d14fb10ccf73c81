/*
 * Persistence.  Definitions live in STATE_DIR/vms/NAME.json and survive reboots; what belongs
 * to a running VM lives in RUN_DIR/vms/ (NAME.run: the worker's pid and start time; NAME.ctl:
 * its control socket; NAME.cons: its console socket; NAME.def.json: the definition it runs, live changes included;
 * NAME.exit: how it ended, written by the worker itself; NAME.console and NAME.log: its
 * serial output and its own log; NAME.state: how a VM that does not run last ended) and
 * survives daemon restarts, not reboots.
 *
 * The logs are appended run after run, each run opened by a marker line, so a crash's
 * evidence outlives the restart that follows it; past a bound a log is moved aside to
 * NAME.log.1 (NAME.console.1) at the next start, one generation.
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
#include <time.h>
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

#define WORKER_LOG_BOUND (4ull << 20)
#define CONSOLE_LOG_BOUND (16ull << 20)
#define ERROR_SCAN_MAX (64u << 10)

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

	json = json_pack("{s:i, s:I, s:i, s:I, s:I, s:I, s:O?}", "pid", (int)rec->pid,
			 "start_ticks", (json_int_t)rec->start_ticks, "domain_id", rec->domain_id,
			 "started", (json_int_t)rec->started, "console_start",
			 (json_int_t)rec->console_start, "log_start", (json_int_t)rec->log_start,
			 "devices", rec->devices);
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
		.console_start =
			(uint64_t)json_integer_value(json_object_get(json, "console_start")),
		.log_start = (uint64_t)json_integer_value(json_object_get(json, "log_start")),
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
	static const char *const suffixes[] = { ".console",  ".console.1", ".log", ".log.1",
						".def.json", ".exit",	   ".run", ".ctl",
						".state",    ".cons" };
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		store_run_path(vm, suffixes[i], path, sizeof(path));
		unlink(path);
	}
}

int store_save_status(const struct dvm *vm, const struct store_status *st)
{
	char path[PATH_MAX];
	json_t *json;
	int ret;

	json = json_pack("{s:s, s:s, s:i, s:s, s:I, s:I}", "state", st->state, "reason", st->reason,
			 "last_status", st->last_status, "error", st->error, "console_start",
			 (json_int_t)st->console_start, "log_start", (json_int_t)st->log_start);
	if (!json)
		return -ENOMEM;
	store_run_path(vm, ".state", path, sizeof(path));
	ret = store_write_atomic(path, json);
	json_decref(json);
	return ret;
}

int store_read_status(const struct dvm *vm, struct store_status *st)
{
	char path[PATH_MAX];
	const char *state, *reason, *error;
	json_t *json;
	int ret = 0;

	store_run_path(vm, ".state", path, sizeof(path));
	json = json_load_file(path, 0, NULL);
	if (!json)
		return -ENOENT;
	state = json_string_value(json_object_get(json, "state"));
	reason = json_string_value(json_object_get(json, "reason"));
	error = json_string_value(json_object_get(json, "error"));
	*st = (struct store_status){
		.last_status = (int)json_integer_value(json_object_get(json, "last_status")),
		.console_start =
			(uint64_t)json_integer_value(json_object_get(json, "console_start")),
		.log_start = (uint64_t)json_integer_value(json_object_get(json, "log_start")),
	};
	if (!state || !reason) {
		ret = -ENOENT;
	} else {
		util_strlcpy(st->state, state, sizeof(st->state));
		util_strlcpy(st->reason, reason, sizeof(st->reason));
		util_strlcpy(st->error, error ? error : "", sizeof(st->error));
	}
	json_decref(json);
	return ret;
}

int store_save_live(const struct dvm *vm)
{
	char path[PATH_MAX];
	json_t *json;
	int ret;

	if (!vm->live)
		return -ENOENT;
	json = vmdef_to_json(vm->live);
	if (!json)
		return -ENOMEM;
	store_run_path(vm, ".def.json", path, sizeof(path));
	ret = store_write_atomic(path, json);
	json_decref(json);
	return ret;
}

int store_read_live(const struct dvm *vm, struct vmdef *def)
{
	char path[PATH_MAX], err[256];
	int ret;

	store_run_path(vm, ".def.json", path, sizeof(path));
	vmdef_init(def);
	ret = vmdef_load(def, path, err, sizeof(err));
	if (!ret)
		ret = vmdef_validate(def, err, sizeof(err));
	if (ret) {
		vmdef_fini(def);
		return ret;
	}
	return 0;
}

/* Moves `path` to `path`.1 if it is over `bound`; the size of what remains at `path`. */
static uint64_t rotate(const char *path, uint64_t bound)
{
	char old[PATH_MAX + 2];
	struct stat st;

	if (lstat(path, &st) < 0)
		return 0;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size <= bound)
		return (uint64_t)st.st_size;
	snprintf(old, sizeof(old), "%s.1", path);
	return rename(path, old) == 0 ? 0 : (uint64_t)st.st_size;
}

/* Appends `line` to the log at `path` (made if missing); the log's size after it. */
static int append_marker(const char *path, const char *line, uint64_t *size)
{
	struct stat st;
	int fd, ret = 0;
	size_t len = strlen(line);

	fd = open(path,
		  O_WRONLY | O_CREAT | O_APPEND | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		ret = -errno;
	else if (!S_ISREG(st.st_mode)) /* a FIFO or a device: no marker, no offsets */
		*size = 0;
	else if (write(fd, line, len) != (ssize_t)len || fstat(fd, &st) < 0)
		ret = -EIO;
	else
		*size = (uint64_t)st.st_size;
	close(fd);
	return ret;
}

int store_begin_run(struct dvm *vm, uint64_t *console_start, uint64_t *log_start)
{
	char path[PATH_MAX], line[256], when[64];
	time_t now = time(NULL);
	struct tm tm;
	int ret;

	if (!localtime_r(&now, &tm) || !strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S%z", &tm))
		snprintf(when, sizeof(when), "%lld", (long long)now);
	snprintf(line, sizeof(line), "---- lockstepd: VM %s starts (domain id %d) at %s ----\n",
		 vm->cfg.name, vm->domain_id, when);
	store_console_path(vm, path, sizeof(path));
	rotate(path, CONSOLE_LOG_BOUND);
	/* The run's console starts after the marker: vm.console shows only the guest's bytes. */
	ret = append_marker(path, line, console_start);
	if (ret)
		return ret;
	store_run_path(vm, ".log", path, sizeof(path));
	rotate(path, WORKER_LOG_BOUND);
	return append_marker(path, line, log_start);
}

/* A log line without the time stamp util_log puts first ("2026-...+01:00 "). */
static const char *unstamped(const char *line)
{
	const char *sp = strchr(line, ' ');

	if (sp && sp - line == 29 && line[4] == '-' && line[10] == 'T')
		return sp + 1;
	return line;
}

void store_worker_error(const struct dvm *vm, uint64_t log_start, bool any_line, char *buf,
			size_t size)
{
	char path[PATH_MAX], *text, *line, *save = NULL;
	const char *found = NULL, *last = NULL;
	struct stat st;
	uint64_t from;
	ssize_t n;
	int fd;

	buf[0] = '\0';
	store_run_path(vm, ".log", path, sizeof(path));
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size <= log_start) {
		close(fd);
		return;
	}
	from = (uint64_t)st.st_size - log_start > ERROR_SCAN_MAX ?
		       (uint64_t)st.st_size - ERROR_SCAN_MAX :
		       log_start;
	text = malloc(ERROR_SCAN_MAX + 1);
	n = text ? pread(fd, text, ERROR_SCAN_MAX, (off_t)from) : -1;
	close(fd);
	if (n <= 0) {
		free(text);
		return;
	}
	text[n] = '\0';
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!line[0] || strncmp(line, "---- lockstepd: ", 16) == 0)
			continue;
		last = line;
		if (strstr(line, ": error: "))
			found = line;
	}
	if (!found && any_line)
		found = last;
	if (found)
		util_strlcpy(buf, unstamped(found), size);
	free(text);
}
