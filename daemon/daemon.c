/*
 * The daemon object, where its parts are put together: directories and the single-instance
 * lock, the libuv loop, the scheduler thread, start-up (the registry's definitions,
 * re-attachment and autostart; then the JSON-RPC and libvirt front ends) and a graceful stop
 * that leaves VMs running.  Called by lockstepd's main(), tests and fuzzers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/rpc/rpc.h"
#include "daemon/virt/virt.h"

static int take_lock(struct daemon *d)
{
	char path[PATH_MAX], pid[32];
	int fd, n;

	snprintf(path, sizeof(path), "%s/lockstepd.pid", d->opts.run_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		n = (int)read(fd, pid, sizeof(pid) - 1);
		pid[n > 0 ? n : 0] = '\0';
		util_log(&d->log, UTIL_LOG_ERROR,
			 "another lockstepd (pid %s) serves %s: stop it first or use --run-dir",
			 pid[0] ? strtok(pid, "\n") : "?", d->opts.run_dir);
		close(fd);
		return -EBUSY;
	}
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		/* The lock is what matters; the pid is for people. */
	}
	d->lock_fd = fd;
	return 0;
}

static void on_signal(uv_signal_t *h, int signo)
{
	struct daemon *d = h->data;

	util_log(&d->log, UTIL_LOG_INFO, "signal %d: stopping (running VMs keep running)", signo);
	d->quitting = true;
	uv_stop(d->loop);
}

int daemon_init(struct daemon *d, const struct daemon_options *opts)
{
	int ret;

	*d = (struct daemon){ .opts = *opts,
			      .lock_fd = -1,
			      .next_domain_id = 1,
			      .client_budget = { .max = opts->max_buffered } };
	d->start_ns = util_now_ns();
	util_log_init(&d->log, "lockstepd", opts->log_level, 2);
	util_log_stamp_auto(&d->log, true);
	util_list_init(&d->vms);
	util_list_init(&d->listeners);
	util_list_init(&d->deferred);
	d->loop = malloc(sizeof(*d->loop));
	if (!d->loop || uv_loop_init(d->loop)) {
		free(d->loop);
		d->loop = NULL;
		return -ENOMEM;
	}
	ret = store_init(d);
	if (ret) {
		util_log(&d->log, UTIL_LOG_ERROR, "cannot use %s or %s: %s", opts->run_dir,
			 opts->state_dir, strerror(-ret));
		return ret;
	}
	ret = take_lock(d);
	if (ret)
		return ret;
	if (topology_init(d))
		util_log(&d->log, UTIL_LOG_WARN, "hwloc could not read the host topology");
	topology_sched_host(d, &d->host);
	ret = hostcheck_init(d);
	if (ret)
		return ret;
	ret = scheduler_new(&d->host, VM_KICK_SIGNAL, &d->scheduler);
	if (ret) {
		util_log(&d->log, UTIL_LOG_ERROR, "cannot start the scheduler: %s", strerror(-ret));
		return ret;
	}
	uv_check_init(d->loop, &d->deferred_check);
	d->deferred_check.data = d;
	uv_signal_init(d->loop, &d->sig_term);
	uv_signal_init(d->loop, &d->sig_int);
	d->sig_term.data = d->sig_int.data = d;
	uv_signal_start(&d->sig_term, on_signal, SIGTERM);
	uv_signal_start(&d->sig_int, on_signal, SIGINT);

	registry_load(d);
	ret = rpc_server_start(d);
	if (ret) {
		util_log(&d->log, UTIL_LOG_ERROR, "cannot listen on %s: %s", opts->socket_path,
			 ret == -EADDRINUSE ? "another lockstepd serves it" : uv_strerror(ret));
		return ret;
	}
	if (!opts->no_virt) {
		ret = virt_server_start(d);
		if (ret)
			return ret;
	}
	util_log(&d->log, UTIL_LOG_INFO, "lockstepd %s serving %s (%u VMs defined)",
		 LOCKSTEP_VERSION, opts->socket_path, registry_count(d));
	return 0;
}

int daemon_run(struct daemon *d)
{
	return uv_run(d->loop, UV_RUN_DEFAULT) < 0;
}

static void close_any(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

void daemon_fini(struct daemon *d)
{
	d->quitting = true;
	/* First: with the scheduler gone every gate is open and the VMs run on unscheduled. */
	scheduler_free(d->scheduler);
	d->scheduler = NULL;
	hostcheck_fini(d);
	if (d->loop) {
		rpc_server_stop(d);
		virt_server_stop(d);
		ops_drop_deferred(d);
		registry_fini(d); /* workers are left running; only our handles on them go */
		uv_walk(d->loop, close_any, NULL);
		uv_run(d->loop, UV_RUN_DEFAULT);
		uv_loop_close(d->loop);
		free(d->loop);
	}
	topology_fini(d);
	if (d->lock_fd >= 0)
		close(d->lock_fd);
}
