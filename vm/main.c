/*
 * lockstep-vm: runs one VM.  Reads a JSON definition and/or flags, builds the machine, runs it
 * until the guest exits, resets or crashes (or a signal, a time limit or the controlling
 * daemon stops it), and exits with a status that says which (enum vm_exit_status; a guest's
 * debug-exit value V gives status V).
 *
 * This file is the control thread: argument handling, signals through a signalfd, the
 * optional kick probe, the console's input (vm/console.c) and the statistics report.  Started
 * as root it confines itself (vm/jail.c) unless told --no-sandbox; files it writes at the end
 * (statistics, the exit report) are opened at the start, while it can still reach them, and
 * so is the console socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vm/vm_internal.h"

#define KICK_PROBE_INTERVAL_NS 2000000ull
#define CONTROL_RECHECK_NS 50000000ull

struct cli {
	struct vmdef cfg;
	struct vm_options opts;
	bool stats;
	const char *stats_json;
	uint64_t kick_probe;
	uint64_t timeout_ms;
	int control_fd; /* from lockstepd, -1 = none */
	const char *control_socket;
	const char *console_socket;
	const char *exit_file;
	bool host_probe;
	const char *console_log;
	int sandbox; /* -1: as root only */
	const char *user;
	bool confine_paths;
	struct sandbox_paths allowed;
	bool report_open; /* the exit file is open at VM_REPORT_FD */
};

static void usage(FILE *out)
{
	fputs("usage: lockstep-vm [--config FILE] [options]\n"
	      "Runs one SMP virtual machine on KVM.\n\n"
	      "  -c, --config FILE       VM definition (JSON); flags below override it\n"
	      "  -n, --name NAME         VM name (default: the kernel's file name)\n"
	      "  -p, --vcpus N           number of vCPUs (1-254)\n"
	      "  -m, --memory SIZE       guest RAM: MiB, or with a unit (512M, 2G)\n"
	      "  -k, --kernel FILE       kernel to boot: a multiboot image, a Linux bzImage or\n"
	      "                          an uncompressed vmlinux with a PVH entry\n"
	      "  -i, --initrd FILE       initial ramdisk (Linux kernels)\n"
	      "  -a, --cmdline STRING    kernel command line\n"
	      "  -s, --serial-log FILE   write the serial console (COM1) to FILE\n"
	      "      --console           copy the serial console to stdout and standard input\n"
	      "                          to it (on a terminal: raw, and Ctrl-] stops the VM)\n"
	      "      --console-socket P  listen on P (mode 0600) for a console client: it gets\n"
	      "                          the serial output and types into the guest\n"
	      "      --timeout SECONDS   stop the VM after this long (exit status 124)\n"
	      "      --stats             print run statistics to stderr at the end\n"
	      "      --stats-json FILE   write run statistics as JSON ('-' = stdout)\n"
	      "      --kick-probe N      kick running vCPUs N times to measure kick latency\n"
	      "      --kvm PATH          KVM device (default /dev/kvm)\n"
	      "      --host-probe        print what the KVM device offers (JSON) and exit\n"
	      "      --control-fd FD     lockstepd's end of the control channel\n"
	      "      --control-socket P  listen on P (mode 0600) for a restarted lockstepd\n"
	      "      --exit-file P       write the final stop reason and status to P (JSON)\n"
	      "      --console-log FILE  also write the serial console to FILE (lockstepd's copy)\n"
	      "      --console-append    append to it rather than truncate it (lockstepd keeps\n"
	      "                          it across runs)\n"
	      "      --sandbox           confine the VM process (the default when run as root):\n"
	      "                          unprivileged user, own namespaces, empty root, cgroup,\n"
	      "                          rlimits, no_new_privs, seccomp (see docs/security.md)\n"
	      "      --no-sandbox        do not\n"
	      "      --user NAME         the sandbox's unprivileged user (default lockstep-vm)\n"
	      "      --allow-path DIR    the definition's files (kernel, initrd, serial.log) must\n"
	      "                          lie beneath DIR (repeatable); as root, opened as --user\n"
	      "      --confine-paths     the same rule with no --allow-path: no file may be named\n"
	      "  -q, --quiet             only report errors\n"
	      "  -h, --help              this text\n"
	      "      --version           print the version\n\n"
	      "Exit status: the guest's debug-exit value (port 0xf4), 0 after a guest reset or a\n"
	      "stop request, 64 usage, 65 bad definition or image, 66 unreadable file, 69 KVM\n"
	      "unusable, 70 internal error, 71 sandbox set-up failed, 80 guest crash, 124 timeout,\n"
	      "159 a system call outside the seccomp allow-list.\n",
	      out);
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* A name derived from the kernel's file name ("build/guest/hello.elf" -> "hello"). */
static void default_name(struct vmdef *cfg)
{
	const char *b = base_name(cfg->kernel);
	size_t n = 0;

	while (b[n] && b[n] != '.' && n < VMDEF_NAME_MAX)
		n++;
	memcpy(cfg->name, b, n);
	cfg->name[n] = '\0';
	if (!vmdef_name_valid(cfg->name))
		strcpy(cfg->name, "vm");
}

static int set_string(char **dst, const char *src)
{
	char *copy = strdup(src);

	if (!copy)
		return -ENOMEM;
	free(*dst);
	*dst = copy;
	return 0;
}

static int parse_args(struct cli *cli, int argc, char **argv)
{
	enum {
		OPT_CONSOLE = 256,
		OPT_STATS,
		OPT_STATS_JSON,
		OPT_KICK,
		OPT_KVM,
		OPT_TIMEOUT,
		OPT_VERSION,
		OPT_CONTROL_FD,
		OPT_CONTROL_SOCKET,
		OPT_CONSOLE_SOCKET,
		OPT_EXIT_FILE,
		OPT_HOST_PROBE,
		OPT_CONSOLE_LOG,
		OPT_SANDBOX,
		OPT_NO_SANDBOX,
		OPT_USER,
		OPT_ALLOW_PATH,
		OPT_CONFINE_PATHS,
		OPT_CONSOLE_APPEND
	};
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "name", required_argument, NULL, 'n' },
		{ "vcpus", required_argument, NULL, 'p' },
		{ "memory", required_argument, NULL, 'm' },
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "cmdline", required_argument, NULL, 'a' },
		{ "serial-log", required_argument, NULL, 's' },
		{ "console", no_argument, NULL, OPT_CONSOLE },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "stats", no_argument, NULL, OPT_STATS },
		{ "stats-json", required_argument, NULL, OPT_STATS_JSON },
		{ "kick-probe", required_argument, NULL, OPT_KICK },
		{ "kvm", required_argument, NULL, OPT_KVM },
		{ "control-fd", required_argument, NULL, OPT_CONTROL_FD },
		{ "control-socket", required_argument, NULL, OPT_CONTROL_SOCKET },
		{ "console-socket", required_argument, NULL, OPT_CONSOLE_SOCKET },
		{ "exit-file", required_argument, NULL, OPT_EXIT_FILE },
		{ "host-probe", no_argument, NULL, OPT_HOST_PROBE },
		{ "console-log", required_argument, NULL, OPT_CONSOLE_LOG },
		{ "console-append", no_argument, NULL, OPT_CONSOLE_APPEND },
		{ "sandbox", no_argument, NULL, OPT_SANDBOX },
		{ "no-sandbox", no_argument, NULL, OPT_NO_SANDBOX },
		{ "user", required_argument, NULL, OPT_USER },
		{ "allow-path", required_argument, NULL, OPT_ALLOW_PATH },
		{ "confine-paths", no_argument, NULL, OPT_CONFINE_PATHS },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL;
	struct vmdef flags;
	bool name_given = false;
	char err[512];
	uint64_t u;
	int opt, ret = 0;

	/* Flags override the file, whatever their order: collect them first. */
	vmdef_init(&flags);
	flags.vcpus = 0;
	flags.memory = 0;
	while ((opt = getopt_long(argc, argv, "c:n:p:m:k:i:a:s:qh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'n':
			if (!vmdef_name_valid(optarg)) {
				fprintf(stderr, "lockstep-vm: --name: 1-63 characters of A-Z a-z "
						"0-9 . _ - not starting with . or -\n");
				goto usage;
			}
			strcpy(flags.name, optarg);
			name_given = true;
			break;
		case 'p':
			if (util_parse_u64(optarg, 1, VMDEF_VCPUS_MAX, &u)) {
				fprintf(stderr, "lockstep-vm: --vcpus must be between 1 and %d\n",
					VMDEF_VCPUS_MAX);
				goto usage;
			}
			flags.vcpus = (uint32_t)u;
			break;
		case 'm':
			if (util_parse_size(optarg, 1u << 20, &u) || u < VMDEF_MEMORY_MIN ||
			    u > VMDEF_MEMORY_MAX || (u & ((1u << 20) - 1))) {
				fprintf(stderr,
					"lockstep-vm: --memory must be whole MiB between 2M "
					"and 256G\n");
				goto usage;
			}
			flags.memory = u;
			break;
		case 'k':
			ret = set_string(&flags.kernel, optarg);
			break;
		case 'i':
			ret = set_string(&flags.initrd, optarg);
			break;
		case 'a':
			if (strlen(optarg) > VMDEF_CMDLINE_MAX) {
				fprintf(stderr, "lockstep-vm: --cmdline is longer than %d bytes\n",
					VMDEF_CMDLINE_MAX);
				goto usage;
			}
			ret = set_string(&flags.cmdline, optarg);
			break;
		case 's':
			ret = set_string(&flags.serial_log, optarg);
			break;
		case OPT_CONSOLE:
			flags.serial_stdout = true;
			break;
		case OPT_TIMEOUT:
			if (util_parse_u64(optarg, 1, 86400, &u)) {
				fprintf(stderr, "lockstep-vm: --timeout takes 1-86400 seconds\n");
				goto usage;
			}
			cli->timeout_ms = u * 1000;
			break;
		case OPT_STATS:
			cli->stats = true;
			break;
		case OPT_STATS_JSON:
			cli->stats_json = optarg;
			break;
		case OPT_KICK:
			if (util_parse_u64(optarg, 1, 1000000, &cli->kick_probe)) {
				fprintf(stderr, "lockstep-vm: --kick-probe takes 1-1000000\n");
				goto usage;
			}
			break;
		case OPT_KVM:
			cli->opts.kvm_path = optarg;
			break;
		case OPT_CONTROL_FD:
			if (util_parse_u64(optarg, 3, 1 << 20, &u) || fcntl((int)u, F_GETFD) < 0) {
				fprintf(stderr,
					"lockstep-vm: --control-fd: not an open descriptor\n");
				goto usage;
			}
			cli->control_fd = (int)u;
			break;
		case OPT_CONTROL_SOCKET:
			cli->control_socket = optarg;
			break;
		case OPT_CONSOLE_SOCKET:
			cli->console_socket = optarg;
			break;
		case OPT_EXIT_FILE:
			cli->exit_file = optarg;
			break;
		case OPT_HOST_PROBE:
			cli->host_probe = true;
			break;
		case OPT_CONSOLE_LOG:
			cli->console_log = optarg;
			break;
		case OPT_CONSOLE_APPEND:
			cli->opts.console_append = true;
			break;
		case OPT_SANDBOX:
		case OPT_NO_SANDBOX:
			cli->sandbox = opt == OPT_SANDBOX;
			break;
		case OPT_USER:
			cli->user = optarg;
			break;
		case OPT_ALLOW_PATH:
			if (sandbox_paths_add(&cli->allowed, optarg, err, sizeof(err))) {
				fprintf(stderr, "lockstep-vm: --allow-path: %s\n", err);
				goto usage;
			}
			cli->confine_paths = true;
			break;
		case OPT_CONFINE_PATHS:
			cli->confine_paths = true;
			break;
		case 'q':
			cli->opts.quiet = true;
			break;
		case 'h':
			usage(stdout);
			vmdef_fini(&flags);
			return 1;
		case OPT_VERSION:
			printf("lockstep-vm %s\n", LOCKSTEP_VERSION);
			vmdef_fini(&flags);
			return 1;
		default:
			goto usage;
		}
		if (ret)
			goto fail;
	}
	if (optind < argc) {
		fprintf(stderr, "lockstep-vm: unexpected argument '%s'\n", argv[optind]);
		goto usage;
	}
	if (cli->host_probe) {
		/* No VM: only --kvm counts. */
		vmdef_fini(&flags);
		return 0;
	}
	if (config && (ret = vmdef_load(&cli->cfg, config, err, sizeof(err)))) {
		fprintf(stderr, "lockstep-vm: %s\n", err);
		vmdef_fini(&flags);
		return ret == -EINVAL || ret == -EFBIG ? -VM_EXIT_CONFIG : -VM_EXIT_NOINPUT;
	}
	if (name_given)
		strcpy(cli->cfg.name, flags.name);
	if (flags.vcpus)
		cli->cfg.vcpus = flags.vcpus;
	if (flags.memory)
		cli->cfg.memory = flags.memory;
	if (flags.serial_stdout)
		cli->cfg.serial_stdout = true;
	if ((flags.kernel && (ret = set_string(&cli->cfg.kernel, flags.kernel))) ||
	    (flags.initrd && (ret = set_string(&cli->cfg.initrd, flags.initrd))) ||
	    (flags.cmdline && (ret = set_string(&cli->cfg.cmdline, flags.cmdline))) ||
	    (flags.serial_log && (ret = set_string(&cli->cfg.serial_log, flags.serial_log))))
		goto fail;
	vmdef_fini(&flags);
	if (!cli->cfg.kernel) {
		fprintf(stderr, "lockstep-vm: no kernel: give --kernel FILE or a --config with "
				"\"kernel\"\n");
		return -VM_EXIT_USAGE;
	}
	if (!cli->cfg.name[0])
		default_name(&cli->cfg);
	if (vmdef_validate(&cli->cfg, err, sizeof(err))) {
		fprintf(stderr, "lockstep-vm: %s\n", err);
		return -VM_EXIT_CONFIG;
	}
	return 0;

usage:
	vmdef_fini(&flags);
	usage(stderr);
	return -VM_EXIT_USAGE;
fail:
	vmdef_fini(&flags);
	fprintf(stderr, "lockstep-vm: %s\n", strerror(-ret));
	return -VM_EXIT_INTERNAL;
}

static int block_control_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	signal(SIGPIPE, SIG_IGN);
	/* Blocked before any thread starts, so only the signalfd sees them. */
	return -pthread_sigmask(SIG_BLOCK, set, NULL);
}

/*
 * Kicks the next vCPU whose previous kick has been seen, so every probe kick is one sample:
 * two kicks pending at once would merge into one signal.  False if none was ready.
 */
static bool kick_next(struct vm *vm, uint32_t *next)
{
	for (uint32_t tries = 0; tries < vm->nr_vcpus; tries++) {
		struct vm_vcpu *v = &vm->vcpus[(*next)++ % vm->nr_vcpus];

		if (atomic_load(&v->tid) && !atomic_load(&v->kick_sent_ns)) {
			vm_vcpu_kick(v);
			return true;
		}
	}
	return false;
}

/*
 * The control loop: serves the control channel, signals, the time limit and the kick probe
 * until `done` says to stop.
 */
static void control_loop(struct vm *vm, struct cli *cli, struct vm_control *ctl,
			 struct vm_console *con, int sigfd,
			 bool (*done)(struct vm *vm, struct vm_control *ctl))
{
	uint64_t deadline = cli->timeout_ms ? vm->start_ns + cli->timeout_ms * 1000000ull : 0;
	uint64_t next_kick = util_now_ns() + KICK_PROBE_INTERVAL_NS;
	uint64_t kicks_left = cli->kick_probe;
	uint32_t kick_cursor = 0;

	while (!done(vm, ctl)) {
		struct pollfd pfd[4 + VM_CONSOLE_POLLFDS] = { { vm->stop_fd, POLLIN, 0 },
							      { sigfd, POLLIN, 0 } };
		int nctl = vm_control_pollfds(ctl, &pfd[2]);
		int ncon = vm_console_pollfds(con, &pfd[2 + nctl]);
		uint64_t now = util_now_ns(), wake = deadline, watch, sample;
		int timeout = -1;

		if (kicks_left && (!wake || next_kick < wake))
			wake = next_kick;
		if (ctl->conn_fd >= 0 && !ctl->hello_sent)
			wake = now + 1000000; /* vCPU threads are still reporting in */
		sample = vm_runstate_tick(vm, vm_lockwatch_wants_samples(vm->lockwatch));
		if (sample && (!wake || now + sample < wake))
			wake = now + sample;
		watch = vm_lockwatch_tick(vm->lockwatch, ctl);
		if (watch && (!wake || now + watch < wake))
			wake = now + watch;
		/*
		 * What asks for samples changes without waking us: lockstepd's scheduler writes
		 * the sched page, the guest registers its shared page.  Look again soon.
		 */
		if (!wake || wake > now + CONTROL_RECHECK_NS)
			wake = now + CONTROL_RECHECK_NS;
		if (wake)
			timeout = wake > now ? (int)((wake - now + 999999) / 1000000) : 0;
		if (poll(pfd, 2 + (nfds_t)nctl + (nfds_t)ncon, timeout) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sigfd, &si, sizeof(si)) == sizeof(si))
				util_log(&vm->log, UTIL_LOG_INFO, "stopping on signal %u",
					 si.ssi_signo);
			ctl->release = true;
			vm_request_stop(vm, VM_STOP_REQUEST, 0);
		}
		vm_control_handle(ctl, &pfd[2], nctl);
		vm_console_handle(con, &pfd[2 + nctl], ncon);
		now = util_now_ns();
		if (deadline && now >= deadline) {
			util_log(&vm->log, UTIL_LOG_WARN, "time limit reached, stopping the VM");
			ctl->release = true;
			vm_request_stop(vm, VM_STOP_TIMEOUT, VM_EXIT_TIMEOUT);
		}
		if (kicks_left && now >= next_kick && !vm_stopping(vm)) {
			if (kick_next(vm, &kick_cursor)) {
				kicks_left--;
				vm->probe_kicks_sent++;
			}
			next_kick = now + KICK_PROBE_INTERVAL_NS;
		}
	}
}

static bool vm_has_stopped(struct vm *vm, struct vm_control *ctl)
{
	return vm_stopping(vm);
}

static bool controller_released(struct vm *vm, struct vm_control *ctl)
{
	return ctl->release;
}

/*
 * The final word for a daemon that was away when the VM stopped, written into the exit report
 * opened at the start (VM_REPORT_FD), where the SIGSYS handler writes too.
 */
static void write_exit_report(struct vm *vm, int status)
{
	vm_proto_exit_write_fd(VM_REPORT_FD, (enum vm_stop_reason)atomic_load(&vm->stop_reason),
			       status);
}

static void write_stats(struct vm *vm, struct cli *cli, int stats_fd)
{
	json_t *report;

	if (cli->stats)
		vm_report_text(vm, STDERR_FILENO);
	if (!cli->stats_json)
		return;
	report = vm_report_json(vm);
	if (!report)
		return;
	if (strcmp(cli->stats_json, "-") == 0)
		json_dumpf(report, stdout, JSON_INDENT(2));
	else if (stats_fd < 0 || json_dumpfd(report, stats_fd, JSON_INDENT(2)))
		fprintf(stderr, "lockstep-vm: cannot write %s\n", cli->stats_json);
	json_decref(report);
}

/*
 * Ends a worker that will run no guest (bad arguments, definition or image; no KVM; a host
 * failure before the guest ran) with `status`.  Its exit file says so too (reason "error"),
 * so that lockstepd learns why the start failed rather than finding a worker that died.  Once
 * open_outputs() has run, the file is open at VM_REPORT_FD (it may no longer be reachable by
 * its path); before, it is opened here.
 */
static int refuse(const struct cli *cli, int status)
{
	int fd;

	if (!cli->exit_file)
		return status;
	if (cli->report_open)
		fd = VM_REPORT_FD;
	else
		fd = open(cli->exit_file, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
			  0600);
	if (fd >= 0)
		vm_proto_exit_write_fd(fd, VM_STOP_ERROR, status);
	if (fd >= 0 && fd != VM_REPORT_FD)
		close(fd);
	return status;
}

/*
 * Descriptors for files written at the end or by the guest, opened now while the host's file
 * system is in reach: the exit report goes to VM_REPORT_FD (/dev/null without --exit-file, so
 * that number never names another file).  These are the invoker's own paths, not the
 * definition's.
 */
static int open_outputs(struct cli *cli, int *stats_fd, int *console_fd)
{
	int fd;

	*stats_fd = *console_fd = -1;
	if (cli->control_fd == VM_REPORT_FD) {
		cli->control_fd = fcntl(VM_REPORT_FD, F_DUPFD_CLOEXEC, VM_REPORT_FD + 1);
		if (cli->control_fd < 0)
			return -errno;
		close(VM_REPORT_FD);
	}
	fd = cli->exit_file ? open(cli->exit_file,
				   O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600) :
			      open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "lockstep-vm: %s: %s\n",
			cli->exit_file ? cli->exit_file : "/dev/null", strerror(errno));
		return -errno;
	}
	if (fd != VM_REPORT_FD && (dup3(fd, VM_REPORT_FD, O_CLOEXEC) < 0 || close(fd) < 0)) {
		fprintf(stderr, "lockstep-vm: descriptor %d: %s\n", VM_REPORT_FD, strerror(errno));
		return -errno;
	}
	cli->report_open = cli->exit_file != NULL;
	if (cli->stats_json && strcmp(cli->stats_json, "-") != 0) {
		*stats_fd = open(cli->stats_json, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (*stats_fd < 0) {
			fprintf(stderr, "lockstep-vm: %s: %s\n", cli->stats_json, strerror(errno));
			return -errno;
		}
	}
	if (cli->console_log) {
		*console_fd = open(cli->console_log,
				   O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC |
					   (cli->opts.console_append ? 0 : O_TRUNC),
				   0640);
		if (*console_fd < 0) {
			fprintf(stderr, "lockstep-vm: %s: %s\n", cli->console_log, strerror(errno));
			return -errno;
		}
	}
	return 0;
}

#ifdef LOCKSTEP_TEST_HOOKS
/*
 * LOCKSTEP_TEST_SECCOMP_TRAP=NAME[:KIND][,NAME[:KIND]...]: a thread of VM NAME makes a
 * forbidden system call once it is confined, to prove the report path (tests only).  KIND is
 * vcpu (the first vCPU thread), devices or irq-steer; without it, the control thread.
 */
static int test_trap_kind(const char *name)
{
	static const struct {
		const char *suffix;
		enum vm_thread_kind kind;
	} kinds[] = {
		{ "", VM_THREAD_CONTROL },
		{ ":vcpu", VM_THREAD_VCPU },
		{ ":devices", VM_THREAD_DEVICES },
		{ ":irq-steer", VM_THREAD_STEERING },
	};
	const char *v = getenv("LOCKSTEP_TEST_SECCOMP_TRAP");
	size_t n = strlen(name);

	for (; v && *v; v = strchr(v, ',') ? strchr(v, ',') + 1 : NULL) {
		if (strncmp(v, name, n) != 0)
			continue;
		for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
			size_t len = strlen(kinds[i].suffix);

			if (strncmp(v + n, kinds[i].suffix, len) == 0 &&
			    (!v[n + len] || v[n + len] == ','))
				return (int)kinds[i].kind + 1;
		}
	}
	return 0;
}
#endif

/*
 * Decides what the sandbox does: everything as root (unless --no-sandbox), rlimits,
 * no_new_privs and seccomp when asked for without root; looks the user up while NSS works.
 */
static int plan_jail(struct cli *cli, struct vm_jail *j)
{
	char err[512];
	bool root = geteuid() == 0;

	j->enabled = cli->sandbox < 0 ? root : cli->sandbox;
	j->privileged = j->enabled && root;
	/* The definition's files are opened as the worker user whenever root opens them. */
	if ((j->privileged || (root && cli->confine_paths)) &&
	    sandbox_user_lookup(cli->user ? cli->user : SANDBOX_USER_DEFAULT, &j->user, err,
				sizeof(err))) {
		fprintf(stderr, "lockstep-vm: %s%s\n", err,
			j->privileged ? " (or run it with --no-sandbox)" : "");
		return -VM_EXIT_SANDBOX;
	}
#ifdef LOCKSTEP_TEST_HOOKS
	j->test_trap = test_trap_kind(cli->cfg.name);
#endif
	return 0;
}

/* Confines the process once the machine is built: all but the threads' seccomp filters. */
static int confine(struct vm *vm, struct vm_jail *j)
{
	char err[512];
	int ret;

	vm->jail = j;
	ret = vm_jail_enter(j, vm, err, sizeof(err));
	if (!ret && (ret = vm_jail_filters(j, vm)))
		snprintf(err, sizeof(err), "sandbox: seccomp filters: %s", strerror(-ret));
	if (ret)
		util_log(&vm->log, UTIL_LOG_ERROR, "%s", err);
	return ret;
}

int main(int argc, char **argv)
{
	struct cli cli = { .opts.start_ns = util_now_ns(), .control_fd = -1, .sandbox = -1 };
	struct vm_jail jail = { .enabled = false };
	struct vm_control ctl;
	struct vm_console con;
	struct vm *vm = NULL;
	int stats_fd = -1, console_fd = -1;
	bool preserve;
	sigset_t sigs;
	int ret, status, sigfd;

	/* jansson seeds its hash tables from /dev/urandom on first use: before the sandbox. */
	json_object_seed(0);
	vmdef_init(&cli.cfg);
	ret = parse_args(&cli, argc, argv);
	if (ret < 0) {
		vmdef_fini(&cli.cfg);
		return refuse(&cli, -ret);
	}
	if (ret) {
		vmdef_fini(&cli.cfg);
		return 0;
	}
	if (cli.host_probe) {
		/* What this host offers, not a VM: nothing to confine. */
		vmdef_fini(&cli.cfg);
		return vm_host_probe(cli.opts.kvm_path, stdout);
	}
	ret = plan_jail(&cli, &jail);
	if (!ret && jail.privileged && getpid() != 1 && vm_jail_relay(&jail, &cli.cfg, &status)) {
		/* The relay: the worker ran in a pid namespace of its own and is gone. */
		if (cli.control_socket)
			unlink(cli.control_socket);
		vmdef_fini(&cli.cfg);
		return status;
	}
	if (!ret && open_outputs(&cli, &stats_fd, &console_fd))
		ret = -VM_EXIT_NOINPUT;
	if (ret) {
		vmdef_fini(&cli.cfg);
		return refuse(&cli, -ret);
	}
	if (block_control_signals(&sigs) ||
	    (sigfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		perror("lockstep-vm: signals");
		vmdef_fini(&cli.cfg);
		return refuse(&cli, VM_EXIT_INTERNAL);
	}
	cli.opts.allowed = cli.confine_paths ? &cli.allowed : NULL;
	cli.opts.open_as = cli.confine_paths && geteuid() == 0 ? &jail.user : NULL;
	cli.opts.console_fd = console_fd;
	ret = vm_create(&cli.cfg, &cli.opts, &vm, &status);
	vmdef_fini(&cli.cfg);
	if (ret) {
		status = refuse(&cli, status);
		goto out_early;
	}
	ret = vm_control_init(&ctl, vm, cli.control_fd, cli.control_socket);
	if (ret) {
		util_log(&vm->log, UTIL_LOG_ERROR, "control socket %s: %s", cli.control_socket,
			 strerror(-ret));
		status = refuse(&cli, VM_EXIT_INTERNAL);
		goto out_vm;
	}
	ret = vm_console_init(&con, vm, cli.console_socket, vm->cfg.serial_stdout);
	if (ret) {
		util_log(&vm->log, UTIL_LOG_ERROR, "console socket %s: %s", cli.console_socket,
			 strerror(-ret));
		vm_control_fini(&ctl);
		status = refuse(&cli, VM_EXIT_INTERNAL);
		goto out_vm;
	}
	ctl.keep_socket_file = jail.privileged; /* the relay removes it */
	if (jail.enabled && confine(vm, &jail))
		vm_request_stop(vm, VM_STOP_ERROR, VM_EXIT_SANDBOX); /* reported as any error */
	else if (vm_run(vm) == 0) {
		/* Stops the VM if it fails.  Confined, it can no longer remove its socket's file. */
		if (jail.enabled && !vm_jail_lock_thread(vm, VM_THREAD_CONTROL))
			ctl.keep_socket_file = con.keep_socket_file = true;
		control_loop(vm, &cli, &ctl, &con, sigfd, vm_has_stopped);
	}
	vm_stop_vcpus(vm);
	status = vm_exit_status(vm);
	/* A crashed guest can be kept for inspection until its controller lets it go. */
	preserve = vm->cfg.on_crash == VMDEF_ON_CRASH_PRESERVE &&
		   atomic_load(&vm->stop_reason) == VM_STOP_GUEST_CRASH && ctl.conn_fd >= 0 &&
		   !ctl.release;
	vm_control_stopped(&ctl, status, preserve);
	if (preserve)
		control_loop(vm, &cli, &ctl, &con, sigfd, controller_released);
	write_stats(vm, &cli, stats_fd);
	/* The final word for a daemon that was away when the VM stopped. */
	if (cli.exit_file)
		write_exit_report(vm, status);
	vm_control_stopped(&ctl, status, false);
	vm_console_fini(&con);
	vm_control_fini(&ctl);
out_vm:
	vm_destroy(vm);
out_early:
	vm_jail_fini(&jail);
	close(sigfd);
	if (stats_fd >= 0)
		close(stats_fd);
	if (console_fd >= 0)
		close(console_fd);
	return status;
}
