/*
 * lockstep-bench matrix: the scheduling benchmark.  Plans the matrix (workloads x policies x
 * overcommit layouts, with QEMU beside lockstep's policies), then runs it repetition by
 * repetition: within a repetition each workload is a block that starts and ends with a run
 * of the reference (one VM, as many vCPUs as host CPUs, pinned) and runs every cell once in
 * between, in an order that rotates from one repetition to the next.  So every cell is
 * scored against a reference measured within a minute of it, and slow drifts of the machine
 * (the outer hypervisor's fast and slow states) spread over all cells instead of favouring a
 * few.  A measurement during which other processes used the CPUs is discarded (and kept in
 * results.jsonl as such) and run again once the machine is quiet.
 *
 * Writes results.jsonl as it goes (one record per measurement, nothing averaged away), then
 * report.c's table.md and plots.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clients/bench/bench.h"
#include "clients/bench/matrix.h"
#include "util/util.h"

static void usage(FILE *out)
{
	fputs("usage: lockstep-bench matrix [--socket S | --spawn] [--preset quick|full]\n"
	      "         [--workloads W,...] [--policies P,...] [--overcommit 1,1.5,2,3]\n"
	      "         [--layouts one,several] [--reps N] [--duration-ms N] [--out DIR]\n"
	      "         [--qemu | --no-qemu] [--guest-dir DIR] [--force] [--wait-idle S]\n"
	      "         [--retries N] [--no-progress]\n"
	      "       lockstep-bench matrix --report DIR\n\n"
	      "Runs every workload under every policy at every overcommit, as one VM and as\n"
	      "several, and scores each against the machine's fair-share bound.\n\n"
	      "  --socket S       use a running lockstepd (no VM may be running on it)\n"
	      "  --spawn          start a lockstepd of our own (the default)\n"
	      "  --preset P       quick (smoke run, under 2 minutes) or full (default quick)\n"
	      "  --workloads      ticket-plain,ticket-pv,queued-plain,queued-pv,barrier-plain,\n"
	      "                   barrier-pv,barrier-coarse-pv,ipi (or all)\n"
	      "  --policies       host,pinned,gang,relaxed,adaptive,mux (or all)\n"
	      "  --overcommit     vCPUs per host CPU, each at least 1\n"
	      "  --layouts        one VM with every vCPU, several VMs of one vCPU per host CPU\n"
	      "  --reps N         repetitions, interleaved (preset: quick 1, full 5)\n"
	      "  --duration-ms N  each guest's measurement (preset: quick 300, full 1000)\n"
	      "  --out DIR        results directory (default bench/results/<time>)\n"
	      "  --qemu, --no-qemu  the QEMU baseline (default: when QEMU can run guests)\n"
	      "  --guest-dir DIR  guest images (default: ../guest beside this program, else\n"
	      "                   the installed ones)\n"
	      "  --force          run even though the machine is busy\n"
	      "  --wait-idle S    wait this long for a quiet machine (default 120)\n"
	      "  --retries N      re-runs of a measurement disturbed by other load (default 3)\n"
	      "  --no-progress    plain lines even on a terminal\n"
	      "  --report DIR     no run: table.md and the plots again from DIR/results.jsonl\n",
	      out);
}

/* A comma-separated list: each word through `fn`; -EINVAL naming the bad word. */
static int each_word(const char *list, int (*fn)(struct mx_options *, const char *),
		     struct mx_options *o, const char *what)
{
	char *copy = strdup(list), *save = NULL;
	int ret = copy ? 0 : -ENOMEM;

	for (char *w = copy ? strtok_r(copy, ",", &save) : NULL; w && !ret;
	     w = strtok_r(NULL, ",", &save)) {
		ret = fn(o, w);
		if (ret)
			fprintf(stderr, "lockstep-bench matrix: unknown %s \"%s\"\n", what, w);
	}
	free(copy);
	return ret;
}

static int add_workload(struct mx_options *o, const char *w)
{
	for (size_t i = 0; i < mx_nr_workloads; i++) {
		if (strcmp(w, "all") == 0 || strcmp(w, mx_workloads[i].name) == 0) {
			o->workloads[i] = true;
			if (strcmp(w, "all"))
				return 0;
		}
	}
	return strcmp(w, "all") == 0 ? 0 : -EINVAL;
}

static int add_policy(struct mx_options *o, const char *w)
{
	enum mx_policy p;

	if (strcmp(w, "all") == 0) {
		for (p = MX_HOST; p < MX_QEMU; p++)
			o->policies[p] = true;
		return 0;
	}
	if (mx_policy_parse(w, &p) || p == MX_QEMU)
		return -EINVAL;
	o->policies[p] = true;
	return 0;
}

static int add_overcommit(struct mx_options *o, const char *w)
{
	char *end;
	double v = strtod(w, &end);

	if (*end || !(v >= 1.0 && v <= 16.0) || o->nr_overcommit == MX_MAX_OVERCOMMIT)
		return -EINVAL;
	o->overcommit[o->nr_overcommit++] = v;
	return 0;
}

static int add_layout(struct mx_options *o, const char *w)
{
	if (strcmp(w, "one") == 0)
		o->layout_one = true;
	else if (strcmp(w, "several") == 0)
		o->layout_several = true;
	else
		return -EINVAL;
	return 0;
}

/* A preset fills what the command line left unset. */
static void apply_preset(struct mx_options *o, bool full, bool any_workload, bool any_policy)
{
	static const char *const quick_workloads[] = { "ticket-plain", "ticket-pv", "barrier-plain",
						       "ipi" };

	if (!any_workload) {
		for (size_t i = 0; i < mx_nr_workloads; i++)
			o->workloads[i] = full;
		for (size_t i = 0; !full && i < sizeof(quick_workloads) / sizeof(*quick_workloads);
		     i++)
			add_workload(o, quick_workloads[i]);
	}
	if (!any_policy)
		add_policy(o, "all");
	if (!o->nr_overcommit) {
		static const double quick[] = { 1, 2 }, all[] = { 1, 1.5, 2, 3 };
		const double *list = full ? all : quick;
		unsigned n = full ? 4 : 2;

		for (unsigned i = 0; i < n; i++)
			o->overcommit[o->nr_overcommit++] = list[i];
	}
	if (!o->layout_one && !o->layout_several)
		o->layout_one = o->layout_several = true;
	if (!o->reps)
		o->reps = full ? 5 : 1;
	if (!o->duration_ms)
		o->duration_ms = full ? 1000 : 300;
}

static int parse(struct mx_options *o, char *guest_dir, int argc, char **argv)
{
	enum {
		SOCKET = 256,
		SPAWN,
		PRESET,
		WORKLOADS,
		POLICIES,
		OVERCOMMIT,
		LAYOUTS,
		REPS,
		DURATION,
		OUT,
		QEMU,
		NO_QEMU,
		GUEST_DIR,
		FORCE,
		WAIT_IDLE,
		RETRIES,
		NO_PROGRESS,
		REPORT
	};
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, SOCKET },
		{ "spawn", no_argument, NULL, SPAWN },
		{ "preset", required_argument, NULL, PRESET },
		{ "workloads", required_argument, NULL, WORKLOADS },
		{ "policies", required_argument, NULL, POLICIES },
		{ "overcommit", required_argument, NULL, OVERCOMMIT },
		{ "layouts", required_argument, NULL, LAYOUTS },
		{ "reps", required_argument, NULL, REPS },
		{ "duration-ms", required_argument, NULL, DURATION },
		{ "out", required_argument, NULL, OUT },
		{ "qemu", no_argument, NULL, QEMU },
		{ "no-qemu", no_argument, NULL, NO_QEMU },
		{ "guest-dir", required_argument, NULL, GUEST_DIR },
		{ "force", no_argument, NULL, FORCE },
		{ "wait-idle", required_argument, NULL, WAIT_IDLE },
		{ "retries", required_argument, NULL, RETRIES },
		{ "no-progress", no_argument, NULL, NO_PROGRESS },
		{ "report", required_argument, NULL, REPORT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool any_workload = false, any_policy = false, no_progress = false;
	uint64_t u;
	int opt, ret = 0;

	*o = (struct mx_options){ .preset = "quick",
				  .qemu = -1,
				  .wait_idle_s = 120,
				  .retries = 3,
				  .noisy_fraction = 0.05,
				  .memory = "32M" };
	optind = 1;
	while (!ret && (opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case SOCKET:
			o->socket = optarg;
			break;
		case SPAWN:
			o->socket = NULL;
			break;
		case PRESET:
			o->preset = optarg;
			ret = strcmp(optarg, "quick") && strcmp(optarg, "full") ? -EINVAL : 0;
			break;
		case WORKLOADS:
			any_workload = true;
			ret = each_word(optarg, add_workload, o, "workload");
			break;
		case POLICIES:
			any_policy = true;
			ret = each_word(optarg, add_policy, o, "policy");
			break;
		case OVERCOMMIT:
			ret = each_word(optarg, add_overcommit, o, "overcommit (1 to 16)");
			break;
		case LAYOUTS:
			ret = each_word(optarg, add_layout, o, "layout");
			break;
		case REPS:
			ret = util_parse_u64(optarg, 1, MX_MAX_REPS, &u);
			o->reps = (unsigned)u;
			break;
		case DURATION:
			ret = util_parse_u64(optarg, 50, 600000, &u);
			o->duration_ms = (unsigned)u;
			break;
		case OUT:
			o->out_dir = optarg;
			break;
		case QEMU:
			o->qemu = 1;
			break;
		case NO_QEMU:
			o->qemu = 0;
			break;
		case GUEST_DIR:
			o->guest_dir = optarg;
			break;
		case FORCE:
			o->force = true;
			break;
		case WAIT_IDLE:
			ret = util_parse_u64(optarg, 0, 86400, &u);
			o->wait_idle_s = (unsigned)u;
			break;
		case RETRIES:
			ret = util_parse_u64(optarg, 0, 20, &u);
			o->retries = (unsigned)u;
			break;
		case NO_PROGRESS:
			no_progress = true;
			break;
		case REPORT:
			o->report_dir = optarg;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			ret = -EINVAL;
		}
	}
	if (ret || optind != argc) {
		usage(stderr);
		return -EINVAL;
	}
	if (o->report_dir)
		return 0; /* everything else comes from the run being reported */
	apply_preset(o, strcmp(o->preset, "full") == 0, any_workload, any_policy);
	o->progress_bar = !no_progress && isatty(STDERR_FILENO);
	if (!o->guest_dir) {
		char exe_dir[PATH_MAX];

		/* A build tree's guest/, or the installed images. */
		if (mx_sibling_path("../guest", exe_dir, sizeof(exe_dir)) &&
		    mx_sibling_path(LOCKSTEP_BIN_TO_GUESTS, exe_dir, sizeof(exe_dir))) {
			fprintf(stderr, "lockstep-bench matrix: no guest images beside this "
					"program: give --guest-dir\n");
			return -ENOENT;
		}
		if (!realpath(exe_dir, guest_dir))
			return -errno; /* guest_dir holds PATH_MAX bytes, as realpath wants */
		o->guest_dir = guest_dir;
	} else if (o->guest_dir[0] != '/') {
		if (!realpath(o->guest_dir, guest_dir)) {
			fprintf(stderr, "lockstep-bench matrix: %s: %s\n", o->guest_dir,
				strerror(errno));
			return -errno;
		}
		o->guest_dir = guest_dir;
	}
	return 0;
}

/* total = ceil(oc x h) vCPUs; "one": one VM; "several": VMs of h, the last takes the rest. */
void mx_make_layout(struct mx_layout *l, double oc, bool several, unsigned h)
{
	unsigned total = (unsigned)ceil(oc * h - 1e-9);

	*l = (struct mx_layout){ .overcommit = oc, .several = several, .total_vcpus = total };
	if (total > MX_MAX_VCPUS)
		total = l->total_vcpus = MX_MAX_VCPUS;
	if (!several || total <= h) {
		l->several = false;
		l->nr_vms = 1;
		l->vcpus[0] = total;
	} else {
		for (unsigned left = total; left && l->nr_vms < MX_MAX_VMS;
		     left -= l->vcpus[l->nr_vms++])
			l->vcpus[l->nr_vms] = left < h ? left : h;
	}
	if (total <= h)
		snprintf(l->label, sizeof(l->label), "%gx", oc);
	else
		snprintf(l->label, sizeof(l->label), "%gx %s", oc, l->several ? "several" : "one");
}

unsigned mx_plan_layouts(const struct mx_options *o, unsigned h, struct mx_layout *out)
{
	unsigned n = 0;

	for (unsigned i = 0; i < o->nr_overcommit; i++) {
		for (int several = 0; several < 2; several++) {
			struct mx_layout l;
			bool dup = false;

			if ((several && !o->layout_several) || (!several && !o->layout_one))
				continue;
			mx_make_layout(&l, o->overcommit[i], several, h);
			/* At 1x (or any level within the host) the layouts coincide. */
			for (unsigned k = 0; k < n; k++)
				dup |= strcmp(out[k].label, l.label) == 0;
			if (!dup)
				out[n++] = l;
		}
	}
	return n;
}

int bench_matrix(int argc, char **argv)
{
	char guest_dir[PATH_MAX];
	struct mx_options o;
	int ret = parse(&o, guest_dir, argc, argv);
	struct mx_matrix mx = { .o = &o };

	if (ret)
		return ret > 0 ? 0 : BENCH_EXIT_USAGE;
	if (o.report_dir)
		return mx_matrix_report(o.report_dir) ? BENCH_EXIT_FAILED : 0;
	mx.host_cpus = mx_host_cpus();
	mx_make_layout(&mx.reference, 1, false, mx.host_cpus);
	mx.nr_layouts = mx_plan_layouts(&o, mx.host_cpus, mx.layouts);
	if (!mx.nr_layouts) {
		fprintf(stderr, "lockstep-bench matrix: no layout to run\n");
		return BENCH_EXIT_USAGE;
	}
	return mx_matrix_run(&mx);
}
