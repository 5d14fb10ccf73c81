/*
 * lockstep: the command-line client of lockstepd.  Tables for people, --json for scripts.
 * This file is the frame: the global options (--socket, --json, --help, --version, accepted
 * anywhere on the line), the command tables and their help, usage errors that say what was
 * wrong, each command's option parser, and calling methods with errors printed.  The
 * commands live in cli_vm.c, cli_sched.c, cli_events.c and cli_host.c.
 *
 * Exit status: 0 done, 1 lockstepd refused (its message is printed), 2 bad usage,
 * 3 lockstepd unreachable.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/client.h"
#include "util/util.h"

#include "clients/cli.h"

static const struct {
	const char *name;
	const struct command *table;
	const char *what;
} groups[] = {
	{ "vm", cli_vm_commands, "define, run and look at VMs" },
	{ "sched", cli_sched_commands, "a VM's scheduling policy, and the scheduler's accounting" },
	{ "daemon", cli_daemon_commands, "lockstepd itself" },
	{ "host", cli_host_commands, "what this host's virtualization gives SMP guests" },
	{ "device", cli_device_commands, "PCI devices passed through to VMs" },
};

static void print_commands(FILE *out, const struct command *table)
{
	for (const struct command *c = table; c->name; c++) {
		char head[96];

		snprintf(head, sizeof(head), "%s%s%s %s", c->group ? c->group : "",
			 c->group ? " " : "", c->name, c->synopsis);
		if (strlen(head) > 36)
			fprintf(out, "  %s\n  %-36s %s\n", head, "", c->summary);
		else
			fprintf(out, "  %-36s %s\n", head, c->summary);
	}
}

static void usage(FILE *out)
{
	fputs("usage: lockstep [--socket PATH] [--json] COMMAND [ARGS]\n"
	      "The command-line client of lockstepd, the lockstep VM daemon.\n\n",
	      out);
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
		print_commands(out, groups[i].table);
	print_commands(out, cli_top_commands);
	fputs("\nOptions, anywhere on the line:\n"
	      "  --socket PATH   lockstepd's socket ($LOCKSTEP_SOCKET, else\n"
	      "                  /run/lockstep/lockstepd.sock)\n"
	      "  --json          print lockstepd's answers as JSON, for scripts\n"
	      "  -h, --help      this text; after a command, that command's help\n"
	      "  --version       lockstep's version\n\n"
	      "Exit status: 0 done, 1 refused by lockstepd (its message is printed), 2 bad usage,\n"
	      "3 lockstepd unreachable.  man lockstep(1) says more.\n",
	      out);
}

static void command_help(const struct command *c)
{
	printf("usage: lockstep %s%s%s %s\n%s\n\n%s", c->group ? c->group : "", c->group ? " " : "",
	       c->name, c->synopsis, c->summary, c->help);
	printf("\nGlobal options: --socket PATH, --json (lockstep --help).\n");
}

int usage_error(struct cli *cli, const char *fmt, ...)
{
	const struct command *c = cli->cmd;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!c) {
		fprintf(stderr, "lockstep: %s\n(lockstep --help lists the commands)\n", msg);
		return EXIT_USAGE;
	}
	fprintf(stderr,
		"lockstep %s%s%s: %s\nusage: lockstep %s%s%s %s\n"
		"(lockstep %s%s%s --help says more)\n",
		c->group ? c->group : "", c->group ? " " : "", c->name, msg,
		c->group ? c->group : "", c->group ? " " : "", c->name, c->synopsis,
		c->group ? c->group : "", c->group ? " " : "", c->name);
	return EXIT_USAGE;
}

static const struct cli_opt *find_opt(const struct cli_opt *opts, const char *arg, bool *inline_val)
{
	*inline_val = false;
	for (const struct cli_opt *o = opts; o && o->name; o++) {
		size_t n = strlen(o->name);

		if (arg[1] != '-') {
			if (o->short_name && arg[1] == o->short_name && !arg[2])
				return o;
			continue;
		}
		if (strncmp(arg + 2, o->name, n) == 0 && (!arg[2 + n] || arg[2 + n] == '=')) {
			*inline_val = arg[2 + n] == '=';
			return o;
		}
	}
	return NULL;
}

int parse_args(struct cli *cli, int argc, char **argv, const struct cli_opt *opts, int min, int max,
	       const char *const *names)
{
	int npos = 0;
	bool options = true;

	for (int i = 1; i < argc; i++) {
		char *arg = argv[i];
		const struct cli_opt *o;
		bool inline_val;

		if (options && strcmp(arg, "--") == 0) {
			options = false;
			continue;
		}
		/* "-" alone is an argument (standard input), not an option. */
		if (!options || arg[0] != '-' || !arg[1]) {
			if (npos == max) {
				usage_error(cli, "unexpected argument '%s'", arg);
				return -EXIT_USAGE;
			}
			argv[1 + npos++] = arg;
			continue;
		}
		o = find_opt(opts, arg, &inline_val);
		if (!o) {
			usage_error(cli, "unknown option '%s'", arg);
			return -EXIT_USAGE;
		}
		if (!o->has_arg) {
			if (inline_val) {
				usage_error(cli, "--%s takes no value", o->name);
				return -EXIT_USAGE;
			}
			*o->flag = true;
		} else if (inline_val) {
			*o->value = strchr(arg, '=') + 1;
		} else if (i + 1 < argc) {
			*o->value = argv[++i];
		} else {
			usage_error(cli, "--%s needs a value", o->name);
			return -EXIT_USAGE;
		}
	}
	if (npos < min) {
		const char *missing = names ? names[npos] : NULL;

		usage_error(cli, "missing %s", missing ? missing : "an argument");
		return -EXIT_USAGE;
	}
	return npos;
}

static int connect_daemon(struct cli *cli)
{
	int ret = api_client_connect(cli->socket, &cli->c);

	if (ret) {
		fprintf(stderr, "lockstep: cannot reach lockstepd at %s: %s%s\n", cli->socket,
			strerror(-ret),
			ret == -ENOENT ? " (is it running? systemctl start lockstepd)" :
			ret == -EACCES ? " (root and the group lockstep may connect)" :
					 "");
		return EXIT_UNREACHABLE;
	}
	return 0;
}

struct waiting {
	struct cli *cli;
	const char *what;
	bool shown;
};

static void show_wait(void *arg, unsigned elapsed_ms)
{
	struct waiting *w = arg;

	fprintf(stderr, "\r%s ... %u s ", w->what, elapsed_ms / 1000);
	fflush(stderr);
	w->shown = true;
}

static int call_with(struct cli *cli, const char *method, json_t *params, json_t **result,
		     struct waiting *w)
{
	json_t *error = NULL;
	int ret;

	if (!cli->c && (ret = connect_daemon(cli))) {
		json_decref(params); /* api_client_call would have taken it */
		return ret;
	}
	ret = api_client_call_ticking(cli->c, method, params, result, &error, 1000,
				      w ? show_wait : NULL, w);
	if (w && w->shown)
		fprintf(stderr, "\r%*s\r", (int)strlen(w->what) + 16, "");
	if (ret == -EPROTO) {
		fprintf(stderr, "lockstep: %s\n", api_client_error_message(error));
		json_decref(error);
		return EXIT_REFUSED;
	}
	if (ret) {
		fprintf(stderr, "lockstep: lost lockstepd: %s\n", strerror(-ret));
		return EXIT_UNREACHABLE;
	}
	return 0;
}

int call(struct cli *cli, const char *method, json_t *params, json_t **result)
{
	return call_with(cli, method, params, result, NULL);
}

int call_waiting(struct cli *cli, const char *method, json_t *params, json_t **result,
		 const char *waiting)
{
	struct waiting w = { .cli = cli, .what = waiting };

	return call_with(cli, method, params, result, cli->interactive ? &w : NULL);
}

void print_json(json_t *v)
{
	json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
	putchar('\n');
}

const char *str(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "-";
}

long long num(json_t *obj, const char *key)
{
	return (long long)json_integer_value(json_object_get(obj, key));
}

void format_time(double epoch, char *buf, size_t size)
{
	time_t sec = (time_t)epoch;
	struct tm tm;
	size_t n;

	if (epoch <= 0 || !localtime_r(&sec, &tm) ||
	    !(n = strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm))) {
		snprintf(buf, size, "-");
		return;
	}
	snprintf(buf + n, size - n, ".%03d", (int)((epoch - (double)sec) * 1000.0) % 1000);
}

/*
 * Takes the global options out of argv wherever they are (before "--"), so that
 * "lockstep vm list --json" and "lockstep --json vm list" are the same.  Returns 0, or an
 * exit status when the line is already answered (--version) or wrong.
 */
static int global_options(struct cli *cli, int *argc, char **argv, bool *help)
{
	int out = 1;

	for (int i = 1; i < *argc; i++) {
		char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			while (i < *argc)
				argv[out++] = argv[i++];
			break;
		}
		if (strcmp(a, "--json") == 0) {
			cli->json = true;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			*help = true;
		} else if (strcmp(a, "--version") == 0) {
			printf("lockstep %s\n", LOCKSTEP_VERSION);
			return -1;
		} else if (strcmp(a, "--socket") == 0 || strcmp(a, "-s") == 0) {
			if (i + 1 >= *argc) {
				fprintf(stderr, "lockstep: %s needs a path\n", a);
				return EXIT_USAGE;
			}
			cli->socket = argv[++i];
		} else if (strncmp(a, "--socket=", 9) == 0) {
			cli->socket = a + 9;
		} else {
			argv[out++] = a;
		}
	}
	*argc = out;
	argv[out] = NULL;
	return 0;
}

static const struct command *find_command(const struct command *table, const char *name)
{
	for (const struct command *c = table; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static void list_names(FILE *out, const struct command *table)
{
	for (const struct command *c = table; c->name; c++)
		fprintf(out, "%s%s", c->name, c[1].name ? ", " : "");
}

/* Finds the command argv names; prints what was wrong (or the help asked for) if none. */
static int resolve(struct cli *cli, int argc, char **argv, bool help, int *skip)
{
	const struct command *c;

	if (argc < 2) {
		usage(help ? stdout : stderr);
		return help ? -1 : EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		if (strcmp(argv[1], groups[i].name) != 0)
			continue;
		if (argc < 3) {
			if (help) {
				printf("lockstep %s: %s\n\n", groups[i].name, groups[i].what);
				print_commands(stdout, groups[i].table);
				return -1;
			}
			fprintf(stderr, "lockstep %s: missing a command (", groups[i].name);
			list_names(stderr, groups[i].table);
			fprintf(stderr, ")\n(lockstep %s --help says what each does)\n",
				groups[i].name);
			return EXIT_USAGE;
		}
		c = find_command(groups[i].table, argv[2]);
		if (!c) {
			fprintf(stderr,
				"lockstep %s: unknown command '%s' (%s commands: ", groups[i].name,
				argv[2], groups[i].name);
			list_names(stderr, groups[i].table);
			fprintf(stderr, ")\n");
			return EXIT_USAGE;
		}
		cli->cmd = c;
		*skip = 2;
		return 0;
	}
	c = find_command(cli_top_commands, argv[1]);
	if (!c) {
		fprintf(stderr, "lockstep: unknown command '%s' (commands: ", argv[1]);
		for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
			fprintf(stderr, "%s, ", groups[i].name);
		list_names(stderr, cli_top_commands);
		fprintf(stderr, "; lockstep --help says what each does)\n");
		return EXIT_USAGE;
	}
	cli->cmd = c;
	*skip = 1;
	return 0;
}

int main(int argc, char **argv)
{
	struct cli cli = { .socket = api_client_default_socket() };
	bool help = false;
	int ret, skip = 0;

	signal(SIGPIPE, SIG_IGN);
	cli.interactive = isatty(2);
	ret = global_options(&cli, &argc, argv, &help);
	if (ret)
		return ret < 0 ? 0 : ret;
	ret = resolve(&cli, argc, argv, help, &skip);
	if (ret)
		return ret < 0 ? 0 : ret;
	if (help) {
		command_help(cli.cmd);
		return 0;
	}
	/* The command sees its own name as argv[0], then its arguments. */
	ret = cli.cmd->fn(&cli, argc - skip, argv + skip);
	api_client_close(cli.c);
	return ret;
}
