/*
 * The matrix's cells under lockstepd, through its JSON-RPC API only, as a user's scripts
 * would drive it: vm.define each VM of the cell, vm.start them together (one connection and
 * one thread per VM, released at once, because vm.start answers only once its VM runs),
 * wait for their "stopped" lifecycle events, then read each one's `result:` line
 * (vm.console) and the figures of the run that ended (vm.info's last_run: the worker's
 * pvlock and KVM counters, the scheduler's co-run and skew accounting), and vm.undefine.
 *
 * With --spawn (the default) this file also owns a lockstepd of its own: temporary run and
 * state directories, the daemon beside this executable, its log in the output directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/client.h"
#include "clients/bench/matrix.h"
#include "util/util.h"

#define CONSOLE_MAX (1u << 20)
#define DAEMON_READY_NS (10ull * 1000000000ull)
/* A cell may run this much longer than its duration before it counts as hung. */
#define CELL_SLACK_FACTOR 10
#define CELL_SLACK_S 30

struct mx_lockstep {
	struct api_client *main;   /* requests */
	struct api_client *events; /* subscribed: lifecycle and pvlock notifications */
	struct api_client *starter[MX_MAX_VMS];
	char socket[108];
	char tmp_dir[64]; /* spawned daemon's run and state directories live here */
	char guest_dir[PATH_MAX];
	char memory[16];
	pid_t spawned; /* our lockstepd, or 0 */
	int daemon_pid;
	unsigned host_cpus;
	unsigned seq;
};

/* ---- the daemon ---- */

/* Best effort: a temporary file left behind is no failure. */
static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	remove(path);
	return 0;
}

static int spawn_daemon(struct mx_lockstep *ls, const char *log_path, char *err, size_t err_len)
{
	char daemon[PATH_MAX], run_dir[128], state_dir[128];
	uint64_t deadline;
	int ret;

	/* Beside lockstep-bench in a build tree, in the daemons' folder when installed. */
	ret = mx_sibling_path("lockstepd", daemon, sizeof(daemon));
	if (ret)
		ret = mx_sibling_path(LOCKSTEP_BIN_TO_SBIN "/lockstepd", daemon, sizeof(daemon));
	if (ret) {
		snprintf(err, err_len, "no lockstepd beside lockstep-bench (%s)", strerror(-ret));
		return ret;
	}
	strcpy(ls->tmp_dir, "/tmp/lockstep-bench.XXXXXX");
	if (!mkdtemp(ls->tmp_dir)) {
		ret = -errno;
		snprintf(err, err_len, "mkdtemp: %s", strerror(errno));
		return ret;
	}
	snprintf(run_dir, sizeof(run_dir), "%s/run", ls->tmp_dir);
	snprintf(state_dir, sizeof(state_dir), "%s/state", ls->tmp_dir);
	snprintf(ls->socket, sizeof(ls->socket), "%.80s/lockstepd.sock", run_dir);
	ls->spawned = fork();
	if (ls->spawned < 0) {
		ret = -errno;
		snprintf(err, err_len, "fork: %s", strerror(errno));
		return ret;
	}
	if (ls->spawned == 0) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		/* An interrupted benchmark takes its daemon along (its VMs end on their own). */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		execl(daemon, daemon, "--run-dir", run_dir, "--state-dir", state_dir,
		      "--foreground", "--no-virt", "--log-level", "warn", "--allow-path",
		      ls->guest_dir, (char *)NULL);
		_exit(127);
	}
	ls->daemon_pid = ls->spawned;
	deadline = util_now_ns() + DAEMON_READY_NS;
	while (util_now_ns() < deadline) {
		struct timespec pause = { .tv_nsec = 20000000 };
		int status;

		if (api_client_connect(ls->socket, &ls->main) == 0)
			return 0;
		if (waitpid(ls->spawned, &status, WNOHANG) == ls->spawned) {
			ls->spawned = 0;
			snprintf(err, err_len, "lockstepd exited at start (status %d): see %s",
				 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
				 log_path);
			return -ECHILD;
		}
		nanosleep(&pause, NULL);
	}
	snprintf(err, err_len, "lockstepd did not open %s within 10 s", ls->socket);
	return -ETIMEDOUT;
}

static int call(struct api_client *c, const char *method, json_t *params, json_t **result,
		char *err, size_t err_len)
{
	json_t *error = NULL, *res = NULL;
	int ret = api_client_call(c, method, params, &res, &error);

	if (ret == -EPROTO)
		snprintf(err, err_len, "%s: %s", method, api_client_error_message(error));
	else if (ret)
		snprintf(err, err_len, "%s: %s", method, strerror(-ret));
	json_decref(error);
	if (result && !ret)
		*result = res;
	else
		json_decref(res);
	return ret;
}

int mx_lockstep_open(const struct mx_options *o, const char *work_dir, struct mx_lockstep **out,
		     char *err, size_t err_len)
{
	struct mx_lockstep *ls = calloc(1, sizeof(*ls));
	json_t *info = NULL, *active = NULL;
	char log_path[PATH_MAX];
	int ret;

	if (!ls)
		return -ENOMEM;
	/* Canonical: lockstepd allows definitions to name files beneath it (--allow-path). */
	if (!realpath(o->guest_dir, ls->guest_dir))
		util_strlcpy(ls->guest_dir, o->guest_dir, sizeof(ls->guest_dir));
	util_strlcpy(ls->memory, o->memory, sizeof(ls->memory));
	ls->host_cpus = mx_host_cpus();
	if (o->socket) {
		util_strlcpy(ls->socket, o->socket, sizeof(ls->socket));
		ret = api_client_connect(ls->socket, &ls->main);
		if (ret)
			snprintf(err, err_len, "cannot reach lockstepd at %s: %s", ls->socket,
				 strerror(-ret));
	} else {
		snprintf(log_path, sizeof(log_path), "%s/lockstepd.log", work_dir);
		ret = spawn_daemon(ls, log_path, err, err_len);
	}
	if (ret)
		goto err;
	ret = call(ls->main, "daemon.info", NULL, &info, err, err_len);
	if (ret)
		goto err;
	if (!ls->daemon_pid)
		ls->daemon_pid = (int)json_integer_value(json_object_get(info, "pid"));
	json_decref(info);
	/* Somebody else's running VMs would be load we cannot account for. */
	ret = call(ls->main, "vm.list", json_pack("{s:s}", "state", "active"), &active, err,
		   err_len);
	if (ret)
		goto err;
	if (json_array_size(active) && !o->force) {
		snprintf(err, err_len,
			 "lockstepd at %s runs %zu VMs already: their load would skew every "
			 "figure (--force to run anyway)",
			 ls->socket, json_array_size(active));
		json_decref(active);
		ret = -EBUSY;
		goto err;
	}
	json_decref(active);
	ret = api_client_connect(ls->socket, &ls->events);
	if (!ret)
		ret = call(ls->events, "events.subscribe", NULL, NULL, err, err_len);
	for (unsigned i = 0; !ret && i < MX_MAX_VMS; i++)
		ret = api_client_connect(ls->socket, &ls->starter[i]);
	if (ret) {
		if (!err[0])
			snprintf(err, err_len, "cannot connect to %s: %s", ls->socket,
				 strerror(-ret));
		goto err;
	}
	*out = ls;
	return 0;
err:
	mx_lockstep_close(ls);
	return ret;
}

void mx_lockstep_close(struct mx_lockstep *ls)
{
	if (!ls)
		return;
	for (unsigned i = 0; i < MX_MAX_VMS; i++)
		api_client_close(ls->starter[i]);
	api_client_close(ls->events);
	api_client_close(ls->main);
	if (ls->spawned > 0) {
		kill(ls->spawned, SIGTERM);
		waitpid(ls->spawned, NULL, 0);
	}
	if (ls->tmp_dir[0])
		nftw(ls->tmp_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(ls);
}

int mx_lockstep_daemon_pid(const struct mx_lockstep *ls)
{
	return ls->daemon_pid;
}

json_t *mx_lockstep_info(struct mx_lockstep *ls)
{
	json_t *info = NULL;
	char err[256];

	call(ls->main, "daemon.info", NULL, &info, err, sizeof(err));
	return info;
}

/* ---- one cell ---- */

static json_t *definition(struct mx_lockstep *ls, const char *name, const struct mx_workload *w,
			  enum mx_policy p, unsigned vcpus, unsigned duration_ms)
{
	char image[PATH_MAX], cmdline[256];

	if (snprintf(image, sizeof(image), "%s/%s", ls->guest_dir, mx_workload_image(w)) >=
	    (int)sizeof(image))
		image[0] = '\0'; /* lockstepd refuses it by name */
	mx_workload_cmdline(w, vcpus, duration_ms, cmdline, sizeof(cmdline));
	return json_pack("{s:s, s:i, s:s, s:s, s:s, s:{s:s}}", "name", name, "vcpus", (int)vcpus,
			 "memory", ls->memory, "kernel", image, "cmdline", cmdline, "sched",
			 "policy", mx_policy_name(p));
}

/* Releases the start threads together, or tells them to give up. */
struct start_gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool open, cancelled;
};

struct starter {
	pthread_t thread;
	struct start_gate *gate;
	struct api_client *c;
	const char *name;
	uint64_t sent_ns, running_ns;
	int ret;
	char err[256];
};

static void *start_vm(void *arg)
{
	struct starter *s = arg;
	bool cancelled;

	pthread_mutex_lock(&s->gate->lock);
	while (!s->gate->open && !s->gate->cancelled)
		pthread_cond_wait(&s->gate->cond, &s->gate->lock);
	cancelled = s->gate->cancelled;
	pthread_mutex_unlock(&s->gate->lock);
	if (cancelled) {
		s->ret = -ECANCELED;
		snprintf(s->err, sizeof(s->err), "not started");
		return NULL;
	}
	s->sent_ns = util_now_ns();
	s->ret = call(s->c, "vm.start", json_pack("{s:s}", "name", s->name), NULL, s->err,
		      sizeof(s->err));
	s->running_ns = util_now_ns();
	return NULL;
}

struct cell_vm {
	char name[64];
	bool defined, started, stopped;
	char stop_event[16], stop_reason[32];
	uint64_t pvlock_events;
	struct starter start;
};

/* Starts every VM at once; false if any refused. */
static bool start_all(struct mx_lockstep *ls, struct cell_vm *vms, unsigned n,
		      struct mx_measurement *m)
{
	struct start_gate gate = { .lock = PTHREAD_MUTEX_INITIALIZER,
				   .cond = PTHREAD_COND_INITIALIZER };
	unsigned created = 0;
	bool all = true;

	for (; created < n; created++) {
		vms[created].start = (struct starter){ .gate = &gate,
						       .c = ls->starter[created],
						       .name = vms[created].name };
		if (pthread_create(&vms[created].start.thread, NULL, start_vm, &vms[created].start))
			break;
	}
	pthread_mutex_lock(&gate.lock);
	gate.open = created == n;
	gate.cancelled = !gate.open;
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.lock);
	for (unsigned i = 0; i < created; i++)
		pthread_join(vms[i].start.thread, NULL);
	if (created < n) {
		snprintf(m->reason, sizeof(m->reason), "cannot create a thread to start a VM");
		return false;
	}
	for (unsigned i = 0; i < n; i++) {
		vms[i].started = vms[i].start.ret == 0;
		if (!vms[i].started && all) {
			snprintf(m->reason, sizeof(m->reason), "%.63s: %.180s", vms[i].name,
				 vms[i].start.err);
			all = false;
		}
	}
	return all;
}

static struct cell_vm *find_vm(struct cell_vm *vms, unsigned n, const char *name)
{
	for (unsigned i = 0; name && i < n; i++)
		if (strcmp(vms[i].name, name) == 0)
			return &vms[i];
	return NULL;
}

/* Takes the notifications that arrive until every started VM stopped or the deadline. */
static bool await_stops(struct mx_lockstep *ls, struct cell_vm *vms, unsigned n,
			struct mx_measurement *m, uint64_t deadline)
{
	for (;;) {
		unsigned left = 0;
		json_t *msg = NULL, *ev;
		struct cell_vm *vm;
		uint64_t now = util_now_ns();
		const char *type, *what;

		for (unsigned i = 0; i < n; i++)
			left += vms[i].started && !vms[i].stopped;
		if (!left)
			return true;
		if (now >= deadline) {
			snprintf(m->reason, sizeof(m->reason), "timed out: %u VMs still running",
				 left);
			return false;
		}
		if (api_client_next_notification(ls->events, (int)((deadline - now) / 1000000 + 1),
						 &msg))
			continue;
		ev = json_object_get(msg, "params");
		type = json_string_value(json_object_get(ev, "type"));
		vm = find_vm(vms, n, json_string_value(json_object_get(ev, "vm")));
		what = json_string_value(json_object_get(ev, "event"));
		if (vm && type && strcmp(type, "pvlock") == 0)
			vm->pvlock_events++;
		if (vm && type && what && strcmp(type, "lifecycle") == 0 &&
		    (strcmp(what, "stopped") == 0 || strcmp(what, "crashed") == 0) &&
		    !vm->stopped) {
			unsigned i = (unsigned)(vm - vms);

			vm->stopped = true;
			m->vm[i].end_ns = util_now_ns();
			util_strlcpy(vm->stop_event, what, sizeof(vm->stop_event));
			util_strlcpy(vm->stop_reason,
				     json_string_value(json_object_get(ev, "reason")) ?: "?",
				     sizeof(vm->stop_reason));
		}
		json_decref(msg);
	}
}

/* Console, exit status and the run's figures of one VM that stopped; its JSON record. */
static json_t *collect(struct mx_lockstep *ls, const struct mx_workload *w, struct cell_vm *vm,
		       struct mx_vm_result *res, uint64_t cell_start_ns, const char *cmdline,
		       struct mx_measurement *m)
{
	json_t *console = NULL, *info = NULL, *rec;
	const char *text;
	char err[256];
	int status = -1;

	call(ls->main, "vm.console", json_pack("{s:s, s:I}", "name", vm->name, "max", CONSOLE_MAX),
	     &console, err, sizeof(err));
	call(ls->main, "vm.info", json_pack("{s:s}", "name", vm->name), &info, err, sizeof(err));
	text = json_string_value(json_object_get(console, "data"));
	if (info)
		status = (int)json_integer_value(json_object_get(info, "last_status"));
	if (!text || mx_parse_console(w, text, res))
		res->ok = false;
	res->ok = res->ok && status == 0 && vm->stopped;
	/* A VM the scheduler never took ran under no policy at all: its figure is not the
	 * cell's (lockstepd's log says why). */
	if (res->ok && !json_object_get(json_object_get(info, "last_run"), "sched") &&
	    m->status == MX_OK) {
		m->status = MX_FAILED;
		snprintf(m->reason, sizeof(m->reason),
			 "%s ran unscheduled: lockstepd did not attach it to its scheduler",
			 vm->name);
	}
	if (!res->ok && m->status == MX_OK) {
		m->status = MX_FAILED;
		snprintf(m->reason, sizeof(m->reason), "%s: %s (exit status %d, %s)", vm->name,
			 res->result ? "its checks failed" : "no result line", status,
			 vm->stop_reason[0] ? vm->stop_reason : "not stopped");
	}
	rec = json_pack(
		"{s:s, s:i, s:s, s:b, s:i, s:s, s:s, s:f, s:f, s:f, s:I, s:O*, s:s*, s:O*}", "name",
		vm->name, "vcpus", (int)res->vcpus, "cmdline", cmdline, "ok", res->ok,
		"exit_status", status, "stop", vm->stop_event, "reason", vm->stop_reason,
		"start_ms", (double)(vm->start.sent_ns - cell_start_ns) / 1e6, "running_ms",
		(double)(vm->start.running_ns - cell_start_ns) / 1e6, "stopped_ms",
		vm->stopped ? (double)(res->end_ns - cell_start_ns) / 1e6 : -1.0,
		"pvlock_events_seen", (json_int_t)vm->pvlock_events, "result", res->result,
		"console", text, "last_run", info ? json_object_get(info, "last_run") : NULL);
	json_decref(console);
	json_decref(info);
	return rec;
}

void mx_lockstep_run(struct mx_lockstep *ls, const struct mx_workload *w, enum mx_policy p,
		     const struct mx_layout *l, unsigned duration_ms, struct mx_measurement *m)
{
	struct cell_vm vms[MX_MAX_VMS] = { 0 };
	char cmdline[MX_MAX_VMS][256];
	uint64_t t0 = util_now_ns(), deadline;
	json_t *msg;
	unsigned n = l->nr_vms;

	ls->seq++;
	for (unsigned i = 0; i < n; i++) {
		json_t *def;
		char err[256];

		snprintf(vms[i].name, sizeof(vms[i].name), "lsb%d-%u-%u", (int)getpid(), ls->seq,
			 i);
		def = definition(ls, vms[i].name, w, p, l->vcpus[i], duration_ms);
		util_strlcpy(cmdline[i], json_string_value(json_object_get(def, "cmdline")),
			     sizeof(cmdline[i]));
		if (call(ls->main, "vm.define", json_pack("{s:o}", "definition", def), NULL, err,
			 sizeof(err))) {
			m->status = MX_FAILED;
			util_strlcpy(m->reason, err, sizeof(m->reason));
			goto undefine;
		}
		vms[i].defined = true;
	}
	/* Notifications of earlier cells (late pvlock episodes) are not this cell's. */
	while (api_client_next_notification(ls->events, 0, &msg) == 0)
		json_decref(msg);
	if (!start_all(ls, vms, n, m))
		m->status = MX_FAILED;
	deadline =
		util_now_ns() +
		((uint64_t)duration_ms * CELL_SLACK_FACTOR + CELL_SLACK_S * 1000ull) * 1000000ull;
	if (!await_stops(ls, vms, n, m, deadline)) {
		m->status = MX_FAILED;
		for (unsigned i = 0; i < n; i++) {
			char err[256];

			if (vms[i].started && !vms[i].stopped)
				call(ls->main, "vm.destroy",
				     json_pack("{s:s}", "name", vms[i].name), NULL, err,
				     sizeof(err));
		}
	}
	m->wall_s = (double)(util_now_ns() - t0) / 1e9;
	for (unsigned i = 0; i < n; i++)
		json_array_append_new(m->vms_json,
				      collect(ls, w, &vms[i], &m->vm[i], t0, cmdline[i], m));
	mx_measurement_finish(m, w, ls->host_cpus);
undefine:
	for (unsigned i = 0; i < n; i++) {
		char err[256];

		if (vms[i].defined)
			call(ls->main, "vm.undefine", json_pack("{s:s}", "name", vms[i].name), NULL,
			     err, sizeof(err));
	}
}

int mx_lockstep_run_definitions(struct mx_lockstep *ls, json_t *const *defs, unsigned n,
				unsigned awaited, unsigned timeout_s, json_t **records, char *err,
				size_t err_len)
{
	struct cell_vm vms[MX_MAX_VMS] = { 0 };
	struct mx_measurement m = { .status = MX_OK };
	json_t *msg;
	int ret = 0;

	if (n > MX_MAX_VMS)
		return -E2BIG;
	for (unsigned i = 0; i < n; i++) {
		json_t *def = json_deep_copy(defs[i]);

		records[i] = NULL;
		util_strlcpy(vms[i].name, json_string_value(json_object_get(def, "name")) ?: "",
			     sizeof(vms[i].name));
		ret = call(ls->main, "vm.define", json_pack("{s:o}", "definition", def), NULL, err,
			   err_len);
		if (ret)
			goto undefine;
		vms[i].defined = true;
	}
	while (api_client_next_notification(ls->events, 0, &msg) == 0)
		json_decref(msg);
	if (!start_all(ls, vms, n, &m) ||
	    !await_stops(ls, vms, awaited < n ? awaited : n, &m,
			 util_now_ns() + (uint64_t)timeout_s * 1000000000ull)) {
		snprintf(err, err_len, "%s", m.reason);
		ret = -EIO;
	}
	/* The VMs not awaited (companions: load) and any that did not stop in time. */
	for (unsigned i = 0; i < n; i++)
		if (vms[i].started && !vms[i].stopped)
			call(ls->main, "vm.destroy", json_pack("{s:s}", "name", vms[i].name), NULL,
			     m.reason, sizeof(m.reason));
	for (unsigned i = 0; i < n; i++) {
		json_t *console = NULL, *info = NULL;

		if (!vms[i].started)
			continue;
		call(ls->main, "vm.console",
		     json_pack("{s:s, s:I}", "name", vms[i].name, "max", CONSOLE_MAX), &console,
		     m.reason, sizeof(m.reason));
		call(ls->main, "vm.info", json_pack("{s:s}", "name", vms[i].name), &info, m.reason,
		     sizeof(m.reason));
		records[i] = json_pack("{s:s, s:O*, s:O*}", "name", vms[i].name, "console",
				       json_object_get(console, "data"), "info", info);
		json_decref(console);
		json_decref(info);
	}
undefine:
	for (unsigned i = 0; i < n; i++)
		if (vms[i].defined)
			call(ls->main, "vm.undefine", json_pack("{s:s}", "name", vms[i].name), NULL,
			     m.reason, sizeof(m.reason));
	return ret;
}

char *mx_lockstep_gang_refusal(struct mx_lockstep *ls, unsigned vcpus)
{
	const struct mx_workload *probe = &mx_workloads[0];
	char name[64], err[512];
	json_t *def;

	snprintf(name, sizeof(name), "lsb%d-gang-probe", (int)getpid());
	def = definition(ls, name, probe, MX_GANG, vcpus, 100);
	if (call(ls->main, "vm.define", json_pack("{s:o}", "definition", def), NULL, err,
		 sizeof(err)) == 0) {
		call(ls->main, "vm.undefine", json_pack("{s:s}", "name", name), NULL, err,
		     sizeof(err));
		return NULL;
	}
	return strdup(err);
}

/*
 * S, the cost of one vCPU switch under the multiplexer (the bounds of report.c): switchbench
 * with 2 vCPUs on host CPU 0 alone, policy mux, so that every hand-over of its baton is a
 * switch.  Returns the median in ns (0 if it failed) and the run's record.
 */
double mx_lockstep_switch_cost(struct mx_lockstep *ls, json_t **record)
{
	struct cell_vm vm = { 0 };
	struct mx_vm_result res = { .vcpus = 2 };
	struct mx_measurement m = { .status = MX_OK, .nr_vms = 1 };
	const struct mx_workload probe = { .name = "switchbench", .program = MX_SWITCHBENCH };
	char image[PATH_MAX + 32], err[256];
	uint64_t t0 = util_now_ns();
	json_t *def, *msg, *rec;
	double ns = 0;

	snprintf(vm.name, sizeof(vm.name), "lsb%d-switch-%u", (int)getpid(), ++ls->seq);
	snprintf(image, sizeof(image), "%s/switchbench.elf", ls->guest_dir);
	def = json_pack("{s:s, s:i, s:s, s:s, s:s, s:{s:s, s:s}}", "name", vm.name, "vcpus", 2,
			"memory", ls->memory, "kernel", image, "cmdline", "passes=2000", "sched",
			"policy", "mux", "cpus", "0");
	if (call(ls->main, "vm.define", json_pack("{s:o}", "definition", def), NULL, err,
		 sizeof(err))) {
		*record = json_pack("{s:s, s:s}", "status", "failed", "reason", err);
		return 0;
	}
	vm.defined = true;
	while (api_client_next_notification(ls->events, 0, &msg) == 0)
		json_decref(msg);
	if (start_all(ls, &vm, 1, &m) &&
	    await_stops(ls, &vm, 1, &m, util_now_ns() + CELL_SLACK_S * 1000000000ull)) {
		rec = collect(ls, &probe, &vm, &res, t0, "passes=2000", &m);
		if (m.status == MX_OK && res.ok)
			ns = json_number_value(json_object_get(res.result, "switch_ns_median"));
	} else {
		if (vm.started && !vm.stopped)
			call(ls->main, "vm.destroy", json_pack("{s:s}", "name", vm.name), NULL, err,
			     sizeof(err));
		rec = json_pack("{s:s}", "reason", m.reason);
	}
	json_object_set_new(rec, "status", json_string(ns > 0 ? "ok" : "failed"));
	json_object_set_new(rec, "switch_ns", json_real(ns));
	json_decref(res.result);
	call(ls->main, "vm.undefine", json_pack("{s:s}", "name", vm.name), NULL, err, sizeof(err));
	*record = rec;
	return ns;
}
