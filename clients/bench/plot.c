/*
 * The matrix as a picture: efficiency against overcommit, one panel per workload, one line
 * per policy (QEMU included), solid for one VM and dashed for several, with the range over
 * repetitions as error bars.  Writes the data (efficiency.dat) and a gnuplot script
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

static const char *const colours[MX_NR_POLICIES] = {
	[MX_HOST] = "#d62728",	  [MX_PINNED] = "#ff7f0e",   [MX_GANG] = "#1f77b4",
	[MX_RELAXED] = "#2ca02c", [MX_ADAPTIVE] = "#9467bd", [MX_QEMU] = "#7f7f7f",
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
 * One gnuplot data block per (workload, policy, layout kind): "overcommit median min max".
 * Returns the block's index, or -1 when it has fewer than one point.
 */
static int write_block(FILE *dat, const struct mx_report *r, size_t w, enum mx_policy p,
		       bool several, const struct mx_layout *layouts, unsigned nr_layouts,
		       unsigned host_cpus, int *next_index)
{
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
		fprintf(dat, "%g %.4f %.4f %.4f\n", sorted[k]->overcommit, e.median, e.min, e.max);
		points++;
	}
	if (!points)
		return -1;
	fprintf(dat, "\n\n");
	return (*next_index)++;
}

static void axes(FILE *gp, const struct mx_options *o)
{
	double hi = 1;

	fprintf(gp, "set xtics (");
	for (unsigned i = 0; i < o->nr_overcommit; i++) {
		fprintf(gp, "%s\"%g×\" %g", i ? ", " : "", o->overcommit[i], o->overcommit[i]);
		hi = fmax(hi, o->overcommit[i]);
	}
	fprintf(gp,
		")\nset xrange [0.85:%g]\nset yrange [0:1.15]\nset ytics 0.2\n"
		"set mytics 2\nset grid ytics mytics xtics lc rgb '#dddddd'\n"
		"set xlabel 'vCPUs per host CPU' offset 0,0.5\nset ylabel 'efficiency' "
		"offset 1.5,0\nset arrow 1 from graph 0, first 0.9 to graph 1, first 0.9 "
		"nohead dt 3 lc rgb '#555555'\n",
		hi + 0.15);
}

static int write_script(const struct mx_report *r, const struct mx_options *o,
			const struct mx_layout *layouts, unsigned nr_layouts, const char *dir,
			unsigned *rows)
{
	char path[PATH_MAX + 32];
	unsigned host_cpus = mx_host_cpus(), panels = 1;
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
	axes(gp, o);
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
					"%s'efficiency.dat' index %d using 1:2:3:4 with yerrorlines "
					"lc rgb '%s' lw 1.6 dt %d pt %d ps 0.7 notitle",
					first ? "" : ", \\\n     ", i, colours[p], several ? 2 : 1,
					several ? 5 : 7);
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
		  const struct mx_layout *layouts, unsigned nr_layouts, const char *dir, char *err,
		  size_t err_len)
{
	char setup[256];
	unsigned rows;
	int ret = write_script(r, o, layouts, nr_layouts, dir, &rows);

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
