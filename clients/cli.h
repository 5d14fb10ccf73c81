/*
 * What the lockstep CLI's files share: the command table, the connection, calling a method
 * with errors printed for people, an option parser for each command's own options, and small
 * accessors for printing results.
 */
#ifndef LOCKSTEP_CLIENTS_CLI_H
#define LOCKSTEP_CLIENTS_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "api/client.h"

enum {
	EXIT_REFUSED = 1,
	EXIT_USAGE = 2,
	EXIT_UNREACHABLE = 3
};

struct cli;
struct command;

typedef int (*command_fn)(struct cli *cli, int argc, char **argv);

/* One command: "vm start", "events".  `synopsis` follows the command's name in usage lines;
 * `help` says what it does, what it prints and what its options mean. */
struct command {
	const char *group; /* "vm", "sched", ... or NULL for a command of its own */
	const char *name;
	const char *synopsis;
	const char *summary;
	const char *help;
	command_fn fn;
};

struct cli {
	const char *socket;
	bool json;
	bool interactive; /* stderr is a terminal: progress lines for long waits */
	struct api_client *c;
	const struct command *cmd; /* the one running, for its usage errors */
};

/* The command tables, each ended by an entry without a name: "vm ..." (cli_vm.c), "sched
 * ..." (cli_sched.c), "daemon ..." and the commands of their own such as "events"
 * (cli_events.c), "host ..." (cli_host.c), "device ..." (cli_device.c). */
extern const struct command cli_vm_commands[];
extern const struct command cli_sched_commands[];
extern const struct command cli_daemon_commands[];
extern const struct command cli_host_commands[];
extern const struct command cli_device_commands[];
extern const struct command cli_top_commands[];

/*
 * A usage error of the running command: "lockstep vm start: missing NAME", its synopsis and
 * where its help is, on stderr; returns EXIT_USAGE.
 */
int usage_error(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* An option of a command: --long (and -s), a flag or one taking a value. */
struct cli_opt {
	const char *name; /* "tail" for --tail */
	char short_name;  /* 'f' for -f, 0 for none */
	bool has_arg;
	const char **value; /* has_arg: where the value goes */
	bool *flag;	    /* !has_arg: set true */
};

/*
 * Parses a command's arguments (argv[0] is the command's name): options from `opts` anywhere,
 * the rest positional, at least `min` and at most `max` of them (named by `names`, a
 * NULL-terminated list, in errors).  Returns the number of positional arguments, moved to
 * the front of argv + 1, or -EXIT_USAGE with the error printed.
 */
int parse_args(struct cli *cli, int argc, char **argv, const struct cli_opt *opts, int min, int max,
	       const char *const *names);

/* Calls a method (connecting first if needed); prints the error and returns an exit status
 * on failure, 0 with *result on success.  Steals params. */
int call(struct cli *cli, const char *method, json_t *params, json_t **result);
/* The same, showing `waiting` with the seconds elapsed on stderr while the reply has not come,
 * when stderr is a terminal (a shutdown may take its 30 s). */
int call_waiting(struct cli *cli, const char *method, json_t *params, json_t **result,
		 const char *waiting);
void print_json(json_t *v);
/* obj[key] as a string ("-" if absent) or an integer (0 if absent). */
const char *str(json_t *obj, const char *key);
long long num(json_t *obj, const char *key);
/* Seconds since the epoch as local time, "2026-12-05 15:00:12.100". */
void format_time(double epoch, char *buf, size_t size);
/* lockstep vm console NAME [--force] on a terminal, interactive (clients/cli_console.c) */
int console_interactive(struct cli *cli, const char *name, bool force);
/* lockstep vm irqs NAME ... (clients/cli_irq.c); argv[0] is the command's name */
int irq_command(struct cli *cli, int argc, char **argv);
/* lockstep vm devices NAME: the DMA remapping report (clients/cli_device.c) */
int vm_devices_command(struct cli *cli, int argc, char **argv);

#endif /* LOCKSTEP_CLIENTS_CLI_H */
