/*
 * The peer baseline: the matrix's cells under `qemu-system-x86_64 -accel kvm`, the same
 * guest images, with Linux's own scheduling of QEMU's vCPU threads (QEMU has no policy of
 * its own).  Several VMs are several QEMU processes started together.  The guest measures
 * its own window, so firmware time is never in the figures, but it decides how exactly the
 * windows of several VMs overlap: SeaBIOS takes seconds of emulated ring-0 code on some
 * hosts, and VMs that finish it apart run alone meanwhile.  So QEMU boots its own minimal
 * firmware, qboot (-bios qboot.rom, ~0.1 s), where it has it, and SeaBIOS otherwise; the
 * measurement's concurrency records how well the windows overlapped either way.
 *
 * QEMU knows nothing of lockstep's pvlock doorbell: the pv workloads fall back to the guest
 * runtime's own sleep/kick (HLT and IPIs), and each result says which backend ran.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clients/bench/matrix.h"
#include "util/util.h"

#define QEMU_MEMORY "64"
#define QEMU_SLACK_S 40 /* boot, plus a slow guest under overcommit */
#define QEMU_PROBE_S 60
#define OUTPUT_MAX (1u << 20)

struct mx_qemu {
	char binary[PATH_MAX];
	char version[128];
	const char *bios; /* "qboot.rom", or NULL for QEMU's default */
	char tmp_dir[64];
	char guest_dir[512];
	unsigned host_cpus;
	unsigned seq;
};

static bool find_in_path(const char *name, char *buf, size_t size)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save = NULL;
	bool found = false;

	if (strchr(name, '/')) {
		util_strlcpy(buf, name, size);
		return access(buf, X_OK) == 0;
	}
	copy = strdup(path ? path : "/usr/bin:/bin");
	for (dir = strtok_r(copy, ":", &save); copy && dir && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		snprintf(buf, size, "%s/%s", dir, name);
		found = access(buf, X_OK) == 0;
	}
	free(copy);
	return found;
}

struct qemu_vm {
	pid_t pid;
	char serial[128], log[128];
	char cmdline[256];
	int status; /* wait status, -1 while running */
};

static int spawn(struct mx_qemu *q, struct qemu_vm *vm, const char *image, unsigned vcpus)
{
	char smp[16], serial_arg[160];

	snprintf(smp, sizeof(smp), "%u", vcpus);
	snprintf(serial_arg, sizeof(serial_arg), "file:%s", vm->serial);
	vm->status = -1;
	vm->pid = fork();
	if (vm->pid < 0)
		return -errno;
	if (vm->pid == 0) {
		int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
		int out = open(vm->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (in >= 0)
			dup2(in, STDIN_FILENO);
		if (out >= 0) {
			dup2(out, STDOUT_FILENO);
			dup2(out, STDERR_FILENO);
		}
		const char *argv[] = { q->binary,
				       "-accel",
				       "kvm",
				       "-smp",
				       smp,
				       "-m",
				       QEMU_MEMORY,
				       "-nodefaults",
				       "-display",
				       "none",
				       "-no-reboot",
				       "-kernel",
				       image,
				       "-append",
				       vm->cmdline,
				       "-device",
				       "isa-debug-exit,iobase=0xf4,iosize=0x4",
				       "-serial",
				       serial_arg,
				       q->bios ? "-bios" : NULL,
				       q->bios,
				       NULL };

		execv(q->binary, (char **)argv);
		_exit(127);
	}
	return 0;
}

/* Reaps the VMs as they end (recording when); kills what is left at the deadline. */
static unsigned reap(struct qemu_vm *vms, unsigned n, struct mx_vm_result *res, uint64_t deadline)
{
	unsigned left = n;

	while (left) {
		struct timespec pause = { .tv_nsec = 2000000 };

		for (unsigned i = 0; i < n; i++) {
			int status;

			if (vms[i].status >= 0 || vms[i].pid <= 0)
				continue;
			if (waitpid(vms[i].pid, &status, WNOHANG) == vms[i].pid) {
				vms[i].status = status;
				if (res)
					res[i].end_ns = util_now_ns();
				left--;
			}
		}
		if (!left)
			break;
		if (util_now_ns() >= deadline) {
			for (unsigned i = 0; i < n; i++)
				if (vms[i].status < 0 && vms[i].pid > 0)
					kill(vms[i].pid, SIGKILL);
			deadline = UINT64_MAX; /* reap the killed ones */
		}
		nanosleep(&pause, NULL);
	}
	return left;
}

static char *slurp(const char *path)
{
	char *text = NULL;
	size_t len;

	if (util_read_file(path, OUTPUT_MAX, &text, &len))
		return NULL;
	return text;
}

/* isa-debug-exit: guest code V ends QEMU with (V << 1) | 1; anything else is QEMU's. */
static int guest_code(int status)
{
	if (!WIFEXITED(status) || !(WEXITSTATUS(status) & 1))
		return -1;
	return WEXITSTATUS(status) >> 1;
}

static const char *describe_status(int status, char *buf, size_t size)
{
	if (WIFSIGNALED(status))
		snprintf(buf, size, "killed by signal %d", WTERMSIG(status));
	else if (guest_code(status) >= 0)
		snprintf(buf, size, "guest exit %d", guest_code(status));
	else
		snprintf(buf, size, "QEMU exit status %d", WEXITSTATUS(status));
	return buf;
}

/* Boots hello.elf once: proof that `-accel kvm` works here, or the reason it does not. */
static bool probe(struct mx_qemu *q, char *why, size_t why_len)
{
	struct qemu_vm vm = { .cmdline = "" };
	char image[PATH_MAX], desc[64];
	char *log;
	bool ok;

	snprintf(image, sizeof(image), "%s/hello.elf", q->guest_dir);
	snprintf(vm.serial, sizeof(vm.serial), "%s/probe.serial", q->tmp_dir);
	snprintf(vm.log, sizeof(vm.log), "%s/probe.log", q->tmp_dir);
	if (spawn(q, &vm, image, 1)) {
		snprintf(why, why_len, "cannot run %s: %s", q->binary, strerror(errno));
		return false;
	}
	reap(&vm, 1, NULL, util_now_ns() + QEMU_PROBE_S * 1000000000ull);
	ok = guest_code(vm.status) == 0;
	if (!ok) {
		log = slurp(vm.log);
		if (log)
			log[strcspn(log, "\n")] = '\0';
		snprintf(why, why_len, "%s -accel kvm could not boot hello.elf (%s)%s%.160s",
			 q->binary, describe_status(vm.status, desc, sizeof(desc)),
			 log && log[0] ? ": " : "", log ? log : "");
		free(log);
	}
	unlink(vm.serial);
	unlink(vm.log);
	return ok;
}

struct mx_qemu *mx_qemu_open(const struct mx_options *o, const char *work_dir, char *why,
			     size_t why_len)
{
	const char *name = getenv("QEMU") ? getenv("QEMU") : "qemu-system-x86_64";
	struct mx_qemu *q;
	char cmd[PATH_MAX + 32];
	FILE *p;

	if (o->qemu == 0) {
		snprintf(why, why_len, "not run (--no-qemu)");
		return NULL;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		snprintf(why, why_len, "out of memory");
		return NULL;
	}
	util_strlcpy(q->guest_dir, o->guest_dir, sizeof(q->guest_dir));
	q->host_cpus = mx_host_cpus();
	if (!find_in_path(name, q->binary, sizeof(q->binary))) {
		snprintf(why, why_len, "%s is not installed (Debian: qemu-system-x86)", name);
		goto fail;
	}
	if (access("/dev/kvm", R_OK | W_OK)) {
		snprintf(why, why_len, "/dev/kvm: %s", strerror(errno));
		goto fail;
	}
	snprintf(cmd, sizeof(cmd), "'%s' --version 2>/dev/null", q->binary);
	p = popen(cmd, "r");
	if (p) {
		if (fgets(q->version, sizeof(q->version), p))
			q->version[strcspn(q->version, "\n")] = '\0';
		pclose(p);
	}
	strcpy(q->tmp_dir, "/tmp/lockstep-bench-qemu.XXXXXX");
	if (!mkdtemp(q->tmp_dir)) {
		snprintf(why, why_len, "mkdtemp: %s", strerror(errno));
		q->tmp_dir[0] = '\0';
		goto fail;
	}
	/* qboot first; a failure there only means SeaBIOS. */
	q->bios = "qboot.rom";
	if (probe(q, why, why_len))
		return q;
	q->bios = NULL;
	if (probe(q, why, why_len))
		return q;
fail:
	mx_qemu_close(q);
	return NULL;
}

void mx_qemu_close(struct mx_qemu *q)
{
	if (!q)
		return;
	if (q->tmp_dir[0])
		rmdir(q->tmp_dir);
	free(q);
}

const char *mx_qemu_version(const struct mx_qemu *q)
{
	return q->version;
}

const char *mx_qemu_firmware(const struct mx_qemu *q)
{
	return q->bios ? "qboot" : "SeaBIOS";
}

void mx_qemu_run(struct mx_qemu *q, const struct mx_workload *w, const struct mx_layout *l,
		 unsigned duration_ms, struct mx_measurement *m)
{
	struct qemu_vm vms[MX_MAX_VMS] = { 0 };
	char image[PATH_MAX];
	uint64_t t0 = util_now_ns(), deadline;
	unsigned n = l->nr_vms;

	q->seq++;
	snprintf(image, sizeof(image), "%s/%s", q->guest_dir, mx_workload_image(w));
	for (unsigned i = 0; i < n; i++) {
		snprintf(vms[i].serial, sizeof(vms[i].serial), "%s/%u-%u.serial", q->tmp_dir,
			 q->seq, i);
		snprintf(vms[i].log, sizeof(vms[i].log), "%s/%u-%u.log", q->tmp_dir, q->seq, i);
		mx_workload_cmdline(w, l->vcpus[i], duration_ms, vms[i].cmdline,
				    sizeof(vms[i].cmdline));
		if (spawn(q, &vms[i], image, l->vcpus[i])) {
			m->status = MX_FAILED;
			snprintf(m->reason, sizeof(m->reason), "fork: %s", strerror(errno));
			break;
		}
	}
	deadline = t0 + ((uint64_t)duration_ms * 10 + QEMU_SLACK_S * 1000ull) * 1000000ull;
	if (reap(vms, n, m->vm, deadline) && m->status == MX_OK)
		m->status = MX_FAILED;
	m->wall_s = (double)(util_now_ns() - t0) / 1e9;
	for (unsigned i = 0; i < n; i++) {
		struct mx_vm_result *res = &m->vm[i];
		char *console = slurp(vms[i].serial), *log = slurp(vms[i].log), desc[64];
		int code = vms[i].status >= 0 ? guest_code(vms[i].status) : -1;

		if (!console || mx_parse_console(w, console, res))
			res->ok = false;
		res->ok = res->ok && code == 0;
		if (!res->ok && m->status == MX_OK) {
			m->status = MX_FAILED;
			snprintf(m->reason, sizeof(m->reason), "QEMU VM %u: %s (%s)", i,
				 res->result ? "its checks failed" : "no result line",
				 vms[i].status >= 0 ?
					 describe_status(vms[i].status, desc, sizeof(desc)) :
					 "did not start");
		}
		json_array_append_new(
			m->vms_json,
			json_pack("{s:i, s:i, s:s, s:b, s:i, s:f, s:O*, s:s*, s:s*}", "index",
				  (int)i, "vcpus", (int)res->vcpus, "cmdline", vms[i].cmdline, "ok",
				  res->ok, "guest_exit", code, "stopped_ms",
				  res->end_ns ? (double)(res->end_ns - t0) / 1e6 : -1.0, "result",
				  res->result, "console", console, "qemu_output",
				  log && log[0] && !res->ok ? log : NULL));
		free(console);
		free(log);
		unlink(vms[i].serial);
		unlink(vms[i].log);
	}
	mx_measurement_finish(m, w, q->host_cpus);
}
