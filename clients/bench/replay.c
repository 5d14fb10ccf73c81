/*
 * lockstep-bench matrix --report DIR: the report of an earlier run, again, from its
 * results.jsonl alone -- to restyle the plots, or to read old figures with a newer report
 * (targets, noise).  Nothing is measured: the run record gives the options and the host,
 * each kept measurement its efficiency as scored when it ran, the reference runs the
 * blocks' references, the switch-cost records S, the discarded records the noise counts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clients/bench/matrix.h"

#define LINE_MAX_BYTES (16u << 20)

struct replay {
	json_t *run;
	struct mx_options o;
	struct mx_layout layouts[2 * MX_MAX_OVERCOMMIT];
	unsigned nr_layouts, host_cpus;
	struct mx_report *report;
	/* The reference runs of each (repetition, workload) block, in order. */
	double refs[MX_MAX_REPS][MX_MAX_WORKLOADS][2];
	unsigned nr_refs[MX_MAX_REPS][MX_MAX_WORKLOADS];
	unsigned discarded, failed_once;
	double seconds;
};

static int workload_index(const char *name)
{
	for (size_t i = 0; name && i < mx_nr_workloads; i++)
		if (strcmp(mx_workloads[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int layout_index(const struct replay *rp, const char *label)
{
	for (unsigned i = 0; label && i < rp->nr_layouts; i++)
		if (strcmp(rp->layouts[i].label, label) == 0)
			return (int)i;
	return -1;
}

/* The options the run had, from its run record. */
static int options_of(struct replay *rp)
{
	json_t *opts = json_object_get(rp->run, "options"), *v;
	const char *qemu = json_string_value(json_object_get(rp->run, "qemu"));
	size_t i;

	if (!json_is_object(opts))
		return -EINVAL;
	rp->o = (struct mx_options){
		.preset = json_string_value(json_object_get(opts, "preset")) ?: "?",
		.reps = (unsigned)json_integer_value(json_object_get(opts, "reps")),
		.duration_ms = (unsigned)json_integer_value(json_object_get(opts, "duration_ms")),
		.layout_one = json_is_true(json_object_get(opts, "layout_one")),
		.layout_several = json_is_true(json_object_get(opts, "layout_several")),
		.noisy_fraction = json_number_value(json_object_get(opts, "noisy_cpus")),
		.qemu = !qemu			     ? -1 :
			strncmp(qemu, "ran", 3) == 0 ? 1 :
			strstr(qemu, "--no-qemu")    ? 0 :
						       -1,
	};
	json_array_foreach(json_object_get(opts, "workloads"), i, v)
		if (workload_index(json_string_value(v)) >= 0)
			rp->o.workloads[workload_index(json_string_value(v))] = true;
	json_array_foreach(json_object_get(opts, "policies"), i, v) {
		enum mx_policy p;

		if (json_is_string(v) && mx_policy_parse(json_string_value(v), &p) == 0)
			rp->o.policies[p] = true;
	}
	json_array_foreach(json_object_get(opts, "overcommit"), i, v)
		if (rp->o.nr_overcommit < MX_MAX_OVERCOMMIT)
			rp->o.overcommit[rp->o.nr_overcommit++] = json_number_value(v);
	rp->host_cpus = (unsigned)json_integer_value(
		json_object_get(json_object_get(rp->run, "host"), "cpus"));
	if (!rp->host_cpus || !rp->o.reps || rp->o.reps > MX_MAX_REPS)
		return -EINVAL;
	rp->nr_layouts = mx_plan_layouts(&rp->o, rp->host_cpus, rp->layouts);
	return 0;
}

static void measurement(struct replay *rp, const json_t *rec)
{
	const char *status = json_string_value(json_object_get(rec, "status"));
	int w = workload_index(json_string_value(json_object_get(rec, "workload")));
	int l = layout_index(rp, json_string_value(json_object_get(rec, "layout")));
	unsigned rep = (unsigned)json_integer_value(json_object_get(rec, "rep"));
	json_t *host = json_object_get(rec, "host"), *vms = json_object_get(rec, "vms");
	struct mx_measurement m = { .status = MX_FAILED };
	struct mx_host_sample h;
	enum mx_policy p;

	if (json_is_true(json_object_get(rec, "discarded"))) {
		if (status && strcmp(status, "failed") == 0)
			rp->failed_once++;
		else
			rp->discarded++;
		return;
	}
	if (w < 0 || rep >= MX_MAX_REPS ||
	    mx_policy_parse(json_string_value(json_object_get(rec, "policy")) ?: "", &p))
		return;
	if (json_is_true(json_object_get(rec, "reference_run"))) {
		if (status && strcmp(status, "ok") == 0 && rp->nr_refs[rep][w] < 2)
			rp->refs[rep][w][rp->nr_refs[rep][w]++] =
				json_number_value(json_object_get(rec, "throughput"));
		return;
	}
	if (l < 0)
		return;
	if (status && strcmp(status, "ok") == 0 && json_object_get(rec, "efficiency"))
		m.status = MX_OK;
	m.nr_vms = (unsigned)json_array_size(vms);
	m.vms_json = vms; /* borrowed: the report only reads it */
	m.efficiency = json_number_value(json_object_get(rec, "efficiency"));
	m.throughput = json_number_value(json_object_get(rec, "throughput"));
	m.concurrency = json_number_value(json_object_get(rec, "concurrency"));
	snprintf(m.vm[0].backend, sizeof(m.vm[0].backend), "%s",
		 json_string_value(json_object_get(json_array_get(vms, 0), "backend")) ?: "");
	h = (struct mx_host_sample){
		.pingpong_ns = json_number_value(json_object_get(host, "pingpong_ns")),
		.foreign_s = json_number_value(json_object_get(host, "foreign_cpus")),
		.elapsed_s = 1,
	};
	mx_report_add(rp->report, (size_t)w, p, (unsigned)l, &m, &h);
}

static void record(struct replay *rp, json_t *rec)
{
	const char *type = json_string_value(json_object_get(rec, "type"));
	json_t *pp = json_object_get(rec, "pingpong_ns");
	int l;

	if (!type)
		return;
	if (strcmp(type, "measurement") == 0) {
		measurement(rp, rec);
	} else if (strcmp(type, "gang-check") == 0) {
		l = layout_index(rp, json_string_value(json_object_get(rec, "layout")));
		for (size_t w = 0; l >= 0 && w < mx_nr_workloads; w++)
			if (rp->o.workloads[w])
				mx_report_na(rp->report, w, MX_GANG, (unsigned)l,
					     json_is_true(json_object_get(rec, "refused")) ?
						     "refused by lockstepd" :
						     "accepted!");
	} else if (strcmp(type, "switch-cost") == 0) {
		const char *status = json_string_value(json_object_get(rec, "status"));

		if (status && strcmp(status, "ok") == 0)
			mx_report_switch_cost(rp->report,
					      json_number_value(json_object_get(rec, "switch_ns")));
	} else if (strcmp(type, "rep") == 0) {
		rp->seconds += json_number_value(json_object_get(rec, "seconds"));
		mx_report_rep_state(rp->report,
				    (unsigned)json_integer_value(json_object_get(rec, "rep")),
				    json_number_value(json_object_get(pp, "min")),
				    json_number_value(json_object_get(pp, "max")),
				    json_number_value(json_object_get(rec, "load1")));
	}
}

/* Every line of results.jsonl through `record`, the run record first. */
static int read_records(struct replay *rp, const char *path)
{
	char *line = malloc(LINE_MAX_BYTES);
	FILE *f = fopen(path, "re");
	int ret = 0;

	if (!f || !line) {
		ret = f ? -ENOMEM : -errno;
		goto out;
	}
	while (fgets(line, LINE_MAX_BYTES, f)) {
		json_t *rec = json_loads(line, 0, NULL);
		const char *type = json_string_value(json_object_get(rec, "type"));

		if (!rp->run && type && strcmp(type, "run") == 0) {
			rp->run = json_incref(rec);
			ret = options_of(rp);
			rp->report = ret ? NULL :
					   mx_report_new(&rp->o, rp->layouts, rp->nr_layouts,
							 rp->host_cpus);
			if (!ret && !rp->report)
				ret = -ENOMEM;
			if (!ret) {
				mx_report_set_run(rp->report, rp->run);
				mx_report_qemu_status(
					rp->report,
					json_string_value(json_object_get(rp->run, "qemu")) ?: "");
			}
		} else if (rp->report) {
			record(rp, rec);
		}
		json_decref(rec);
		if (ret)
			break;
	}
	if (!ret && !rp->report)
		ret = -ENODATA;
out:
	if (f)
		fclose(f);
	free(line);
	return ret;
}

int mx_matrix_report(const char *dir)
{
	struct replay *rp = calloc(1, sizeof(*rp));
	char path[4200];
	json_t *summary = NULL;
	int ret;

	if (!rp)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/results.jsonl", dir);
	ret = read_records(rp, path);
	if (ret) {
		fprintf(stderr, "lockstep-bench matrix: %s: %s\n", path,
			ret == -ENODATA || ret == -EINVAL ? "no usable run record" :
							    strerror(-ret));
		goto out;
	}
	for (unsigned rep = 0; rep < MX_MAX_REPS; rep++) {
		for (size_t w = 0; w < mx_nr_workloads; w++) {
			unsigned n = rp->nr_refs[rep][w];
			double a = n > 0 ? rp->refs[rep][w][0] : 0,
			       b = n > 1 ? rp->refs[rep][w][1] : 0;

			if (n)
				mx_report_reference(rp->report, w, (a + b) / n, a, b);
		}
	}
	ret = mx_report_write(rp->report, dir, rp->seconds, rp->discarded, rp->failed_once,
			      &summary);
	json_decref(summary);
	if (!ret)
		fprintf(stderr, "lockstep-bench matrix: %s/table.md and the plots written again\n",
			dir);
out:
	mx_report_free(rp->report);
	json_decref(rp->run);
	free(rp);
	return ret;
}
