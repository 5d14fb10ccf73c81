/*
 * lockstep-bench sandbox: what the worker's confinement costs, measured on lockstep-vm itself
 * (the worker binary beside this program) run with --sandbox and with --no-sandbox, the two
 * runs of each repetition in alternating order so that a drift of the machine's load falls on
 * both alike.
 *
 *   lockstep-bench sandbox [--guest-dir DIR] [--reps N] [--kicks N] [--samples N] [--json]
 *
 * Per repetition and mode:
 *   doorbell   the latency guest (guest/programs/latency.c) on 1 vCPU: the median ring-3
 *              round trip of a no-op doorbell call (an exit to the worker's vCPU thread, which
 *              runs under its seccomp filter) and, as a control that never leaves the guest,
 *              the median ring-3 -> ring-0 -> ring-3 system call;
 *   kick       the idle guest on 2 vCPUs with --kick-probe N: the median kick latency (the
 *              control thread kicks running vCPUs; the mean of the vCPUs' medians);
 *   first byte the worker's own view of its start: from the process's start to the guest's
 *              first serial byte (stats first_serial_byte_ms), which includes building the
 *              sandbox (namespaces, empty root, user, filters) but not lockstepd's part;
 *              `lockstep-bench start-latency` against a lockstepd with and without
 *              --no-sandbox measures vm.start -> first byte through the daemon.
 * Reported: the median over the repetitions of each figure per mode, and their ratio.
 * Confinement needs root; run as another user, --sandbox gives only rlimits, no_new_privs and
 * seccomp, and the report says which it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clients/bench/bench.h"
#include "clients/bench/matrix.h"
#include "util/util.h"

#define MODES 2 /* 0: --sandbox, 1: --no-sandbox */
#define FIGURES 4

static const char *const mode_flag[MODES] = { "--sandbox", "--no-sandbox" };
static const char *const figure_name[FIGURES] = { "doorbell_ns", "syscall_ns", "kick_ns",
						  "first_byte_us" };

struct sandbox_opts {
	char guest_dir[PATH_MAX];
	char vm[PATH_MAX];
	unsigned reps, kicks, samples;
	bool json;
};

static void usage(FILE *out)
{
	fputs("usage: lockstep-bench sandbox [--guest-dir DIR] [--reps N] [--kicks N]\n"
	      "                              [--samples N] [--json]\n"
	      "The cost of the worker's sandbox: lockstep-vm with --sandbox and --no-sandbox,\n"
	      "alternating, N repetitions (default 5): the ring-3 doorbell round trip and a\n"
	      "ring-3 system call (latency guest), the kick latency (idle guest, --kick-probe,\n"
	      "default 400 kicks) and the worker's start to first serial byte.  Medians over\n"
	      "the repetitions and their ratio.  Run it as root: confinement needs it.\n",
	      out);
}

static int parse(struct sandbox_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "guest-dir", required_argument, NULL, 'g' },
		{ "reps", required_argument, NULL, 'r' },
		{ "kicks", required_argument, NULL, 'k' },
		{ "samples", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *guest_dir = NULL;
	char rel[PATH_MAX];
	uint64_t v;
	int opt;

	*o = (struct sandbox_opts){ .reps = 5, .kicks = 400, .samples = 2000 };
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'g':
			guest_dir = optarg;
			break;
		case 'r':
		case 'k':
		case 's':
			if (util_parse_u64(optarg, 1, 100000, &v)) {
				fprintf(stderr, "lockstep-bench sandbox: bad number \"%s\"\n",
					optarg);
				return -1;
			}
			*(opt == 'r' ? &o->reps :
			  opt == 'k' ? &o->kicks :
				       &o->samples) = (unsigned)v;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -1;
	}
	if ((guest_dir ? util_strlcpy(rel, guest_dir, sizeof(rel)) :
			 mx_sibling_path("../guest", rel, sizeof(rel))) ||
	    !realpath(rel, o->guest_dir) || mx_sibling_path("lockstep-vm", o->vm, sizeof(o->vm))) {
		fprintf(stderr,
			"lockstep-bench sandbox: guest images or lockstep-vm not found (%s)\n",
			guest_dir ? guest_dir : "../guest beside this program");
		return -1;
	}
	return 0;
}

/* Runs lockstep-vm with `args` and returns what it wrote to stdout (NULL if it failed). */
static char *run_vm(const struct sandbox_opts *o, const char *const *args)
{
	char *argv[24], *out = NULL;
	size_t len = 0, cap = 0;
	int pipefd[2], status, null, n = 0;
	pid_t pid;

	argv[n++] = (char *)o->vm;
	for (; *args && n < 23; args++)
		argv[n++] = (char *)*args;
	argv[n] = NULL;
	null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null < 0)
		return NULL;
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		close(null);
		return NULL;
	}
	pid = fork();
	if (pid == 0) {
		dup2(pipefd[1], STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		execv(o->vm, argv);
		_exit(127);
	}
	close(null);
	close(pipefd[1]);
	for (ssize_t got = 1; pid > 0 && got > 0;) {
		if (len + 4097 > cap) {
			char *bigger = realloc(out, cap = cap ? cap * 2 : 8192);

			if (!bigger)
				break;
			out = bigger;
		}
		got = read(pipefd[0], out + len, cap - len - 1);
		if (got > 0)
			len += (size_t)got;
	}
	close(pipefd[0]);
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !out) {
		free(out);
		return NULL;
	}
	out[len] = '\0';
	return out;
}

/* The value of `key=` on the guest's "result:" line. */
static bool result_value(const char *console, const char *key, double *v)
{
	const char *line = strstr(console, "result: program=latency");
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), " %s=", key);
	p = line ? strstr(line, pat) : NULL;
	if (!p)
		return false;
	*v = strtod(p + strlen(pat), NULL);
	return true;
}

static int measure_doorbell(const struct sandbox_opts *o, int mode, double fig[FIGURES])
{
	char kernel[PATH_MAX + 16], cmdline[32];
	const char *args[] = { "--kernel",  kernel,	     "--vcpus",	  "1",
			       "--cmdline", cmdline,	     "--console", "--timeout",
			       "120",	    mode_flag[mode], NULL };
	char *out;
	int ret;

	snprintf(kernel, sizeof(kernel), "%s/latency.elf", o->guest_dir);
	snprintf(cmdline, sizeof(cmdline), "samples=%u", o->samples);
	out = run_vm(o, args);
	ret = out && result_value(out, "doorbell_ns_median", &fig[0]) &&
			      result_value(out, "syscall_ns_median", &fig[1]) ?
		      0 :
		      -EIO;
	free(out);
	return ret;
}

static int measure_kick(const struct sandbox_opts *o, int mode, double fig[FIGURES])
{
	char kernel[PATH_MAX + 16], kicks[16];
	const char *args[] = { "--kernel",  kernel, "--vcpus",	    "2", "--kick-probe",  kicks,
			       "--timeout", "4",    "--stats-json", "-", mode_flag[mode], NULL };
	json_t *doc, *v;
	double sum = 0;
	size_t i, nr = 0;
	char *out;

	snprintf(kernel, sizeof(kernel), "%s/idle.elf", o->guest_dir);
	snprintf(kicks, sizeof(kicks), "%u", o->kicks);
	out = run_vm(o, args);
	doc = out ? json_loads(out, 0, NULL) : NULL;
	free(out);
	json_array_foreach(json_object_get(doc, "vcpu"), i, v) {
		json_t *m = json_object_get(json_object_get(v, "kick_latency_ns"), "median");

		if (json_is_number(m)) {
			sum += json_number_value(m);
			nr++;
		}
	}
	v = json_object_get(doc, "first_serial_byte_ms");
	if (!nr || !json_is_number(v)) {
		json_decref(doc);
		return -EIO;
	}
	fig[2] = sum / (double)nr;
	fig[3] = json_number_value(v) * 1000.0;
	json_decref(doc);
	return 0;
}

static double median(double *v, unsigned n)
{
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && v[j - 1] > v[j]; j--) {
			double t = v[j];

			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void report(const struct sandbox_opts *o, double *fig[MODES][FIGURES])
{
	static const char *const label[FIGURES] = { "ring-3 doorbell round trip (ns)",
						    "ring-3 system call, control (ns)",
						    "kick latency (ns)",
						    "worker start -> first serial byte (us)" };
	double m[MODES][FIGURES];
	json_t *doc;

	for (int mode = 0; mode < MODES; mode++)
		for (int f = 0; f < FIGURES; f++)
			m[mode][f] = median(fig[mode][f], o->reps);
	if (o->json) {
		doc = json_pack("{s:b, s:i}", "root", geteuid() == 0, "reps", (int)o->reps);
		for (int f = 0; f < FIGURES; f++)
			json_object_set_new(doc, figure_name[f],
					    json_pack("{s:f, s:f, s:f}", "sandbox", m[0][f],
						      "no_sandbox", m[1][f], "ratio",
						      m[1][f] > 0 ? m[0][f] / m[1][f] : 0.0));
		bench_print_json(doc);
		return;
	}
	printf("lockstep-vm --sandbox vs --no-sandbox, %u repetitions, medians%s\n", o->reps,
	       geteuid() == 0 ? "" : " (not root: --sandbox is rlimits, no_new_privs, seccomp)");
	printf("%-40s %12s %12s %7s\n", "", "sandbox", "no-sandbox", "ratio");
	for (int f = 0; f < FIGURES; f++)
		printf("%-40s %12.0f %12.0f %7.2f\n", label[f], m[0][f], m[1][f],
		       m[1][f] > 0 ? m[0][f] / m[1][f] : 0.0);
}

int bench_sandbox(int argc, char **argv)
{
	double *fig[MODES][FIGURES] = { { NULL } };
	struct sandbox_opts o;
	int ret = parse(&o, argc, argv), status = 0;

	if (ret)
		return ret > 0 ? 0 : BENCH_EXIT_USAGE;
	for (int mode = 0; mode < MODES; mode++)
		for (int f = 0; f < FIGURES; f++)
			if (!(fig[mode][f] = calloc(o.reps, sizeof(double))))
				status = BENCH_EXIT_FAILED;
	for (unsigned r = 0; !status && r < o.reps; r++) {
		for (int k = 0; !status && k < MODES; k++) {
			int mode = (int)((r + (unsigned)k) % MODES);
			double one[FIGURES];

			if (measure_doorbell(&o, mode, one) || measure_kick(&o, mode, one)) {
				fprintf(stderr, "lockstep-bench sandbox: lockstep-vm %s failed\n",
					mode_flag[mode]);
				status = BENCH_EXIT_FAILED;
				break;
			}
			for (int f = 0; f < FIGURES; f++)
				fig[mode][f][r] = one[f];
		}
	}
	if (!status)
		report(&o, fig);
	for (int mode = 0; mode < MODES; mode++)
		for (int f = 0; f < FIGURES; f++)
			free(fig[mode][f]);
	return status;
}
