/*
 * Passthrough devices from the command line:
 *
 *   lockstep device list NAME          a VM's devices as defined and where each is now
 *   lockstep device attach NAME BDF [--slot N] [--managed] [--reset auto|on|off]
 *                                      [--rom-file PATH | --no-rom]
 *   lockstep device detach NAME BDF    (both while the VM is shut off)
 *   lockstep device host               the host's PCI devices: IOMMU group, driver, whether
 *                                      lockstep can pass each through
 *   lockstep vm devices NAME           the DMA remapping report: the IOMMU in front of each
 *                                      device, its domain, the DMA maps, interrupt remapping,
 *                                      the faults logged since the VM started
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients/cli.h"
#include "util/util.h"

static const char *yes_no(json_t *v)
{
	return json_is_true(v) ? "yes" : "no";
}

static void print_defined(json_t *r)
{
	json_t *dev;
	size_t i;

	printf("%s (%s)\n", str(r, "name"), str(r, "state"));
	printf("%3s %-12s %-12s %4s %-7s %-5s %-10s %-10s %5s %s\n", "#", "TYPE", "HOST", "SLOT",
	       "MANAGED", "RESET", "ROM", "DRIVER", "GROUP", "HELD BY");
	json_array_foreach(json_object_get(r, "devices"), i, dev) {
		json_t *on = json_object_get(dev, "on_host"), *rom = json_object_get(dev, "rom");
		char slot[8] = "auto", group[8] = "-";
		const char *romtext = "-";

		if (json_object_get(dev, "slot"))
			snprintf(slot, sizeof(slot), "%lld", num(dev, "slot"));
		if (json_is_object(on))
			snprintf(group, sizeof(group), "%lld", num(on, "iommu_group"));
		if (rom)
			romtext = !json_is_true(json_object_get(rom, "bar")) ? "off" :
				  json_object_get(rom, "file")		     ? str(rom, "file") :
									       "device's";
		printf("%3lld %-12s %-12s %4s %-7s %-5s %-10s %-10s %5s %s\n", num(dev, "index"),
		       str(dev, "type"), json_object_get(dev, "host") ? str(dev, "host") : "-",
		       slot,
		       json_object_get(dev, "host") ? yes_no(json_object_get(dev, "managed")) : "-",
		       json_object_get(dev, "host") ? str(dev, "reset") : "-", romtext,
		       json_is_object(on) ? (str(on, "driver")[0] ? str(on, "driver") : "(none)") :
		       json_object_get(dev, "host") ? "(absent)" :
						      "-",
		       group,
		       json_is_object(on) && json_is_string(json_object_get(on, "vm")) ?
			       str(on, "vm") :
			       "-");
	}
}

static void print_report(json_t *r)
{
	json_t *pt = json_object_get(r, "passthrough"), *dma, *dev, *bar;
	bool final = json_is_true(json_object_get(pt, "final"));
	size_t i, k;

	if (final)
		pt = json_object_get(pt, "report");
	if (!json_is_object(pt)) {
		printf("%s (%s): no DMA remapping report%s\n", str(r, "name"), str(r, "state"),
		       json_object_get(r, "report_error") ? ": " : " (no passthrough device ran)");
		if (json_object_get(r, "report_error"))
			printf("  %s\n", str(r, "report_error"));
		return;
	}
	dma = json_object_get(pt, "dma");
	printf("%s (%s)%s: %s, %lld mapping%s of %lld MiB guest RAM at guest-physical addresses "
	       "(mapped in %.1f ms)\n",
	       str(r, "name"), str(r, "state"), final ? ", the last run" : "", str(pt, "backend"),
	       num(dma, "mappings"), num(dma, "mappings") == 1 ? "" : "s", num(dma, "bytes") >> 20,
	       json_number_value(json_object_get(dma, "map_ms")));
	json_array_foreach(json_object_get(pt, "devices"), i, dev) {
		json_t *io = json_object_get(dev, "iommu"),
		       *irq = json_object_get(dev, "interrupts");
		json_t *f = json_object_get(dev, "faults"),
		       *host = json_object_get(dev, "host_interrupts");

		printf("\n%s -> guest slot %lld (%s)\n", str(dev, "host"), num(dev, "slot"),
		       str(dev, "name"));
		printf("  IOMMU      %s %s, group %lld, default domain %s, in use: %s\n",
		       str(io, "kind"), str(io, "unit"), num(io, "group"),
		       str(io, "default_domain"), str(io, "domain"));
		printf("  interrupts %s, %lld vector%s, %lld straight to KVM (irqfd), remapping %s",
		       str(irq, "wired"), num(irq, "vectors"), num(irq, "vectors") == 1 ? "" : "s",
		       num(irq, "straight_to_kvm"),
		       json_is_true(json_object_get(io, "interrupt_remapping")) ? "on" : "off");
		if (host)
			printf(", host saw %lld (%s)", num(host, "count"), str(host, "chip"));
		printf("\n  faults     %lld%s", num(f, "count"),
		       json_is_true(json_object_get(f, "log_readable")) ?
			       "" :
			       " (kernel log unreadable)");
		if (json_object_get(f, "last")) {
			json_t *l = json_object_get(f, "last");

			printf(", last: DMA %s at %s (%s)", str(l, "access"), str(l, "address"),
			       str(l, "reason"));
		}
		printf("\n  reset      %s\n", str(dev, "reset"));
		json_array_foreach(json_object_get(dev, "bars"), k, bar)
			printf("  BAR %lld      %s, %lld KiB at %#llx: %lld KiB mapped into the "
			       "guest, %lld trapped accesses\n",
			       num(bar, "bar"), str(bar, "kind"), num(bar, "size") >> 10,
			       num(bar, "guest_address"), num(bar, "mapped") >> 10,
			       num(bar, "trapped_accesses"));
		if (json_object_get(dev, "rom"))
			printf("  ROM        %lld KiB from %s\n",
			       num(json_object_get(dev, "rom"), "size") >> 10,
			       str(json_object_get(dev, "rom"), "source"));
	}
}

static void print_host(json_t *r)
{
	json_t *dev;
	size_t i;

	if (!json_is_true(json_object_get(r, "iommu_ready")))
		printf("passthrough is not possible here: %s\n\n", str(r, "why"));
	printf("%-12s %-9s %-6s %5s %-7s %-12s %-12s %s\n", "ADDRESS", "ID", "CLASS", "GROUP",
	       "IOMMU", "DRIVER", "RESET", "PASSTHROUGH");
	json_array_foreach(json_object_get(r, "devices"), i, dev) {
		char group[8] = "-";

		if (num(dev, "iommu_group") >= 0)
			snprintf(group, sizeof(group), "%lld", num(dev, "iommu_group"));
		printf("%-12s %-9s %-6s %5s %-7s %-12s %-12s %s%s%s\n", str(dev, "bdf"),
		       str(dev, "id"), str(dev, "class"), group,
		       str(dev, "iommu")[0] ? str(dev, "iommu") : "-",
		       str(dev, "driver")[0] ? str(dev, "driver") : "(none)",
		       str(dev, "reset_method")[0] ? str(dev, "reset_method") : "-",
		       str(dev, "passthrough"),
		       json_is_string(json_object_get(dev, "vm")) ? " " : "",
		       json_is_string(json_object_get(dev, "vm")) ? str(dev, "vm") : "");
	}
}

static int print_result(struct cli *cli, json_t *r, void (*print)(json_t *))
{
	if (cli->json)
		print_json(r);
	else
		print(r);
	json_decref(r);
	return 0;
}

static int device_list(struct cli *cli, int argc, char **argv)
{
	static const char *const names[] = { "NAME", NULL };
	json_t *r;
	int ret;

	if ((ret = parse_args(cli, argc, argv, NULL, 1, 1, names)) < 0)
		return -ret;
	ret = call(cli, "device.list", json_pack("{s:s}", "name", argv[1]), &r);
	return ret ? ret : print_result(cli, r, print_defined);
}

static int device_host(struct cli *cli, int argc, char **argv)
{
	json_t *r;
	int ret;

	if ((ret = parse_args(cli, argc, argv, NULL, 0, 0, NULL)) < 0)
		return -ret;
	ret = call(cli, "device.host", json_object(), &r);
	return ret ? ret : print_result(cli, r, print_host);
}

static int device_attach(struct cli *cli, int argc, char **argv)
{
	const char *slot = NULL, *reset = NULL, *rom_file = NULL;
	bool managed = false, no_rom = false;
	const struct cli_opt opts[] = {
		{ "slot", 0, true, &slot, NULL },      { "managed", 0, false, NULL, &managed },
		{ "reset", 0, true, &reset, NULL },    { "rom-file", 0, true, &rom_file, NULL },
		{ "no-rom", 0, false, NULL, &no_rom }, { 0 }
	};
	static const char *const names[] = { "NAME", "BDF", NULL };
	uint64_t slot_nr;
	json_t *dev, *r;
	int ret;

	if ((ret = parse_args(cli, argc, argv, opts, 2, 2, names)) < 0)
		return -ret;
	if (slot && util_parse_u64(slot, 1, 31, &slot_nr))
		return usage_error(cli, "--slot takes a slot number 1-31, not '%s'", slot);
	if (rom_file && no_rom)
		return usage_error(cli, "--rom-file and --no-rom exclude each other");
	dev = json_pack("{s:s, s:s}", "type", "vfio-pci", "host", argv[2]);
	if (slot)
		json_object_set_new(dev, "slot", json_integer((json_int_t)slot_nr));
	if (managed)
		json_object_set_new(dev, "managed", json_true());
	if (reset)
		json_object_set_new(dev, "reset", json_string(reset));
	if (rom_file)
		json_object_set_new(dev, "rom", json_pack("{s:s}", "file", rom_file));
	else if (no_rom)
		json_object_set_new(dev, "rom", json_pack("{s:b}", "bar", 0));
	ret = call(cli, "device.attach", json_pack("{s:s, s:o}", "name", argv[1], "device", dev),
		   &r);
	if (ret)
		return ret;
	if (cli->json)
		print_json(r);
	else
		printf("%s: %s attached as devices[%lld] (from its next start)\n", str(r, "name"),
		       str(json_object_get(r, "device"), "host"), num(r, "index"));
	json_decref(r);
	return 0;
}

static int device_detach(struct cli *cli, int argc, char **argv)
{
	static const char *const names[] = { "NAME", "BDF", NULL };
	json_t *r;
	int ret;

	if ((ret = parse_args(cli, argc, argv, NULL, 2, 2, names)) < 0)
		return -ret;
	ret = call(cli, "device.detach", json_pack("{s:s, s:s}", "name", argv[1], "host", argv[2]),
		   &r);
	if (ret)
		return ret;
	if (cli->json)
		print_json(r);
	else
		printf("%s: %s detached (from its next start)\n", str(r, "name"), str(r, "host"));
	json_decref(r);
	return 0;
}

int vm_devices_command(struct cli *cli, int argc, char **argv)
{
	static const char *const names[] = { "NAME", NULL };
	json_t *r;
	int ret;

	if ((ret = parse_args(cli, argc, argv, NULL, 1, 1, names)) < 0)
		return -ret;
	ret = call(cli, "device.list", json_pack("{s:s}", "name", argv[1]), &r);
	if (ret)
		return ret;
	if (cli->json)
		print_json(json_object_get(r, "passthrough") ? json_object_get(r, "passthrough") :
							       json_null());
	else
		print_report(r);
	json_decref(r);
	return 0;
}

const struct command cli_device_commands[] = {
	{ "device", "list", "NAME", "a VM's devices and where each is on the host",
	  "Prints the VM's devices as defined (type, host address, guest slot, managed, reset,\n"
	  "ROM) and where each is on the host now: its driver, IOMMU group and the VM that\n"
	  "holds it.\n",
	  device_list },
	{ "device", "attach",
	  "NAME BDF [--slot N] [--managed] [--reset MODE] "
	  "[--rom-file F | --no-rom]",
	  "add a PCI device to pass through (VM shut off)",
	  "Adds host PCI device BDF (0000:03:00.0) to the VM's stored definition as a vfio-pci\n"
	  "device; it is passed through from the VM's next start (docs/passthrough.md).\n\n"
	  "  --slot N          the guest PCI slot (1-31; default: the next free one from 3)\n"
	  "  --managed         lockstepd binds it to vfio-pci at start, and back after\n"
	  "  --reset MODE      reset it at start and stop: auto (if it has a reset method),\n"
	  "                    on (refuse a device without one) or off (never)\n"
	  "  --rom-file PATH   the option ROM to show the guest instead of the device's\n"
	  "  --no-rom          show the guest no option ROM\n",
	  device_attach },
	{ "device", "detach", "NAME BDF", "remove it (VM shut off)",
	  "Removes host PCI device BDF from the VM's stored definition.\n", device_detach },
	{ "device", "host", "", "the host's PCI devices and whether each can be passed through",
	  "Prints the host's PCI devices: address, vendor:device id, class, IOMMU group, IOMMU,\n"
	  "driver, reset method, whether lockstep can pass it through and which VM holds it.\n",
	  device_host },
	{ 0 },
};
