/*
 * The fuzz targets' in-process lockstepd (fuzz_daemon.h): set up once per process, torn
 * down at exit, and brought back to an empty registry after every input so that inputs do
 * not leak into each other (and LeakSanitizer sees a clean slate).
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fuzz/fuzz_daemon.h"

#define SETTLE_TURNS_MAX 10000

static struct {
	struct daemon d;
	char root[64];
} fz;

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path);
}

static void remove_root(void)
{
	daemon_fini(&fz.d);
	nftw(fz.root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Empties a directory of files (the run directory's per-VM files). */
static void empty_dir(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *dp = opendir(dir);

	if (!dp)
		return;
	while ((de = readdir(dp))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(dp);
}

struct daemon *fuzz_daemon_start(bool virt)
{
	struct daemon_options o = {
		.log_level = UTIL_LOG_ERROR,
		.foreground = true,
		.max_clients = 16,
		.max_vms = 64,
		.max_frame = 1u << 16,
		.shutdown_timeout_ms = 1000,
		.no_virt = !virt,
		/* The worker is /bin/false: no namespaces and cgroups to make for it. */
		.no_sandbox = true,
	};
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	char err[256];
	int null;

	signal(SIGPIPE, SIG_IGN); /* as lockstepd's main(): a dead worker's channel */
	snprintf(fz.root, sizeof(fz.root), "%s/lockstep-fuzz-XXXXXX", base);
	if (!mkdtemp(fz.root))
		abort();
	snprintf(o.run_dir, sizeof(o.run_dir), "%s/run", fz.root);
	snprintf(o.state_dir, sizeof(o.state_dir), "%s/state", fz.root);
	snprintf(o.socket_path, sizeof(o.socket_path), "%s/run/sock", fz.root);
	if (virt)
		snprintf(o.virt_socket, sizeof(o.virt_socket), "%s/virt", fz.root);
	strcpy(o.vm_binary, access("/bin/false", X_OK) == 0 ? "/bin/false" : "/usr/bin/false");
	/* The directories the seeds' images name (/opt/guest.elf, /boot/fz.elf), so definitions
	 * get past the path rule to starts, restarts and destroys; lockstepd judges only the text
	 * and /bin/false opens nothing. */
	if (sandbox_paths_add(&o.allowed, "/opt", err, sizeof(err)) ||
	    sandbox_paths_add(&o.allowed, "/boot", err, sizeof(err)))
		abort();
	if (mkdir(o.run_dir, 0755) < 0 || daemon_init(&fz.d, &o) != 0 || (virt && !fz.d.virt))
		abort();
	/* Ctrl-C and timeouts are libFuzzer's, not the daemon's. */
	uv_signal_stop(&fz.d.sig_term);
	uv_signal_stop(&fz.d.sig_int);
	/* Crash reports of /bin/false "workers" are expected by the thousand. */
	null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null >= 0)
		fz.d.log.fd = null;
	atexit(remove_root);
	return &fz.d;
}

bool fuzz_daemon_has_workers(const struct daemon *d)
{
	struct util_list *pos;

	util_list_for_each(pos, &d->vms)
		if (util_container_of(pos, struct dvm, link)->worker)
			return true;
	return false;
}

/* Each /bin/false worker exits by itself and on_crash restarts are bounded (three a minute),
 * so every parked call gets its answer within a bounded number of turns. */
void fuzz_daemon_settle(struct daemon *d, bool (*busy)(const struct daemon *d))
{
	for (unsigned turns = 0; busy(d); turns++) {
		if (turns == SETTLE_TURNS_MAX)
			abort(); /* workers that never go: a daemon bug */
		uv_run(d->loop, UV_RUN_ONCE);
	}
	uv_run(d->loop, UV_RUN_NOWAIT);
}

void fuzz_daemon_teardown_vms(struct daemon *d)
{
	char dir[PATH_MAX];

	while (!util_list_empty(&d->vms)) {
		struct dvm *vm = util_container_of(d->vms.next, struct dvm, link);

		if (registry_undefine(vm) != 0)
			abort();
	}
	uv_run(d->loop, UV_RUN_NOWAIT); /* the VMs' timers close, and the VMs go */
	snprintf(dir, sizeof(dir), "%s/vms", d->opts.run_dir);
	empty_dir(dir);
	snprintf(dir, sizeof(dir), "%s/vms", d->opts.state_dir);
	empty_dir(dir);
}
