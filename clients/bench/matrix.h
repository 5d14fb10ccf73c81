/*
 * lockstep-bench matrix: what its files share.  The matrix is workloads x policies x
 * overcommit layouts x repetitions; every cell boots the same guest images, under lockstepd
 * (run.c) or under QEMU with Linux's scheduling (qemu.c), and is scored against the
 * machine's fair-share bound (report.c).  matrix.c plans and drives the runs, workload.c
 * knows the guest programs, host.c watches the machine the figures come from.
 *
 * Efficiency (the headline figure): a VM's throughput in work items per second (lock
 * acquisitions, barrier arrivals, IPIs) divided by the reference throughput (the same
 * workload in one VM with as many vCPUs as host CPUs, pinned, no overcommit) times the VM's
 * share of the host, min(vCPUs / all vCPUs of the cell, vCPUs / host CPUs).  A cell's
 * efficiency is the share-weighted mean of its VMs', which is the sum of their throughputs
 * over the reference whenever the shares fill the host.  (ipi, which leaves the CPUs idle
 * most of the time, counts each VM's share as 1: its cell figure is the VMs' mean.)
 */
#ifndef LOCKSTEP_BENCH_MATRIX_H
#define LOCKSTEP_BENCH_MATRIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "vmdef/policy.h"

#define MX_MAX_VMS 16
#define MX_MAX_VCPUS 64
#define MX_MAX_OVERCOMMIT 8
#define MX_MAX_REPS 100

/* Where Linux decides (host), lockstep's other policies (vmdef/policy.h's, by their values), and
 * QEMU as the peer baseline. */
enum mx_policy {
	MX_HOST = VMDEF_SCHED_HOST,
	MX_PINNED = VMDEF_SCHED_PINNED,
	MX_GANG = VMDEF_SCHED_GANG,
	MX_RELAXED = VMDEF_SCHED_RELAXED,
	MX_ADAPTIVE = VMDEF_SCHED_ADAPTIVE,
	MX_MUX = VMDEF_SCHED_MUX,
	MX_QEMU = VMDEF_SCHED_POLICIES,
	MX_NR_POLICIES,
};

enum mx_program {
	MX_LOCKBENCH,
	MX_BARRIERBENCH,
	MX_IPI,
	MX_SWITCHBENCH, /* not a workload: S, the switch cost the bounds need */
};

struct mx_workload {
	const char *name;  /* "ticket-plain": the key in results and tables */
	const char *title; /* for plots: "ticket lock, plain" */
	enum mx_program program;
	const char *args; /* the guest command line's fixed part */
	const char *unit; /* what one work item is */
	bool contended;	  /* lock- or barrier-bound (the targets speak of these) */
	bool pv;
	/*
	 * Keeps every vCPU busy, so its fair share of the host bounds it.  A workload that
	 * mostly waits for interrupts (ipi) is not bounded by a share: each of its VMs could
	 * run as fast as the reference, and is scored against the whole of it.
	 */
	bool cpu_bound;
	/* A barrier: V vCPUs on h < V CPUs need V - h switches per round, which bounds it
	 * (report.c). */
	bool barrier;
};

/* One overcommit level in one layout: how many VMs of how many vCPUs. */
struct mx_layout {
	double overcommit;
	bool several; /* VMs of h vCPUs each (the last one takes the remainder) */
	unsigned total_vcpus;
	unsigned nr_vms;
	unsigned vcpus[MX_MAX_VMS];
	char label[24]; /* "2x one", "1.5x several" */
};

/* What one VM of one measurement did. */
struct mx_vm_result {
	unsigned vcpus;
	double share;	   /* of the host, see above */
	double throughput; /* work items per second, from the guest's result line */
	double efficiency;
	double seconds;	  /* the guest's own measurement window */
	uint64_t end_ns;  /* when it stopped (CLOCK_MONOTONIC, bench side) */
	char backend[24]; /* the pv backend the guest reported, "none" for plain */
	json_t *result;	  /* the result line as an object of its key=value words */
	bool ok;	  /* exited 0 and its own checks passed */
};

enum mx_status {
	MX_OK,
	MX_FAILED,  /* a VM did not start, crashed, timed out or failed its checks */
	MX_NA,	    /* gang for a VM wider than the host */
	MX_SKIPPED, /* QEMU missing or unusable */
};

/* One run of one cell. */
struct mx_measurement {
	enum mx_status status;
	char reason[256];
	unsigned nr_vms;
	struct mx_vm_result vm[MX_MAX_VMS];
	double throughput;  /* sum over VMs */
	double efficiency;  /* share-weighted mean over VMs */
	double concurrency; /* |intersection of the VMs' windows| / longest window */
	double wall_s;
	json_t *vms_json; /* per-VM records (stats, console) for results.jsonl */
};

/* The machine while one measurement ran: CPU time that was not ours, steal, cache latency. */
struct mx_host_sample {
	double busy_s, ours_s, foreign_s, steal_s, elapsed_s;
	double pingpong_ns; /* cache-line round trip between the first two CPUs, before */
	double load1;
};

/* Runs the cells of one VMM.  The lockstep runner talks to lockstepd; QEMU spawns. */
struct mx_lockstep;
struct mx_qemu;

struct mx_options {
	const char *socket; /* NULL: spawn a lockstepd of our own */
	const char *out_dir;
	const char *guest_dir;
	const char *preset;
	bool workloads[16]; /* MX_MAX_WORKLOADS */
	bool policies[MX_NR_POLICIES];
	double overcommit[MX_MAX_OVERCOMMIT];
	unsigned nr_overcommit;
	bool layout_one, layout_several;
	unsigned reps;
	unsigned duration_ms;
	int qemu;	       /* -1 auto (when installed), 0 no, 1 yes */
	bool force;	       /* run on a busy machine */
	unsigned wait_idle_s;  /* how long to wait for a quiet machine */
	unsigned retries;      /* re-runs of a measurement disturbed by foreign load */
	double noisy_fraction; /* foreign CPU time per host CPU second that counts as noise */
	const char *memory;
	bool progress_bar;
	const char *report_dir; /* --report: no run, only the report of an earlier one */
};

/* A planned matrix and the state of its run (drive.c). */
struct mx_matrix {
	const struct mx_options *o;
	unsigned host_cpus;
	struct mx_layout reference; /* 1x, one VM, h vCPUs */
	struct mx_layout layouts[2 * MX_MAX_OVERCOMMIT];
	unsigned nr_layouts;
};

int mx_matrix_run(struct mx_matrix *mx);
/* The layouts of the options' overcommit levels on h host CPUs (matrix.c). */
void mx_make_layout(struct mx_layout *l, double overcommit, bool several, unsigned h);
unsigned mx_plan_layouts(const struct mx_options *o, unsigned h, struct mx_layout *out);
/* --report DIR: table.md and the plots again from DIR/results.jsonl (replay.c). */
int mx_matrix_report(const char *dir);

/* ---- workload.c ---- */
extern const struct mx_workload mx_workloads[];
extern const size_t mx_nr_workloads;
const char *mx_policy_name(enum mx_policy p);
int mx_policy_parse(const char *s, enum mx_policy *out);
/* The guest command line for one VM of `vcpus` vCPUs. */
void mx_workload_cmdline(const struct mx_workload *w, unsigned vcpus, unsigned duration_ms,
			 char *buf, size_t size);
const char *mx_workload_image(const struct mx_workload *w);
/*
 * Reads a guest's console text: its result line into vm->result, throughput, the measured
 * window and the backend; vm->ok when the guest's checks passed.  -ENOENT without a result
 * line.
 */
int mx_parse_console(const struct mx_workload *w, const char *console, struct mx_vm_result *vm);

/* ---- host.c ---- */
struct mx_cpu_clock {
	uint64_t busy, steal, total; /* /proc/stat, all CPUs, clock ticks */
	uint64_t ours;		     /* our processes' CPU time, clock ticks */
	uint64_t at_ns;
};
/* `daemon_pid`: an external lockstepd whose CPU time (and its workers') is ours; 0 none. */
void mx_cpu_clock_read(struct mx_cpu_clock *c, int daemon_pid);
void mx_cpu_clock_diff(const struct mx_cpu_clock *a, const struct mx_cpu_clock *b,
		       struct mx_host_sample *out);
/* Median cache-line round trip between two CPUs (ns); negative if it could not run. */
double mx_pingpong_ns(void);
double mx_load1(void);
unsigned mx_host_cpus(void);
/* Waits up to wait_s for `quiet_s` seconds with foreign load below `limit` CPUs. */
bool mx_wait_idle(unsigned wait_s, unsigned quiet_s, double limit, int daemon_pid, bool verbose,
		  double *seen);
/* Kernel, CPU model, QEMU and git versions, topology: the run's host record. */
json_t *mx_host_json(void);
/* "lockstepd" (or another name) beside this executable; -ENOENT if absent. */
int mx_sibling_path(const char *name, char *buf, size_t size);

/* ---- run.c: cells under lockstepd ---- */
int mx_lockstep_open(const struct mx_options *o, const char *work_dir, struct mx_lockstep **out,
		     char *err, size_t err_len);
void mx_lockstep_close(struct mx_lockstep *ls);
int mx_lockstep_daemon_pid(const struct mx_lockstep *ls);
json_t *mx_lockstep_info(struct mx_lockstep *ls); /* daemon.info, for the run record */
/* Runs one measurement; fills m (m->status says how it went). */
void mx_lockstep_run(struct mx_lockstep *ls, const struct mx_workload *w, enum mx_policy p,
		     const struct mx_layout *l, unsigned duration_ms, struct mx_measurement *m);
/* S: switchbench's median switch cost in ns (0: failed), and the run's record. */
double mx_lockstep_switch_cost(struct mx_lockstep *ls, json_t **record);
/* Asks lockstepd to define a gang VM wider than the host; returns its refusal (or NULL if it
 * accepted, which is then undone). */
char *mx_lockstep_gang_refusal(struct mx_lockstep *ls, unsigned vcpus);
/*
 * Defines and starts VMs together from ready definitions, awaits the first `awaited` of them
 * (the others are companions, destroyed then), and undefines them; records[i] gets {"name",
 * "console", "info"} (vm.info after the stop, with last_run) of each VM that started.  -errno
 * with the reason in err; records of what ran are filled even then.
 */
int mx_lockstep_run_definitions(struct mx_lockstep *ls, json_t *const *defs, unsigned n,
				unsigned awaited, unsigned timeout_s, json_t **records, char *err,
				size_t err_len);

/* ---- qemu.c: the same cells under QEMU ---- */
/* NULL and a reason when QEMU cannot run guests here. */
struct mx_qemu *mx_qemu_open(const struct mx_options *o, const char *work_dir, char *why,
			     size_t why_len);
void mx_qemu_close(struct mx_qemu *q);
const char *mx_qemu_version(const struct mx_qemu *q);
const char *mx_qemu_firmware(const struct mx_qemu *q);
void mx_qemu_run(struct mx_qemu *q, const struct mx_workload *w, const struct mx_layout *l,
		 unsigned duration_ms, struct mx_measurement *m);

/* Shared by both runners: shares, efficiency against a reference, window overlap. */
void mx_measurement_init(struct mx_measurement *m, const struct mx_layout *l);
void mx_measurement_fini(struct mx_measurement *m);
void mx_measurement_finish(struct mx_measurement *m, const struct mx_workload *w,
			   unsigned host_cpus);
void mx_measurement_score(struct mx_measurement *m, double reference);

/* ---- report.c: aggregation, table.md, targets; plot.c: gnuplot ---- */
#define MX_MAX_WORKLOADS 16
struct mx_report;
struct mx_report *mx_report_new(const struct mx_options *o, const struct mx_layout *layouts,
				unsigned nr_layouts, unsigned host_cpus);
void mx_report_free(struct mx_report *r);
/* The run record (host, versions, options): the table's header is made from it. */
void mx_report_set_run(struct mx_report *r, json_t *run);
/* One scored measurement of a cell; the reference runs go to mx_report_reference. */
void mx_report_add(struct mx_report *r, size_t workload, enum mx_policy p, unsigned layout,
		   const struct mx_measurement *m, const struct mx_host_sample *h);
/* A block's reference (0: none) and its two runs (0: failed). */
void mx_report_reference(struct mx_report *r, size_t workload, double reference, double first,
			 double last);
void mx_report_na(struct mx_report *r, size_t workload, enum mx_policy p, unsigned layout,
		  const char *why);
void mx_report_qemu_status(struct mx_report *r, const char *status);
/* S of one repetition (ns), for the bounds. */
void mx_report_switch_cost(struct mx_report *r, double ns);
void mx_report_rep_state(struct mx_report *r, unsigned rep, double pingpong_min,
			 double pingpong_max, double load1);
/* table.md, efficiency.dat/.gp/.svg/.png; *summary: the medians, for results.jsonl. */
int mx_report_write(struct mx_report *r, const char *dir, double seconds, unsigned discarded,
		    unsigned failed_once, json_t **summary);

/* Median and range of one cell over its repetitions (at most 2 x MX_MAX_REPS values). */
struct mx_stat {
	unsigned n;
	double median, min, max;
};
void mx_stat_of(const double *v, unsigned n, struct mx_stat *out);
/* For plot.c: the cell's efficiency; false when it was not measured. */
bool mx_report_cell(const struct mx_report *r, size_t workload, enum mx_policy p, unsigned layout,
		    struct mx_stat *eff);
int mx_plot_write(const struct mx_report *r, const struct mx_options *o,
		  const struct mx_layout *layouts, unsigned nr_layouts, unsigned host_cpus,
		  const char *dir, char *err, size_t err_len);

#endif /* LOCKSTEP_BENCH_MATRIX_H */
