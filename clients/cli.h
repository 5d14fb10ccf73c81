/*
 * What the lockstep CLI's files share: the connection state, calling a method with errors
 * printed for people, and small accessors for printing results.
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

struct cli {
	const char *socket;
	bool json;
	struct api_client *c;
};

void usage(FILE *out);
/* Calls a method (connecting first if needed); prints the error and returns an exit status
 * on failure, 0 with *result on success.  Steals params. */
int call(struct cli *cli, const char *method, json_t *params, json_t **result);
void print_json(json_t *v);
/* obj[key] as a string ("-" if absent) or an integer (0 if absent). */
const char *str(json_t *obj, const char *key);
long long num(json_t *obj, const char *key);

/* lockstep sched ... (clients/cli_sched.c) */
int sched_command(struct cli *cli, int argc, char **argv);
/* lockstep host check (clients/cli_host.c) */
int host_command(struct cli *cli, int argc, char **argv);
/* lockstep vm irqs NAME ... (clients/cli_irq.c); argv[0] is NAME */
int irq_command(struct cli *cli, int argc, char **argv);
/* lockstep device list|attach|detach|host ... (clients/cli_device.c); argv[0] is the verb */
int device_command(struct cli *cli, int argc, char **argv);
/* lockstep vm devices NAME: the DMA remapping report */
int vm_devices_command(struct cli *cli, const char *name);

#endif /* LOCKSTEP_CLIENTS_CLI_H */
