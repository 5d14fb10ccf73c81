/*
 * lockstep-bench api: how many requests of one JSON-RPC method lockstepd serves, and how
 * fast, with N clients at once.
 *
 *   lockstep-bench api --socket S --method vm.list|vm.info [--name VM] --clients N
 *                      --seconds S [--json]
 *
 * Each client is a thread with a connection of its own (api/client.c, the blocking client
 * the CLI uses) that sends a request, waits for its reply, and sends the next, for S
 * seconds after all clients are connected; a request's latency is from before its frame is
 * built to after its reply is parsed, so client-side JSON work is included, as it is for
 * every real client.  vm.info asks for --name, or else the first running VM (the first VM
 * when none runs): for a running VM it is a round trip to that VM's worker.
 *
 * Reported: requests/s in total and per client (min, median, max over clients), errors,
 * and latency percentiles over every request.  Both ends share the host: on a small machine
 * the clients' CPU time competes with lockstepd's.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api/client.h"
#include "clients/bench/bench.h"
#include "util/util.h"

#define CLIENTS_MAX 1024

struct api_opts {
	const char *socket;
	const char *method;
	const char *name;
	unsigned clients;
	uint64_t seconds;
	bool json;
};

/* When the clients may start, and until when they run. */
struct api_start {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool go;
	uint64_t deadline_ns;
};

struct api_client_run {
	pthread_t thread;
	const struct api_opts *o;
	struct api_start *start;
	struct api_client *c;
	struct bench_samples lat;
	uint64_t requests, errors;
	int failure; /* -errno of a connection that broke */
};

static void usage(FILE *out)
{
	fputs("usage: lockstep-bench api --socket PATH --method vm.list|vm.info [--name VM]\n"
	      "                          [--clients N] [--seconds S] [--json]\n"
	      "N clients (threads, 1 connection each; default 1) call METHOD back to back for S\n"
	      "seconds (default 5): requests/s in total and per client, latency percentiles.\n",
	      out);
}

static json_t *params_for(const struct api_opts *o)
{
	if (strcmp(o->method, "vm.info") == 0)
		return json_pack("{s:s}", "name", o->name);
	return json_object();
}

static void *client_main(void *arg)
{
	struct api_client_run *r = arg;
	uint64_t deadline;

	pthread_mutex_lock(&r->start->lock);
	while (!r->start->go)
		pthread_cond_wait(&r->start->cond, &r->start->lock);
	deadline = r->start->deadline_ns;
	pthread_mutex_unlock(&r->start->lock);
	for (;;) {
		uint64_t t0 = bench_now_ns(), t1;
		json_t *result = NULL, *error = NULL;
		int ret;

		if (t0 >= deadline)
			break;
		ret = api_client_call(r->c, r->o->method, params_for(r->o), &result, &error);
		t1 = bench_now_ns();
		json_decref(result);
		json_decref(error);
		if (ret && ret != -EPROTO) {
			r->failure = ret;
			break;
		}
		r->requests++;
		r->errors += ret == -EPROTO;
		if (bench_samples_add(&r->lat, t1 - t0)) {
			r->failure = -ENOMEM;
			break;
		}
	}
	return NULL;
}

/* The VM vm.info asks about when --name is not given: the first running one, or the first. */
static int pick_vm(const struct api_opts *o, char *name, size_t size)
{
	struct api_client *c;
	json_t *list = NULL, *error = NULL, *vm, *pick = NULL;
	size_t i;
	int ret = api_client_connect(o->socket, &c);

	if (ret)
		return ret;
	ret = api_client_call(c, "vm.list", NULL, &list, &error);
	json_array_foreach(list, i, vm) {
		if (!pick)
			pick = vm;
		if (strcmp(json_string_value(json_object_get(vm, "state")), "running") == 0) {
			pick = vm;
			break;
		}
	}
	if (!ret && !pick)
		ret = -ENOENT;
	if (!ret)
		util_strlcpy(name, json_string_value(json_object_get(pick, "name")), size);
	json_decref(list);
	json_decref(error);
	api_client_close(c);
	return ret;
}

static int parse(struct api_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "method", required_argument, NULL, 'm' },
		{ "name", required_argument, NULL, 'n' },
		{ "clients", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t u;
	int opt;

	*o = (struct api_opts){ .clients = 1, .seconds = 5 };
	o->socket = api_client_default_socket();
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			o->socket = optarg;
			break;
		case 'm':
			o->method = optarg;
			break;
		case 'n':
			o->name = optarg;
			break;
		case 'c':
			if (util_parse_u64(optarg, 1, CLIENTS_MAX, &u))
				goto bad;
			o->clients = (unsigned)u;
			break;
		case 't':
			if (util_parse_u64(optarg, 1, 3600, &o->seconds))
				goto bad;
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
	if (optind == argc && o->method &&
	    (strcmp(o->method, "vm.list") == 0 || strcmp(o->method, "vm.info") == 0))
		return 0;
bad:
	usage(stderr);
	return -1;
}

static void report(const struct api_opts *o, struct api_client_run *runs, double seconds)
{
	struct bench_samples all = { 0 }, per_client = { 0 };
	uint64_t requests = 0, errors = 0;

	for (unsigned i = 0; i < o->clients; i++) {
		requests += runs[i].requests;
		errors += runs[i].errors;
		bench_samples_merge(&all, &runs[i].lat);
		/* Per-client rates in milli-requests/s, kept as integers for the percentiles. */
		bench_samples_add(&per_client,
				  (uint64_t)((double)runs[i].requests / seconds * 1e3));
	}
	if (o->json) {
		bench_print_json(json_pack(
			"{s:s, s:s, s:s*, s:i, s:f, s:I, s:I, s:f, s:{s:f, s:f, s:f}, s:o}",
			"benchmark", "api", "method", o->method, "name", o->name, "clients",
			(int)o->clients, "seconds", seconds, "requests", (json_int_t)requests,
			"errors", (json_int_t)errors, "requests_per_s", (double)requests / seconds,
			"per_client_requests_per_s", "min",
			(double)bench_samples_percentile(&per_client, 0) / 1e3, "median",
			(double)bench_samples_percentile(&per_client, 50) / 1e3, "max",
			(double)bench_samples_percentile(&per_client, 100) / 1e3, "latency_us",
			bench_latency_json(&all)));
	} else {
		printf("%-8s %7s %9s %9s %21s  %s\n", "METHOD", "CLIENTS", "REQUESTS", "REQ/S",
		       "PER CLIENT min/med/max", bench_latency_header);
		printf("%-8s %7u %9llu %9.0f %7.0f/%6.0f/%6.0f ", o->method, o->clients,
		       (unsigned long long)requests, (double)requests / seconds,
		       (double)bench_samples_percentile(&per_client, 0) / 1e3,
		       (double)bench_samples_percentile(&per_client, 50) / 1e3,
		       (double)bench_samples_percentile(&per_client, 100) / 1e3);
		bench_latency_row(stdout, &all);
		printf("\n");
		if (errors)
			printf("%llu requests were answered with an error\n",
			       (unsigned long long)errors);
	}
	bench_samples_free(&all);
	bench_samples_free(&per_client);
}

int bench_api(int argc, char **argv)
{
	struct api_start go = { .lock = PTHREAD_MUTEX_INITIALIZER,
				.cond = PTHREAD_COND_INITIALIZER };
	struct api_client_run *runs;
	struct api_opts o;
	char name[128];
	unsigned connected = 0, started = 0;
	uint64_t start;
	int ret, status = 0;

	ret = parse(&o, argc, argv);
	if (ret)
		return ret > 0 ? 0 : BENCH_EXIT_USAGE;
	if (strcmp(o.method, "vm.info") == 0 && !o.name) {
		ret = pick_vm(&o, name, sizeof(name));
		if (ret) {
			fprintf(stderr, "lockstep-bench: no VM to ask about at %s: %s\n", o.socket,
				ret == -ENOENT ? "none is defined" : strerror(-ret));
			return ret == -ENOENT || ret == -EPROTO ? BENCH_EXIT_FAILED :
								  BENCH_EXIT_UNREACHABLE;
		}
		o.name = name;
	}
	runs = calloc(o.clients, sizeof(*runs));
	if (!runs)
		return BENCH_EXIT_FAILED;
	/* Every client connects before any starts, so the run measures N connections. */
	for (; connected < o.clients; connected++) {
		runs[connected] = (struct api_client_run){ .o = &o, .start = &go };
		ret = api_client_connect(o.socket, &runs[connected].c);
		if (ret) {
			fprintf(stderr,
				"lockstep-bench: client %u cannot reach lockstepd at %s: %s\n",
				connected, o.socket, strerror(-ret));
			status = BENCH_EXIT_UNREACHABLE;
			break;
		}
	}
	for (; !status && started < o.clients; started++) {
		if (pthread_create(&runs[started].thread, NULL, client_main, &runs[started])) {
			fprintf(stderr, "lockstep-bench: cannot start client %u\n", started);
			status = BENCH_EXIT_FAILED;
			break;
		}
	}
	pthread_mutex_lock(&go.lock);
	start = bench_now_ns();
	go.deadline_ns = status ? start : start + o.seconds * 1000000000ull;
	go.go = true;
	pthread_cond_broadcast(&go.cond);
	pthread_mutex_unlock(&go.lock);
	for (unsigned i = 0; i < started; i++) {
		pthread_join(runs[i].thread, NULL);
		if (runs[i].failure && !status) {
			fprintf(stderr, "lockstep-bench: client %u lost lockstepd: %s\n", i,
				strerror(-runs[i].failure));
			status = BENCH_EXIT_FAILED;
		}
	}
	if (!status)
		report(&o, runs, (double)(bench_now_ns() - start) / 1e9);
	for (unsigned i = 0; i < connected; i++) {
		api_client_close(runs[i].c);
		bench_samples_free(&runs[i].lat);
	}
	free(runs);
	return status;
}
