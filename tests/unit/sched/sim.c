/*
 * The simulated host (see sim.h).  Deterministic: same inputs, same schedule.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/sched/sim.h"

void sim_init(struct sim *sim, unsigned cpus, unsigned smt)
{
	memset(sim, 0, sizeof(*sim));
	sim->host.nr_cpus = cpus;
	for (unsigned i = 0; i < cpus; i++)
		sim->host.cpu[i] = (struct sched_cpu){ .os_index = i, .core = i / smt };
	for (unsigned i = 0; i < SCHED_MAX_CPUS; i++)
		sim->owner[i] = -1;
	sched_new(&sim->host, &sim->s);
	sim->now = 1000000000ull;
}

static void unmap_page(struct sim_vm *vm)
{
	if (!vm->paged)
		return;
	sched_page_unmap(vm->page, vm->page->nr_vcpus, SCHED_PAGE_VERSION); /* its own page */
	close(vm->page_fd);
	vm->paged = false;
}

void sim_fini(struct sim *sim)
{
	for (int id = 0; id < SIM_MAX_VMS; id++)
		unmap_page(&sim->vm[id]);
	sched_free(sim->s);
}

int sim_add(struct sim *sim, int id, uint32_t nr, enum vmdef_sched_policy policy, char *err,
	    size_t err_len)
{
	struct sched_vm_params p = {
		.nr_vcpus = nr,
		.policy = policy,
		.quantum_ns = 5000000,
		.skew_ns = 2000000,
		.no_mux = sim->no_mux,
		.pvlock = sim->pvlock,
	};
	struct sim_vm *vm = &sim->vm[id];
	int ret = sched_vm_add(sim->s, id, &p, sim->now, err, err_len);

	if (ret)
		return ret;
	memset(vm, 0, sizeof(*vm));
	vm->present = true;
	sim->next_tick = sim->now; /* the engine's first look is the VM's baseline */
	vm->nr = nr;
	for (uint32_t i = 0; i < nr; i++) {
		vm->v[i].busy = true;
		vm->v[i].gate_open = true;
		vm->v[i].cpu = -1;
		for (unsigned c = 0; c < sim->host.nr_cpus; c++)
			util_cpuset_add(&vm->v[i].affinity, c);
	}
	return 0;
}

void sim_remove(struct sim *sim, int id)
{
	struct sim_vm *vm = &sim->vm[id];

	for (uint32_t i = 0; i < vm->nr; i++)
		if (vm->v[i].cpu >= 0)
			sim->owner[vm->v[i].cpu] = -1;
	vm->present = false;
	unmap_page(vm);
	sched_vm_remove(sim->s, id);
}

static struct sim_vcpu *owner(struct sim *sim, int o)
{
	return &sim->vm[o / 16].v[o % 16];
}

static bool runnable(const struct sim_vcpu *v)
{
	return v->busy && (v->gate_open || v->ignores_gate);
}

/* The host scheduler: keep running threads for their slice, then the least-run waits. */
static void host_schedule(struct sim *sim)
{
	for (unsigned c = 0; c < sim->host.nr_cpus; c++) {
		int cur = sim->owner[c], best = -1;
		uint64_t best_exec = UINT64_MAX;

		if (cur >= 0 && (!runnable(owner(sim, cur)) || !owner(sim, cur)->slice_left)) {
			owner(sim, cur)->cpu = -1;
			sim->owner[c] = cur = -1;
		}
		if (cur >= 0)
			continue;
		for (int id = 0; id < SIM_MAX_VMS; id++) {
			struct sim_vm *vm = &sim->vm[id];

			for (uint32_t i = 0; vm->present && i < vm->nr; i++) {
				struct sim_vcpu *v = &vm->v[i];

				if (!runnable(v) || v->cpu >= 0 ||
				    !util_cpuset_has(&v->affinity, c))
					continue;
				if (v->exec < best_exec) {
					best_exec = v->exec;
					best = id * 16 + (int)i;
				}
			}
		}
		if (best >= 0) {
			sim->owner[c] = best;
			owner(sim, best)->cpu = (int)c;
			owner(sim, best)->slice_left = SIM_HOST_SLICE_NS;
			/* Each CPU's first slice is shorter by its share: slices end out of step. */
			if (!sim->cpu_started[c])
				owner(sim, best)->slice_left =
					SIM_HOST_SLICE_NS * (c + 1) / sim->host.nr_cpus;
			sim->cpu_started[c] = true;
		}
	}
}

static void account_step(struct sim *sim)
{
	int gang_running = -1;

	for (int id = 0; id < SIM_MAX_VMS; id++) {
		struct sim_vm *vm = &sim->vm[id];
		uint32_t running = 0;

		if (!vm->present)
			continue;
		for (uint32_t i = 0; i < vm->nr; i++) {
			struct sim_vcpu *v = &vm->v[i];

			if (v->cpu >= 0) {
				v->exec += SIM_STEP_NS;
				if (!v->gate_open)
					v->exec_closed += SIM_STEP_NS;
				v->slice_left -= SIM_STEP_NS;
				running++;
			} else if (runnable(v)) {
				v->wait += SIM_STEP_NS;
			}
		}
		if (running == vm->nr)
			vm->corun_true += SIM_STEP_NS;
		for (uint32_t i = 0; i < vm->nr; i++) {
			for (uint32_t j = 0; j < vm->nr; j++) {
				uint64_t a = vm->v[i].exec - vm->spread_base[i];
				uint64_t b = vm->v[j].exec - vm->spread_base[j];

				if (a > b && a - b > vm->max_spread)
					vm->max_spread = a - b;
			}
		}
		if (running)
			vm->run_true += SIM_STEP_NS;
		if (running && sim->watch_interleave) {
			if (gang_running >= 0 && gang_running != id)
				sim->interleave_ns += SIM_STEP_NS;
			gang_running = id;
		}
	}
}

static const struct sched_obs *observe(void *arg, int id)
{
	struct sim *sim = arg;
	struct sim_vm *vm = &sim->vm[id];

	if (!vm->present)
		return NULL;
	for (uint32_t i = 0; i < vm->nr; i++) {
		struct sim_vcpu *v = &vm->v[i];

		vm->obs[i] = (struct sched_obs){
			.exec_ns = v->exec,
			.wait_ns = v->wait,
			.state = !v->gate_open ? SCHED_VCPU_STOPPED :
				 v->busy       ? SCHED_VCPU_RUNNING :
						 SCHED_VCPU_PVWAIT,
			.entry_ns = v->entry,
			.gate_open = v->gate_open,
		};
	}
	if (vm->paged)
		sim_guest_observe(sim, id);
	return vm->obs;
}

static void decide(void *arg, int id, const struct sched_decision *d)
{
	struct sim *sim = arg;
	struct sim_vm *vm = &sim->vm[id];

	if (vm->paged) {
		sim_guest_decide(sim, id, d);
		return;
	}
	for (uint32_t i = 0; i < vm->nr; i++) {
		struct sim_vcpu *v = &vm->v[i];

		if (d[i].gate_open && !v->gate_open)
			v->entry = sim->now;
		v->gate_open = d[i].gate_open;
		if (d[i].affinity_changed)
			v->affinity = d[i].affinity;
		if (v->cpu >= 0 && !util_cpuset_has(&v->affinity, (unsigned)v->cpu)) {
			sim->owner[v->cpu] = -1;
			v->cpu = -1;
		}
	}
}

void sim_reset_spread(struct sim *sim, int id)
{
	struct sim_vm *vm = &sim->vm[id];

	for (uint32_t i = 0; i < vm->nr; i++)
		vm->spread_base[i] = vm->v[i].exec;
	vm->max_spread = 0;
}

/* What lockstepd's scheduler checks after each tick: a gang VM outside the slice is shut out. */
static void check_gates(struct sim *sim)
{
	for (int id = 0; id < SIM_MAX_VMS; id++) {
		struct sim_vm *vm = &sim->vm[id];

		if (!vm->present || !sched_vm_gated_out(sim->s, id, sim->now))
			continue;
		sim->gated_out++;
		for (uint32_t i = 0; i < vm->nr; i++) {
			if (vm->v[i].gate_open) {
				sim->gate_overlaps++;
				break;
			}
		}
	}
}

void sim_run(struct sim *sim, uint64_t ns)
{
	uint64_t end = sim->now + ns;

	while (sim->now < end) {
		if (sim->now >= sim->next_tick) {
			sim->next_tick =
				sim->now + sched_tick(sim->s, sim->now, observe, decide, sim);
			check_gates(sim);
		}
		host_schedule(sim);
		sim_guest_step(sim);
		account_step(sim);
		sim->now += SIM_STEP_NS;
	}
}

double sim_corun_fraction(const struct sim *sim, int id)
{
	struct sched_vm_stats st;

	if (sched_vm_stats(sim->s, id, &st, NULL, 0) || !st.run_ns)
		return 0;
	return (double)st.corun_ns / (double)st.run_ns;
}

static uint64_t vm_exec(const struct sim_vm *vm)
{
	uint64_t exec = 0;

	for (uint32_t i = 0; vm->present && i < vm->nr; i++)
		exec += vm->v[i].exec;
	return exec;
}

double sim_share(const struct sim *sim, int id)
{
	uint64_t total = 0;

	for (int k = 0; k < SIM_MAX_VMS; k++)
		total += vm_exec(&sim->vm[k]);
	return total ? (double)vm_exec(&sim->vm[id]) / (double)total : 0;
}
