/*
 * The matrix's workloads: which guest program each one boots, with which command line, and
 * how its `result:` line turns into a throughput of work items per second.  Also the
 * arithmetic every measurement shares whichever VMM ran it: shares of the host, efficiency
 * against the reference, and how well the VMs' measurement windows overlapped.
 *
 * Work items are chosen so that the fair-share bound does not depend on how many vCPUs do
 * the work: lock acquisitions (each one is cs + ncs cycles of CPU work), barrier arrivals
 * (rounds x vCPUs: a round of N vCPUs is N pieces of work) and IPIs delivered.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clients/bench/matrix.h"

#define LOCKS(n, t, a, is_pv)                                                               \
	{                                                                                   \
		.name = n, .title = t, .program = MX_LOCKBENCH, .args = a, .unit = "acq/s", \
		.contended = true, .pv = is_pv, .cpu_bound = true                           \
	}
#define BARRIER(n, t, a, is_pv)                                                          \
	{                                                                                \
		.name = n, .title = t, .program = MX_BARRIERBENCH, .args = a,            \
		.unit = "arrivals/s", .contended = true, .pv = is_pv, .cpu_bound = true, \
		.barrier = true                                                          \
	}

/*
 * Plain workloads spin in the guest and never call the host, but publish who holds and who
 * waits in the shared page (mode=published).  On hosts with pause-loop exiting KVM's
 * directed-yield statistics tell lockstep the same about an unmodified guest; this machine's
 * KVM reports none, so publishing is what lets `adaptive` see plain spinning at all.  It
 * costs the locks nothing measurable and the barrier about a fifth of its 1x rate, which the
 * reference (measured the same way) takes into account.
 */
const struct mx_workload mx_workloads[] = {
	LOCKS("ticket-plain", "ticket lock, plain", "lock=ticket mode=published", false),
	LOCKS("ticket-pv", "ticket lock, pv", "lock=ticket mode=pv", true),
	LOCKS("queued-plain", "queued (MCS) lock, plain", "lock=mcs mode=published", false),
	LOCKS("queued-pv", "queued (MCS) lock, pv", "lock=mcs mode=pv", true),
	BARRIER("barrier-plain", "barrier, plain", "mode=published", false),
	BARRIER("barrier-pv", "barrier, pv", "mode=pv", true),
	/* Rounds of 130,000 cycles (50 us at 2.6 GHz), as the loops of an OpenMP program. */
	BARRIER("barrier-coarse-pv", "barrier, pv, 50 µs rounds", "mode=pv work=130000", true),
	{ .name = "ipi",
	  .title = "IPIs (no locks)",
	  .program = MX_IPI,
	  .args = "self=0",
	  .unit = "IPIs/s" },
};

const size_t mx_nr_workloads = sizeof(mx_workloads) / sizeof(mx_workloads[0]);

/* IPIs per second one pair of vCPUs manages here, to size `rounds=` to the duration. */
#define IPI_RATE_GUESS 5000

/* lockstep's policies by vmdef's names, and "qemu". */
const char *mx_policy_name(enum mx_policy p)
{
	if (p == MX_QEMU)
		return "qemu";
	return vmdef_sched_policy_name((enum vmdef_sched_policy)p);
}

int mx_policy_parse(const char *s, enum mx_policy *out)
{
	enum vmdef_sched_policy policy;

	if (strcmp(s, "qemu") == 0) {
		*out = MX_QEMU;
		return 0;
	}
	if (vmdef_sched_policy_parse(s, &policy))
		return -EINVAL;
	*out = (enum mx_policy)policy;
	return 0;
}

const char *mx_workload_image(const struct mx_workload *w)
{
	switch (w->program) {
	case MX_LOCKBENCH:
		return "lockbench.elf";
	case MX_BARRIERBENCH:
		return "barrierbench.elf";
	case MX_IPI:
		return "ipi.elf";
	case MX_SWITCHBENCH:
		return "switchbench.elf";
	}
	return NULL;
}

void mx_workload_cmdline(const struct mx_workload *w, unsigned vcpus, unsigned duration_ms,
			 char *buf, size_t size)
{
	unsigned pairs, rounds;

	if (w->program != MX_IPI) {
		snprintf(buf, size, "%s duration_ms=%u", w->args, duration_ms);
		return;
	}
	/*
	 * ipi runs a fixed number of rounds per ordered pair of distinct vCPUs: size it so a
	 * run takes about `duration_ms` at full speed whatever the VM's width.  A one-vCPU VM
	 * has no pair of distinct vCPUs and interrupts itself instead.
	 */
	pairs = vcpus > 1 ? vcpus * (vcpus - 1) : 1;
	rounds = (unsigned)((uint64_t)IPI_RATE_GUESS * duration_ms / 1000 / pairs);
	if (rounds < 5)
		rounds = 5;
	snprintf(buf, size, "%s rounds=%u", vcpus > 1 ? w->args : "self=1", rounds);
}

/* The words of a `result:` line as an object: numbers where they are numbers. */
static json_t *result_words(const char *line)
{
	json_t *out = json_object();
	const char *p = line;

	while (*p) {
		const char *end = strchr(p, ' '), *eq;
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char key[64], value[128], *stop;

		eq = memchr(p, '=', len);
		if (eq && (size_t)(eq - p) < sizeof(key) &&
		    len - (size_t)(eq - p) - 1 < sizeof(value)) {
			double d;

			memcpy(key, p, (size_t)(eq - p));
			key[eq - p] = '\0';
			memcpy(value, eq + 1, len - (size_t)(eq - p) - 1);
			value[len - (size_t)(eq - p) - 1] = '\0';
			d = strtod(value, &stop);
			if (value[0] && *stop == '\0' && isfinite(d))
				json_object_set_new(out, key,
						    strchr(value, '.') ?
							    json_real(d) :
							    json_integer(strtoll(value, NULL, 10)));
			else
				json_object_set_new(out, key, json_string(value));
		}
		p += len;
		while (*p == ' ')
			p++;
	}
	return out;
}

static double number(const json_t *obj, const char *key)
{
	return json_number_value(json_object_get(obj, key));
}

int mx_parse_console(const struct mx_workload *w, const char *console, struct mx_vm_result *vm)
{
	const char *line = NULL, *p = console;
	const char *ok_key = w->program == MX_LOCKBENCH ? "counter_ok" : "ok";
	json_t *backend;
	char *copy, *nl;

	/* The last result line: a guest that reset and ran again reports twice. */
	while ((p = strstr(p, "result: program="))) {
		if (p == console || p[-1] == '\n')
			line = p;
		p++;
	}
	if (!line)
		return -ENOENT;
	copy = strdup(line + strlen("result: "));
	if (!copy)
		return -ENOMEM;
	nl = strpbrk(copy, "\r\n");
	if (nl)
		*nl = '\0';
	json_decref(vm->result);
	vm->result = result_words(copy);
	free(copy);

	switch (w->program) {
	case MX_LOCKBENCH:
		vm->throughput = number(vm->result, "acq_per_s");
		vm->seconds = number(vm->result, "duration_ms") / 1e3;
		break;
	case MX_BARRIERBENCH:
		vm->throughput = number(vm->result, "rounds_per_s") * number(vm->result, "cpus");
		vm->seconds = number(vm->result, "duration_ms") / 1e3;
		break;
	case MX_IPI:
		vm->throughput = number(vm->result, "ipis_per_s");
		vm->seconds = number(vm->result, "elapsed_us") / 1e6;
		break;
	case MX_SWITCHBENCH:
		vm->throughput = number(vm->result, "switch_ns_median");
		break;
	}
	backend = json_object_get(vm->result, "backend");
	snprintf(vm->backend, sizeof(vm->backend), "%s",
		 json_is_string(backend) ? json_string_value(backend) : "none");
	vm->ok = json_integer_value(json_object_get(vm->result, ok_key)) == 1 && vm->throughput > 0;
	return 0;
}

void mx_measurement_init(struct mx_measurement *m, const struct mx_layout *l)
{
	*m = (struct mx_measurement){ .status = MX_OK, .nr_vms = l->nr_vms };
	for (unsigned i = 0; i < l->nr_vms; i++)
		m->vm[i].vcpus = l->vcpus[i];
	m->vms_json = json_array();
}

void mx_measurement_fini(struct mx_measurement *m)
{
	for (unsigned i = 0; i < m->nr_vms; i++)
		json_decref(m->vm[i].result);
	json_decref(m->vms_json);
	*m = (struct mx_measurement){ .status = MX_FAILED };
}

/* Shares, total throughput and window overlap, once every VM has reported. */
void mx_measurement_finish(struct mx_measurement *m, const struct mx_workload *w,
			   unsigned host_cpus)
{
	uint64_t lo = 0, hi = UINT64_MAX, longest = 0;
	unsigned total = 0;

	for (unsigned i = 0; i < m->nr_vms; i++)
		total += m->vm[i].vcpus;
	m->throughput = 0;
	for (unsigned i = 0; i < m->nr_vms; i++) {
		struct mx_vm_result *v = &m->vm[i];
		double by_cell = (double)v->vcpus / total, by_host = (double)v->vcpus / host_cpus;
		uint64_t len = (uint64_t)(v->seconds * 1e9), start;

		v->share = !w->cpu_bound ? 1.0 : by_cell < by_host ? by_cell : by_host;
		m->throughput += v->throughput;
		/* The guest measured the last `seconds` before it stopped. */
		start = v->end_ns > len ? v->end_ns - len : 0;
		lo = start > lo ? start : lo;
		hi = v->end_ns < hi ? v->end_ns : hi;
		longest = len > longest ? len : longest;
	}
	m->concurrency = longest && hi > lo ? (double)(hi - lo) / (double)longest : 0.0;
	if (m->nr_vms == 1)
		m->concurrency = 1.0;
}

/*
 * Each VM against its fair-share bound; the cell's figure is the share-weighted mean, which
 * is sum(throughput) / (reference x sum(shares)).
 */
void mx_measurement_score(struct mx_measurement *m, double reference)
{
	double shares = 0;

	for (unsigned i = 0; i < m->nr_vms; i++) {
		struct mx_vm_result *v = &m->vm[i];

		v->efficiency = reference > 0 ? v->throughput / (reference * v->share) : 0;
		shares += v->share;
	}
	m->efficiency = reference > 0 && shares > 0 ? m->throughput / (reference * shares) : 0;
}
