/*
 * lockstepd: the host daemon.  Parses options, takes the run directory's lock (one daemon per
 * run directory), loads stored definitions, re-attaches to VMs that outlived a previous
 * daemon, starts autostart VMs, then serves JSON-RPC on its socket until SIGTERM/SIGINT.
 *
 * Stopping the daemon leaves running VMs running: their workers are in sessions of their own
 * and the next daemon finds them through the run directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/daemon.h"

#define LOCKSTEPD_CONF "/etc/lockstep/lockstepd.conf"

static void usage(FILE *out)
{
	fputs("usage: lockstepd [options]\n"
	      "The lockstep host daemon: runs SMP VMs, one lockstep-vm worker each.\n\n"
	      "  --run-dir DIR        runtime state and the socket (default /run/lockstep)\n"
	      "  --state-dir DIR      stored definitions (default /var/lib/lockstep)\n"
	      "  --socket PATH        JSON-RPC socket (default RUN_DIR/lockstepd.sock)\n"
	      "  --vm-binary PATH     the worker (default: lockstep-vm beside lockstepd, else\n"
	      "                       in the folder of the installed programs)\n"
	      "  --foreground         stay in the foreground and log to stderr (as under\n"
	      "                       systemd, whose journal keeps the lines)\n"
	      "  --log-level LEVEL    error, warn, info (default) or debug\n"
	      "  --max-clients N      clients of the JSON-RPC socket, and of the read-write\n"
	      "                       libvirt socket (each; default 256)\n"
	      "  --max-clients-ro N   clients of the read-only libvirt socket (default 64)\n"
	      "  --max-clients-per-user N\n"
	      "                       connections of one user other than root on each\n"
	      "                       endpoint (default 32; 0: no cap)\n"
	      "  --handshake-timeout S\n"
	      "                       seconds a libvirt client has to open its connection\n"
	      "                       (default 10)\n"
	      "  --max-buffered BYTES what clients may make lockstepd hold, all together:\n"
	      "                       requests arriving, replies unread (default 268435456)\n"
	      "  --max-vms N          defined VMs (default 1024)\n"
	      "  --max-frame BYTES    largest JSON-RPC frame (default 1048576)\n"
	      "  --shutdown-timeout S default vm.shutdown timeout in seconds (default 30)\n"
	      "  --virt-socket PATH   libvirt endpoint for virsh\n"
	      "                       (default /run/libvirt/virtlockstepd-sock)\n"
	      "  --virt-socket-ro P   its read-only twin (default: the above + \"-ro\")\n"
	      "  --no-virt            no libvirt endpoint, unless --virt-socket names one\n"
	      "  --config FILE        settings file (default /etc/lockstep/lockstepd.conf if it\n"
	      "                       exists; \"\" for none): allow_path, worker_user\n"
	      "  --allow-path DIR     definitions may name files (kernel, serial.log) beneath\n"
	      "                       DIR (repeatable; adds to the settings file's)\n"
	      "  --worker-user NAME   the unprivileged user VM workers run as (default\n"
	      "                       lockstep-vm)\n"
	      "  --no-sandbox         start workers unconfined (debugging and measurements only)\n"
	      "  --version            print the version\n\n"
	      "Without --foreground lockstepd daemonises and appends its log to\n"
	      "RUN_DIR/lockstepd.log (default /run/lockstep/lockstepd.log); each VM's worker\n"
	      "logs to RUN_DIR/vms/NAME.log and its serial console goes to RUN_DIR/vms/NAME.console\n"
	      "(and the definition's serial.log too).  Stopping lockstepd leaves running VMs running.\n",
	      out);
}

/* The worker beside lockstepd (a build tree), else where the install layout puts it. */
static void default_vm_binary(char *buf, size_t size)
{
	if (util_exe_relative("lockstep-vm", buf, size) == 0)
		return;
	if (util_exe_relative(LOCKSTEP_SBIN_TO_BIN "/lockstep-vm", buf, size) == 0)
		return;
	util_strlcpy(buf, "lockstep-vm", size);
}

static int parse_args(struct daemon_options *o, int argc, char **argv)
{
	enum {
		RUN = 256,
		STATE,
		SOCK,
		VMBIN,
		FG,
		LEVEL,
		CLIENTS,
		VMS,
		FRAME,
		TIMEOUT,
		VERSION,
		VIRT,
		VIRT_RO,
		NO_VIRT,
		CONFIG,
		ALLOW,
		WUSER,
		NO_SANDBOX,
		CLIENTS_RO,
		CLIENTS_USER,
		HANDSHAKE,
		BUFFERED
	};
	static const struct option longopts[] = {
		{ "run-dir", required_argument, NULL, RUN },
		{ "state-dir", required_argument, NULL, STATE },
		{ "socket", required_argument, NULL, SOCK },
		{ "vm-binary", required_argument, NULL, VMBIN },
		{ "foreground", no_argument, NULL, FG },
		{ "log-level", required_argument, NULL, LEVEL },
		{ "max-clients", required_argument, NULL, CLIENTS },
		{ "max-vms", required_argument, NULL, VMS },
		{ "max-frame", required_argument, NULL, FRAME },
		{ "shutdown-timeout", required_argument, NULL, TIMEOUT },
		{ "version", no_argument, NULL, VERSION },
		{ "virt-socket", required_argument, NULL, VIRT },
		{ "virt-socket-ro", required_argument, NULL, VIRT_RO },
		{ "no-virt", no_argument, NULL, NO_VIRT },
		{ "config", required_argument, NULL, CONFIG },
		{ "allow-path", required_argument, NULL, ALLOW },
		{ "worker-user", required_argument, NULL, WUSER },
		{ "no-sandbox", no_argument, NULL, NO_SANDBOX },
		{ "max-clients-ro", required_argument, NULL, CLIENTS_RO },
		{ "max-clients-per-user", required_argument, NULL, CLIENTS_USER },
		{ "handshake-timeout", required_argument, NULL, HANDSHAKE },
		{ "max-buffered", required_argument, NULL, BUFFERED },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL;
	char err[512];
	uint64_t u;
	int opt;

	*o = (struct daemon_options){
		.log_level = UTIL_LOG_INFO,
		.max_clients = 256,
		.max_clients_ro = 64,
		.max_clients_per_user = 32,
		.handshake_timeout_ms = 10000,
		.max_buffered = 256u << 20,
		.max_vms = 1024,
		.max_frame = 1u << 20,
		.shutdown_timeout_ms = 30000,
	};
	strcpy(o->run_dir, "/run/lockstep");
	strcpy(o->state_dir, "/var/lib/lockstep");
	default_vm_binary(o->vm_binary, sizeof(o->vm_binary));
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int bad = 0;

		switch (opt) {
		case RUN:
			bad = util_strlcpy(o->run_dir, optarg, sizeof(o->run_dir));
			break;
		case STATE:
			bad = util_strlcpy(o->state_dir, optarg, sizeof(o->state_dir));
			break;
		case SOCK:
			bad = util_strlcpy(o->socket_path, optarg, 108);
			break;
		case VMBIN:
			bad = util_strlcpy(o->vm_binary, optarg, sizeof(o->vm_binary));
			break;
		case FG:
			o->foreground = true;
			break;
		case LEVEL:
			bad = util_log_level_parse(optarg, &o->log_level);
			break;
		case CLIENTS:
			bad = util_parse_u64(optarg, 1, 65536, &u);
			o->max_clients = (unsigned)u;
			break;
		case CLIENTS_RO:
			bad = util_parse_u64(optarg, 1, 65536, &u);
			o->max_clients_ro = (unsigned)u;
			break;
		case CLIENTS_USER:
			bad = util_parse_u64(optarg, 0, 65536, &u);
			o->max_clients_per_user = (unsigned)u;
			break;
		case HANDSHAKE:
			bad = util_parse_u64(optarg, 1, 3600, &u);
			o->handshake_timeout_ms = u * 1000;
			break;
		case BUFFERED:
			bad = util_parse_u64(optarg, 1u << 20, 1ull << 40, &u);
			o->max_buffered = (size_t)u;
			break;
		case VMS:
			bad = util_parse_u64(optarg, 1, 100000, &u);
			o->max_vms = (unsigned)u;
			break;
		case FRAME:
			bad = util_parse_u64(optarg, 1024, 64u << 20, &u);
			o->max_frame = (size_t)u;
			break;
		case TIMEOUT:
			bad = util_parse_u64(optarg, 1, 3600, &u);
			o->shutdown_timeout_ms = u * 1000;
			break;
		case VIRT:
			bad = util_strlcpy(o->virt_socket, optarg, sizeof(o->virt_socket));
			break;
		case VIRT_RO:
			bad = util_strlcpy(o->virt_socket_ro, optarg, sizeof(o->virt_socket_ro));
			break;
		case NO_VIRT:
			o->no_virt = true;
			break;
		case CONFIG:
			config = optarg;
			break;
		case ALLOW:
			if (sandbox_paths_add(&o->allowed, optarg, err, sizeof(err))) {
				fprintf(stderr, "lockstepd: --allow-path: %s\n", err);
				return -1;
			}
			break;
		case WUSER:
			bad = !optarg[0] ||
			      util_strlcpy(o->worker_user, optarg, sizeof(o->worker_user));
			break;
		case NO_SANDBOX:
			o->no_sandbox = true;
			break;
		case VERSION:
			printf("lockstepd %s\n", LOCKSTEP_VERSION);
			return 1;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -1;
		}
		if (bad) {
			fprintf(stderr, "lockstepd: bad value for --%s: %s\n",
				longopts[opt - RUN].name, optarg);
			return -1;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return -1;
	}
	if (o->virt_socket[0]) /* naming a socket asks for the endpoint, whatever the order */
		o->no_virt = false;
	if (!o->socket_path[0] &&
	    snprintf(o->socket_path, 108, "%s/lockstepd.sock", o->run_dir) >= 108) {
		fprintf(stderr, "lockstepd: the socket path is too long: use --socket\n");
		return -1;
	}
	if ((!config || config[0]) && conf_load(o, config ? config : LOCKSTEPD_CONF, config != NULL,
						o->worker_user[0] != 0, err, sizeof(err))) {
		fprintf(stderr, "lockstepd: %s\n", err);
		return -1;
	}
	if (access(o->vm_binary, X_OK) < 0) {
		fprintf(stderr, "lockstepd: worker binary %s: %s (use --vm-binary)\n", o->vm_binary,
			strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Tells systemd how lockstepd is doing (Type=notify): READY=1 once it serves, STOPPING=1 when
 * it stops.  A datagram to $NOTIFY_SOCKET (a path, or an abstract name after '@'), as
 * sd_notify(3) describes it; nothing without the variable.
 */
static void notify_systemd(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof(addr.sun_path))
		return;
	memcpy(addr.sun_path, path, strlen(path));
	if (path[0] == '@')
		addr.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr, len) < 0) {
		/* Not under systemd after all, or it went: nothing to tell. */
	}
	close(fd);
}

/* Classic double-fork daemonisation; the parent returns once the child is ready to serve. */
static int daemonize(int *ready_fd)
{
	int pipefd[2];
	pid_t pid;
	char c;

	if (pipe(pipefd) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(pipefd[1]);
		/* The daemon writes one byte when it serves; EOF without it means it failed. */
		exit(read(pipefd[0], &c, 1) == 1 ? 0 : 1);
	}
	close(pipefd[0]);
	setsid();
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0)
		_exit(0);
	*ready_fd = pipefd[1];
	return 0;
}

static void redirect_output(const struct daemon_options *o)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	int log;

	log = open(o->log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (null >= 0)
		dup2(null, 0);
	if (log >= 0) {
		dup2(log, 1);
		dup2(log, 2);
		close(log);
	}
	if (null >= 0)
		close(null);
}

int main(int argc, char **argv)
{
	struct daemon_options opts;
	struct daemon d;
	int ready_fd = -1, ret;

	ret = parse_args(&opts, argc, argv);
	if (ret)
		return ret > 0 ? 0 : 64;
	signal(SIGPIPE, SIG_IGN);
	if (mkdir(opts.run_dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "lockstepd: %s: %s\n", opts.run_dir, strerror(errno));
		return 1;
	}
	if (!opts.foreground) {
		snprintf(opts.log_file, sizeof(opts.log_file), "%s/lockstepd.log", opts.run_dir);
		ret = daemonize(&ready_fd);
		if (ret) {
			fprintf(stderr, "lockstepd: cannot daemonise: %s\n", strerror(-ret));
			return 1;
		}
	}
	ret = daemon_init(&d, &opts);
	if (!ret) {
		/* Sockets are bound: from here on only what starting workers needs. */
		confine_init(&d);
		ret = confine_drop_privileges(&d);
	}
	if (ret) {
		daemon_fini(&d); /* what init set up before it failed */
		return 1;
	}
	if (!opts.foreground) {
		redirect_output(&opts);
		if (write(ready_fd, "1", 1) != 1) {
			/* The parent is gone; nothing to tell. */
		}
		close(ready_fd);
	}
	notify_systemd("READY=1\nSTATUS=serving");
	ret = daemon_run(&d);
	notify_systemd("STOPPING=1");
	daemon_fini(&d);
	return ret ? 1 : 0;
}
