/*
 * lockstep-bench start-latency: how long from asking lockstepd to start a VM until its guest
 * says something.
 *
 *   lockstep-bench start-latency --socket S --kernel K [--runs N] [--vcpus N]
 *                                [--memory SIZE] [--cmdline C] [--json]
 *
 * Each run starts a VM (defined for the benchmark, named bench-start-PID) and times, from
 * just before the vm.start request is sent:
 *   first byte  the first byte of its serial console, seen by polling vm.console (offset
 *               0, max 0) back to back on a second connection until its size is above 0;
 *               the resolution is one vm.console round trip (tens of µs), far finer than
 *               console.output notifications, which lockstepd sends every 100 ms;
 *   running     vm.start's reply, which comes when the worker reports its vCPU threads;
 * and reads the worker's own view (vm.info statistics: first_serial_byte_ms, from the
 * worker's start).  Then it destroys and undefines the VM.  Each run defines a VM of its own
 * name (bench-start-PID-RUN), whose console in lockstepd's run directory does not exist before
 * its worker creates it, so no run can see the bytes of the run before.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/client.h"
#include "clients/bench/bench.h"
#include "util/util.h"

struct start_opts {
	const char *socket;
	char kernel[PATH_MAX];
	const char *cmdline;
	uint64_t runs, vcpus;
	const char *memory;
	bool json;
};

/* The vm.start call, made on its own thread and connection while the main one polls. */
struct start_call {
	struct api_client *c;
	const char *name;
	uint64_t sent_ns, replied_ns;
	json_t *error;
	int ret;
};

static void usage(FILE *out)
{
	fputs("usage: lockstep-bench start-latency --socket PATH --kernel FILE [--runs N]\n"
	      "                                    [--vcpus N] [--memory SIZE] [--cmdline C]\n"
	      "                                    [--json]\n"
	      "Starts a VM N times (default 10) and times vm.start -> first serial byte\n"
	      "(polling vm.console) and vm.start -> running; median, min and max.\n",
	      out);
}

static int parse(struct start_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "kernel", required_argument, NULL, 'k' },
		{ "runs", required_argument, NULL, 'r' },
		{ "vcpus", required_argument, NULL, 'p' },
		{ "memory", required_argument, NULL, 'm' },
		{ "cmdline", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *kernel = NULL;
	int opt;

	*o = (struct start_opts){ .runs = 10, .vcpus = 2, .memory = "64M" };
	o->socket = api_client_default_socket();
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			o->socket = optarg;
			break;
		case 'k':
			kernel = optarg;
			break;
		case 'r':
			if (util_parse_u64(optarg, 1, 10000, &o->runs))
				goto bad;
			break;
		case 'p':
			if (util_parse_u64(optarg, 1, 254, &o->vcpus))
				goto bad;
			break;
		case 'm':
			o->memory = optarg;
			break;
		case 'a':
			o->cmdline = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			goto bad;
		}
	}
	if (optind != argc || !kernel)
		goto bad;
	/* The daemon has no working directory of ours: it needs the kernel's absolute path. */
	if (!realpath(kernel, o->kernel)) {
		fprintf(stderr, "lockstep-bench: %s: %s\n", kernel, strerror(errno));
		return -1;
	}
	return 0;
bad:
	usage(stderr);
	return -1;
}

/* Calls a method and prints lockstepd's error; 0 or an exit status. */
static int call(struct api_client *c, const char *method, json_t *params, json_t **result)
{
	json_t *error = NULL, *ignored = NULL;
	int ret = api_client_call(c, method, params, result ? result : &ignored, &error);

	json_decref(ignored);
	if (ret == -EPROTO) {
		fprintf(stderr, "lockstep-bench: %s: %s\n", method,
			api_client_error_message(error));
		json_decref(error);
		return BENCH_EXIT_FAILED;
	}
	if (ret) {
		fprintf(stderr, "lockstep-bench: %s: lost lockstepd: %s\n", method, strerror(-ret));
		return BENCH_EXIT_UNREACHABLE;
	}
	return 0;
}

/* Destroys the VM unless it has stopped by itself already (-32003: not running). */
static int stop(struct api_client *c, const char *name)
{
	json_t *result = NULL, *error = NULL;
	int ret =
		api_client_call(c, "vm.destroy", json_pack("{s:s}", "name", name), &result, &error);
	int code = (int)json_integer_value(json_object_get(error, "code"));

	json_decref(result);
	if (ret == -EPROTO && code != -32003)
		fprintf(stderr, "lockstep-bench: vm.destroy: %s\n",
			api_client_error_message(error));
	json_decref(error);
	if (ret == -EPROTO)
		return code == -32003 ? 0 : BENCH_EXIT_FAILED;
	return ret ? BENCH_EXIT_UNREACHABLE : 0;
}

static void *start_main(void *arg)
{
	struct start_call *s = arg;
	json_t *result = NULL;

	s->sent_ns = bench_now_ns();
	s->ret = api_client_call(s->c, "vm.start", json_pack("{s:s}", "name", s->name), &result,
				 &s->error);
	__atomic_store_n(&s->replied_ns, bench_now_ns(), __ATOMIC_RELEASE);
	json_decref(result);
	return NULL;
}

/* Polls the console's size until it is above 0; the time it was first seen, or 0. */
static uint64_t first_byte(struct api_client *c, const char *name, const struct start_call *s)
{
	uint64_t give_up = bench_now_ns() + 30 * 1000000000ull;

	while (bench_now_ns() < give_up) {
		json_t *r = NULL;
		uint64_t size;

		if (call(c, "vm.console",
			 json_pack("{s:s, s:i, s:i}", "name", name, "offset", 0, "max", 0), &r))
			return 0;
		size = (uint64_t)json_integer_value(json_object_get(r, "size"));
		json_decref(r);
		if (size > 0)
			return bench_now_ns();
		if (__atomic_load_n(&s->replied_ns, __ATOMIC_ACQUIRE) && s->ret)
			return 0; /* the start failed */
	}
	return 0;
}

static int one_run(const struct start_opts *o, struct api_client *poll_c,
		   struct api_client *start_c, const char *name, uint64_t lat[3])
{
	struct start_call s = { .c = start_c, .name = name };
	json_t *def, *info = NULL;
	pthread_t t;
	uint64_t seen;
	int ret;

	def = json_pack("{s:s, s:I, s:s, s:s}", "name", name, "vcpus", (json_int_t)o->vcpus,
			"memory", o->memory, "kernel", o->kernel);
	if (o->cmdline)
		json_object_set_new(def, "cmdline", json_string(o->cmdline));
	ret = call(poll_c, "vm.define", json_pack("{s:o}", "definition", def), NULL);
	if (ret)
		return ret;
	if (pthread_create(&t, NULL, start_main, &s))
		return BENCH_EXIT_FAILED;
	seen = first_byte(poll_c, name, &s);
	pthread_join(t, NULL);
	if (s.ret) {
		fprintf(stderr, "lockstep-bench: vm.start: %s\n",
			s.ret == -EPROTO ? api_client_error_message(s.error) : strerror(-s.ret));
		json_decref(s.error);
		return BENCH_EXIT_FAILED;
	}
	if (!seen) {
		fprintf(stderr, "lockstep-bench: %s printed nothing within 30 s\n", name);
		stop(poll_c, name);
		call(poll_c, "vm.undefine", json_pack("{s:s}", "name", name), NULL);
		return BENCH_EXIT_FAILED;
	}
	ret = call(poll_c, "vm.info", json_pack("{s:s}", "name", name), &info);
	if (!ret) {
		/* A guest that already ended (hello) has no statistics any more: no sample. */
		json_t *worker_ms =
			json_object_get(json_object_get(info, "stats"), "first_serial_byte_ms");

		lat[0] = seen - s.sent_ns;
		lat[1] = s.replied_ns - s.sent_ns;
		lat[2] = json_is_number(worker_ms) ?
				 (uint64_t)(json_number_value(worker_ms) * 1e6) :
				 UINT64_MAX;
		json_decref(info);
		ret = stop(poll_c, name);
	}
	if (!ret)
		ret = call(poll_c, "vm.undefine", json_pack("{s:s}", "name", name), NULL);
	return ret;
}

/* {"median","min","max"} in ms, or null when there is no sample. */
static json_t *summary_json(struct bench_samples *s)
{
	if (!s->n)
		return json_null();
	return json_pack("{s:f, s:f, s:f}", "median", (double)bench_samples_percentile(s, 50) / 1e6,
			 "min", (double)bench_samples_percentile(s, 0) / 1e6, "max",
			 (double)bench_samples_percentile(s, 100) / 1e6);
}

static void report(const struct start_opts *o, struct bench_samples lat[3])
{
	static const char *const what[] = { "vm.start -> first serial byte",
					    "vm.start -> running (reply)",
					    "worker start -> first serial byte" };
	static const char *const keys[] = { "first_byte_ms", "running_ms", "worker_first_byte_ms" };

	if (o->json) {
		json_t *doc = json_pack("{s:s, s:s, s:I, s:I, s:s}", "benchmark", "start-latency",
					"kernel", o->kernel, "runs", (json_int_t)o->runs, "vcpus",
					(json_int_t)o->vcpus, "memory", o->memory);

		for (int i = 0; i < 3; i++)
			json_object_set_new(doc, keys[i], summary_json(&lat[i]));
		bench_print_json(doc);
		return;
	}
	printf("%s, %llu vCPUs, %s, %llu runs\n", o->kernel, (unsigned long long)o->vcpus,
	       o->memory, (unsigned long long)o->runs);
	printf("%-34s %10s %10s %10s\n", "", "MEDIAN ms", "MIN ms", "MAX ms");
	for (int i = 0; i < 3; i++) {
		if (!lat[i].n) {
			printf("%-34s %10s %10s %10s\n", what[i], "-", "-", "-");
			continue;
		}
		printf("%-34s %10.2f %10.2f %10.2f\n", what[i],
		       (double)bench_samples_percentile(&lat[i], 50) / 1e6,
		       (double)bench_samples_percentile(&lat[i], 0) / 1e6,
		       (double)bench_samples_percentile(&lat[i], 100) / 1e6);
	}
}

int bench_start_latency(int argc, char **argv)
{
	struct bench_samples lat[3] = { { 0 } };
	struct api_client *poll_c = NULL, *start_c = NULL;
	struct start_opts o;
	char name[64];
	int ret, status = 0;

	ret = parse(&o, argc, argv);
	if (ret)
		return ret > 0 ? 0 : BENCH_EXIT_USAGE;
	if ((ret = api_client_connect(o.socket, &poll_c)) ||
	    (ret = api_client_connect(o.socket, &start_c))) {
		fprintf(stderr, "lockstep-bench: cannot reach lockstepd at %s: %s\n", o.socket,
			strerror(-ret));
		status = BENCH_EXIT_UNREACHABLE;
	}
	for (uint64_t i = 0; !status && i < o.runs; i++) {
		uint64_t l[3];

		snprintf(name, sizeof(name), "bench-start-%d-%llu", (int)getpid(),
			 (unsigned long long)i);
		status = one_run(&o, poll_c, start_c, name, l);
		for (int k = 0; !status && k < 3; k++)
			if (l[k] != UINT64_MAX)
				bench_samples_add(&lat[k], l[k]);
	}
	if (!status)
		report(&o, lat);
	api_client_close(poll_c);
	api_client_close(start_c);
	for (int k = 0; k < 3; k++)
		bench_samples_free(&lat[k]);
	return status;
}
