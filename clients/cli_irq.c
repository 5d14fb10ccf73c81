/*
 * lockstep vm irqs NAME [--steering on|off [--config]]: a VM's interrupt routes with their
 * counters and destinations, its PCI devices, whether steering is on and whether the host
 * could post interrupts; or steering switched (live, and in the definition with --config).
 */
#include <stdio.h>
#include <string.h>

#include "clients/cli.h"

static void print_route(json_t *r)
{
	json_t *g = json_object_get(r, "to_gated");
	json_t *dest = json_object_get(r, "dest_vcpu");
	char where[64] = "-", to[16] = "-", ioapic[48] = "";

	if (strcmp(str(r, "kind"), "msi") == 0) {
		snprintf(where, sizeof(where), "%s/%s%s",
			 str(json_object_get(r, "guest"), "address"),
			 str(json_object_get(r, "guest"), "data"),
			 json_is_true(json_object_get(r, "steered"))	  ? " steered" :
			 json_is_true(json_object_get(r, "redirectable")) ? " redirectable" :
									    "");
	} else if (json_object_get(r, "ioapic")) {
		json_t *io = json_object_get(r, "ioapic");

		snprintf(ioapic, sizeof(ioapic), "vec %lld %s%s", num(io, "vector"),
			 str(io, "trigger"),
			 json_is_true(json_object_get(io, "masked")) ? " masked" : "");
		snprintf(where, sizeof(where), "%s", ioapic);
	}
	if (json_is_integer(dest))
		snprintf(to, sizeof(to), "%lld", (long long)json_integer_value(dest));
	printf("%4lld %-4s %-14s %-34s %4s %9lld %7lld %7lld %8lld %6lld %6lld\n", num(r, "gsi"),
	       str(r, "kind"), str(r, "owner"), where, to, num(r, "injected"), num(r, "held"),
	       num(r, "coalesced"), num(g, "total"), num(g, "switching"), num(g, "miss"));
}

static void print_report(json_t *r)
{
	json_t *irq = json_object_get(r, "irq"), *v, *post;
	size_t i;

	if (!json_is_object(irq)) {
		printf("%s: no interrupt report (%s)\n", str(r, "name"), str(r, "state"));
		return;
	}
	post = json_object_get(irq, "posting");
	printf("%s: steering %s, %lld of %lld routes, %lld commits (%lld refused), %lld steering "
	       "moves%s\n",
	       str(r, "name"), json_is_true(json_object_get(irq, "steering")) ? "on" : "off",
	       num(irq, "routes_used"), num(irq, "routes_max"), num(irq, "commits"),
	       num(irq, "commit_failures"), num(json_object_get(irq, "steer"), "moves"),
	       json_is_true(json_object_get(r, "final")) ? " (the last run)" : "");
	printf("posted interrupts: %s%s%s\n",
	       json_is_true(json_object_get(post, "apicv")) ? "APICv/AVIC on" : "no APICv/AVIC",
	       json_object_get(post, "why_not") ? ": " : "",
	       json_object_get(post, "why_not") ? str(post, "why_not") : "");
	printf("%4s %-4s %-14s %-34s %4s %9s %7s %7s %8s %6s %6s\n", "GSI", "KIND", "OWNER",
	       "MESSAGE / IOAPIC ENTRY", "DEST", "INJECTED", "HELD", "MERGED", "TO-GATED", "SWITCH",
	       "MISS");
	json_array_foreach(json_object_get(irq, "routes"), i, v)
		print_route(v);
	printf("\n%4s %-14s %-6s %-6s %4s %6s %7s\n", "SLOT", "DEVICE", "VENDOR", "DEVICE", "IRQ",
	       "MODE", "DROPPED");
	json_array_foreach(json_object_get(irq, "pci"), i, v) {
		char line[8] = "-";

		if (json_object_get(v, "intx_irq"))
			snprintf(line, sizeof(line), "%lld", num(v, "intx_irq"));
		printf("%4lld %-14s %-6s %-6s %4s %6s %7lld\n", num(v, "slot"), str(v, "name"),
		       str(v, "vendor"), str(v, "device"), line, str(v, "irq_mode"),
		       num(v, "dropped"));
	}
}

int irq_command(struct cli *cli, int argc, char **argv)
{
	const char *steering = NULL;
	bool config = false;
	const struct cli_opt opts[] = { { "steering", 0, true, &steering, NULL },
					{ "config", 0, false, NULL, &config },
					{ 0 } };
	static const char *const names[] = { "NAME", NULL };
	const char *method = "irq.get";
	json_t *params, *r;
	int ret;

	if ((ret = parse_args(cli, argc, argv, opts, 1, 1, names)) < 0)
		return -ret;
	if (steering && strcmp(steering, "on") != 0 && strcmp(steering, "off") != 0)
		return usage_error(cli, "--steering takes on or off, not '%s'", steering);
	if (config && !steering)
		return usage_error(cli, "--config goes with --steering");
	params = json_pack("{s:s}", "name", argv[1]);
	if (steering) {
		method = "irq.set";
		json_object_set_new(params, "steering", json_boolean(strcmp(steering, "on") == 0));
		if (config)
			json_object_set_new(params, "config", json_true());
	}
	ret = call(cli, method, params, &r);
	if (ret)
		return ret;
	if (cli->json)
		print_json(r);
	else if (strcmp(method, "irq.set") == 0)
		printf("%s: steering %s%s%s\n", str(r, "name"),
		       json_is_true(json_object_get(r, "steering")) ? "on" : "off",
		       json_is_true(json_object_get(r, "live")) ? " (now)" : "",
		       json_is_true(json_object_get(r, "config")) ? " (stored)" : "");
	else
		print_report(r);
	json_decref(r);
	return 0;
}
