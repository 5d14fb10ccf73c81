/*
 * The matrix as a picture: efficiency against overcommit, one panel per workload, one line
 * per policy (QEMU included), solid for one VM and dashed for several, with the range over
 * repetitions as thin error bars, each policy's points nudged sideways so that the bars
 * of one overcommit level do not hide each other.  Writes the data (efficiency.dat) and a
 * gnuplot script
 * (efficiency.gp) beside the images so a plot can be redrawn or restyled, then runs gnuplot
 * twice: efficiency.svg and efficiency.png.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clients/bench/matrix.h"

#define PANEL_W 560
#define PANEL_H 380
#define NUDGE 0.03 /* x offset between policies, in overcommit units */

static const char *const colours[MX_NR_POLICIES] = {
	[MX_HOST] = "#d62728",	  [MX_PINNED] = "#ff7f0e",   [MX_GANG] = "#1f77b4",
	[MX_RELAXED] = "#2ca02c", [MX_ADAPTIVE] = "#9467bd", [MX_MUX] = "#8c564b",
	[MX_QEMU] = "#7f7f7f",
};

/* Whether a layout belongs to the "one VM" line, the "several VMs" line, or both (1x). */
static bool in_series(const struct mx_layout *l, unsigned host_cpus, bool several)
{
	if (l->total_vcpus <= host_cpus)
		return true;
	return l->several == several;
}

static int cmp_layout(const void *a, const void *b)
{
	const struct mx_layout *x = *(const struct mx_layout *const *)a;
	const struct mx_layout *y = *(const struct mx_layout *const *)b;

	return x->overcommit < y->overcommit ? -1 : x->overcommit > y->overcommit;
}

/*
 * One gnuplot data block per (workload, policy, layout kind): "x median min max overcommit"
 * where x is the overcommit nudged by policy.  Returns the block's index, or -1 when it has
 * no point.
 */
static int write_block(FILE *dat, const struct mx_report *r, size_t w, enum mx_policy p,
		       bool several, const struct mx_layout *layouts, unsigned nr_layouts,
		       unsigned host_cpus, int *next_index)
{
	double x_offset = ((double)p - (MX_NR_POLICIES - 1) / 2.0) * NUDGE;

	const struct mx_layout *sorted[2 * MX_MAX_OVERCOMMIT];
	unsigned points = 0;

	for (unsigned l = 0; l < nr_layouts; l++)
		sorted[l] = &layouts[l];
	qsort(sorted, nr_layouts, sizeof(*sorted), cmp_layout);
	for (unsigned k = 0; k < nr_layouts; k++) {
		unsigned l = (unsigned)(sorted[k] - layouts);
		struct mx_stat e;

		if (!in_series(sorted[k], host_cpus, several) || !mx_report_cell(r, w, p, l, &e))
			continue;
		if (!points)
			fprintf(dat, "# %s %s %s\n", mx_workloads[w].name, mx_policy_name(p),
				several ? "several" : "one");
		fprintf(dat, "%.3f %.4f %.4f %.4f %g\n", sorted[k]->overcommit + x_offset, e.median,
			e.min, e.max, sorted[k]->overcommit);
		points++;
	}
	if (!points)
		return -1;
	fprintf(dat, "\n\n");
	return (*next_index)++;
}

/* The highest median of any cell: every panel gets the same scale, up to it. */
static double highest_median(const struct mx_report *r, const struct mx_options *o,
			     unsigned nr_layouts)
{
	double top = 0;

	for (size_t w = 0; w < mx_nr_workloads; w++) {
		for (enum mx_policy p = MX_HOST; o->workloads[w] && p < MX_NR_POLICIES; p++) {
			for (unsigned l = 0; l < nr_layouts; l++) {
				struct mx_stat e;

				if (mx_report_cell(r, w, p, l, &e))
					top = fmax(top, e.median);
			}
		}
	}
	return top;
}

static void axes(FILE *gp, const struct mx_options *o, double top)
{
	double hi = 1;

	fprintf(gp, "set xtics (");
	for (unsigned i = 0; i < o->nr_overcommit; i++) {
		fprintf(gp, "%s\"%g×\" %g", i ? ", " : "", o->overcommit[i], o->overcommit[i]);
		hi = fmax(hi, o->overcommit[i]);
	}
	fprintf(gp,
		")\nset xrange [0.85:%g]\nset yrange [0:%.1f]\nset ytics 0.2\n"
		"set mytics 2\nset grid ytics mytics xtics lc rgb '#dddddd'\n"
		"set xlabel 'vCPUs per host CPU' offset 0,0.5\nset ylabel 'efficiency' "
		"offset 1.5,0\nset arrow 1 from graph 0, first 0.9 to graph 1, first 0.9 "
		"nohead dt 3 lc rgb '#555555'\n",
		hi + 0.15, fmax(1.15, ceil((top + 0.1) * 10) / 10));
}

static int write_script(const struct mx_report *r, const struct mx_options *o,
			const struct mx_layout *layouts, unsigned nr_layouts, unsigned host_cpus,
			const char *dir, unsigned *rows)
{
	char path[PATH_MAX + 32];
	unsigned panels = 1;
	int index = 0;
	FILE *dat, *gp;

	snprintf(path, sizeof(path), "%s/efficiency.dat", dir);
	dat = fopen(path, "we");
	snprintf(path, sizeof(path), "%s/efficiency.gp", dir);
	gp = fopen(path, "we");
	if (!dat || !gp) {
		if (dat)
			fclose(dat);
		if (gp)
			fclose(gp);
		return -errno;
	}
	for (size_t w = 0; w < mx_nr_workloads; w++)
		panels += o->workloads[w];
	*rows = (panels + 1) / 2;
	fprintf(gp,
		"# lockstep-bench matrix: efficiency vs overcommit (gnuplot 5).\n"
		"# Redraw: gnuplot -e \"set terminal svg size %u,%u; set output 'x.svg'\" "
		"efficiency.gp\n",
		2 * PANEL_W, *rows * PANEL_H);
	fprintf(gp,
		"set multiplot layout %u,2 title 'lockstep-bench matrix: efficiency "
		"(median, bars min–max over %u repetition%s); dotted: 0.9' font ',13'\n",
		*rows, o->reps, o->reps == 1 ? "" : "s");
	axes(gp, o, highest_median(r, o, nr_layouts));
	fprintf(gp, "set key off\nset bars small\n");
	for (size_t w = 0; w < mx_nr_workloads; w++) {
		bool first = true;

		if (!o->workloads[w])
			continue;
		fprintf(gp, "set title '%s'\nplot ", mx_workloads[w].title);
		for (enum mx_policy p = MX_HOST; p < MX_NR_POLICIES; p++) {
			for (int several = 0; several < 2; several++) {
				int i = write_block(dat, r, w, p, several, layouts, nr_layouts,
						    host_cpus, &index);

				if (i < 0)
					continue;
				fprintf(gp,
					"%s'efficiency.dat' index %d using 1:2:3:4 with yerrorbars "
					"lc rgb '%s' lw 0.6 pt %d ps 0.6 notitle, \\\n     "
					"'' index %d using 1:2 with lines lc rgb '%s' lw 1.8 dt %d "
					"notitle",
					first ? "" : ", \\\n     ", i, colours[p], several ? 5 : 7,
					i, colours[p], several ? 2 : 1);
				first = false;
			}
		}
		if (first)
			fprintf(gp, "NaN notitle");
		fputc('\n', gp);
	}
	/* The key gets a panel of its own. */
	fprintf(gp, "unset title\nunset border\nunset tics\nunset xlabel\nunset ylabel\n"
		    "unset grid\nunset arrow\nset key center center font ',12' spacing 1.3\n"
		    "set yrange [0:1]\nplot ");
	for (enum mx_policy p = MX_HOST; p < MX_NR_POLICIES; p++) {
		if (p == MX_QEMU ? o->qemu == 0 : !o->policies[p])
			continue;
		fprintf(gp, "NaN with linespoints lc rgb '%s' lw 2 pt 7 title '%s', ", colours[p],
			p == MX_QEMU ? "QEMU (Linux scheduling)" : mx_policy_name(p));
	}
	fprintf(gp, "NaN with linespoints lc rgb 'black' dt 1 pt 7 title 'one VM', "
		    "NaN with linespoints lc rgb 'black' dt 2 pt 5 title 'several VMs'\n"
		    "unset multiplot\n");
	fclose(dat);
	return fclose(gp) ? -errno : 0;
}

/* gnuplot in `dir`, with the terminal given on its command line. */
static int run_gnuplot(const char *dir, const char *setup, char *err, size_t err_len)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		if (chdir(dir))
			_exit(126);
		if (null >= 0)
			dup2(null, STDOUT_FILENO);
		execlp("gnuplot", "gnuplot", "-e", setup, "efficiency.gp", (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -errno;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		snprintf(err, err_len, "gnuplot is not installed (Debian: gnuplot-nox)");
	else
		snprintf(err, err_len, "gnuplot failed (status %d) on %s/efficiency.gp",
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1, dir);
	return -EIO;
}

int mx_plot_write(const struct mx_report *r, const struct mx_options *o,
		  const struct mx_layout *layouts, unsigned nr_layouts, unsigned host_cpus,
		  const char *dir, char *err, size_t err_len)
{
	char setup[256];
	unsigned rows;
	int ret = write_script(r, o, layouts, nr_layouts, host_cpus, dir, &rows);

	if (ret) {
		snprintf(err, err_len, "cannot write the plot's files in %s: %s", dir,
			 strerror(-ret));
		return ret;
	}
	snprintf(setup, sizeof(setup),
		 "set terminal svg size %u,%u dynamic enhanced font 'sans,11' background "
		 "'white'; set output 'efficiency.svg'",
		 2 * PANEL_W, rows * PANEL_H);
	ret = run_gnuplot(dir, setup, err, err_len);
	if (ret)
		return ret;
	snprintf(setup, sizeof(setup),
		 "set terminal pngcairo size %u,%u enhanced font 'sans,10' background "
		 "'white'; set output 'efficiency.png'",
		 2 * PANEL_W, rows * PANEL_H);
	return run_gnuplot(dir, setup, err, err_len);
}
