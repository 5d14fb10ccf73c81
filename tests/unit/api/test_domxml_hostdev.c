/*
 * Domain XML's <hostdev> both ways: managed, the vfio driver, the host and guest addresses,
 * the ROM, and the reset lockstep keeps in <metadata>; a definition printed and read back is
 * the same; what lockstep cannot do is refused by name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/virt.h"
#include "vmdef/vmdef.h"

#define HEAD                                                               \
	"<domain type='kvm'><name>pt</name><memory unit='MiB'>64</memory>" \
	"<os><type>hvm</type><kernel>/k.elf</kernel></os>"

static const char doc[] =
	HEAD "<metadata><lockstep:vm xmlns:lockstep='urn:lockstep:domain:1'>"
	     "<lockstep:hostdev host='0000:00:04.0' reset='off'/></lockstep:vm></metadata>"
	     "<devices>"
	     "<hostdev mode='subsystem' type='pci' managed='yes'><driver name='vfio'/>"
	     "<source><address domain='0x0000' bus='0x00' slot='0x03' function='0x0'/></source>"
	     "<address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/>"
	     "<alias name='hostdev0'/></hostdev>"
	     "<hostdev mode='subsystem' type='pci'>"
	     "<source><address domain='0x0000' bus='0x00' slot='0x04' function='0x0'/></source>"
	     "<rom bar='off'/></hostdev>"
	     "<hostdev mode='subsystem' type='pci' managed='no'>"
	     "<source><address domain='0x0001' bus='0x3b' slot='0x1f' function='0x7'/></source>"
	     "<rom file='/roms/x.rom'/></hostdev>"
	     "</devices></domain>";

static void parse_ok(const char *xml, struct vmdef *cfg)
{
	char err[512] = "";

	vmdef_init(cfg);
	if (domxml_parse(xml, strlen(xml), NULL, cfg, err, sizeof(err)))
		fail_msg("refused: %s\n%s", err, xml);
}

static void expect_refused(const char *xml, const char *want)
{
	struct vmdef cfg;
	char err[512] = "";

	vmdef_init(&cfg);
	if (!domxml_parse(xml, strlen(xml), NULL, &cfg, err, sizeof(err)))
		fail_msg("accepted: %s", xml);
	if (!strstr(err, want))
		fail_msg("%s\n  error: %s\n  expected: %s", xml, err, want);
	vmdef_fini(&cfg);
}

static void hostdev_in(void **state)
{
	struct vmdef cfg;

	parse_ok(doc, &cfg);
	assert_int_equal(cfg.nr_devices, 3);
	assert_string_equal(cfg.devices[0].type, "vfio-pci");
	assert_string_equal(cfg.devices[0].host, "0000:00:03.0");
	assert_true(cfg.devices[0].managed);
	assert_int_equal(cfg.devices[0].slot, 5);
	assert_true(cfg.devices[0].rom_bar);
	assert_int_equal(cfg.devices[0].reset, VMDEF_RESET_AUTO);
	assert_string_equal(cfg.devices[1].host, "0000:00:04.0");
	assert_false(cfg.devices[1].managed); /* libvirt's default */
	assert_int_equal(cfg.devices[1].slot, -1);
	assert_false(cfg.devices[1].rom_bar);
	assert_int_equal(cfg.devices[1].reset, VMDEF_RESET_OFF);
	assert_string_equal(cfg.devices[2].host, "0001:3b:1f.7");
	assert_string_equal(cfg.devices[2].rom_file, "/roms/x.rom");
	assert_int_equal(vmdef_validate(&cfg, NULL, 0), 0);
	vmdef_fini(&cfg);
}

static void hostdev_round_trip(void **state)
{
	struct vmdef a, b;
	char *xml, *again;
	json_t *ja, *jb;

	parse_ok(doc, &a);
	xml = domxml_format(&a, NULL);
	assert_non_null(xml);
	assert_non_null(strstr(xml, "managed=\"yes\""));
	assert_non_null(strstr(xml, "managed=\"no\""));
	assert_non_null(strstr(xml, "<driver name=\"vfio\"/>"));
	assert_non_null(strstr(xml, "<rom bar=\"off\"/>"));
	assert_non_null(strstr(xml, "<rom file=\"/roms/x.rom\"/>"));
	assert_non_null(strstr(xml, "<lockstep:hostdev host=\"0000:00:04.0\" reset=\"off\"/>"));
	assert_non_null(strstr(xml, "slot=\"0x05\""));
	parse_ok(xml, &b);
	again = domxml_format(&b, NULL);
	assert_string_equal(again, xml);
	ja = vmdef_to_json(&a);
	jb = vmdef_to_json(&b);
	assert_true(json_equal(ja, jb));
	json_decref(ja);
	json_decref(jb);
	free(xml);
	free(again);
	vmdef_fini(&a);
	vmdef_fini(&b);
}

static void hostdev_refused(void **state)
{
	expect_refused(HEAD "<devices><hostdev mode='subsystem' type='usb'><source><address "
			    "bus='1' device='2'/></source></hostdev></devices></domain>",
		       "lockstep passes through PCI devices only");
	expect_refused(HEAD "<devices><hostdev mode='subsystem' type='pci'><driver name='kvm'/>"
			    "<source><address slot='3'/></source></hostdev></devices></domain>",
		       "<hostdev><driver> name='kvm' is not supported: lockstep has only 'vfio'");
	expect_refused(HEAD "<devices><hostdev mode='subsystem' type='pci' managed='maybe'>"
			    "<source><address slot='3'/></source></hostdev></devices></domain>",
		       "<hostdev managed='maybe'>: yes or no");
	expect_refused(HEAD "<devices><hostdev mode='subsystem' type='pci'><source><address "
			    "slot='3'/></source><address type='pci' bus='1' slot='2'/></hostdev>"
			    "</devices></domain>",
		       "lockstep has bus 0, slots 1-31, function 0 only");
	expect_refused(HEAD "<devices><hostdev mode='subsystem' type='pci'><source><address "
			    "slot='3'/></source><boot order='1'/></hostdev></devices></domain>",
		       "<hostdev><boot> is not supported by lockstep");
	expect_refused(HEAD "<devices><hostdev mode='subsystem' type='pci'><source><address "
			    "slot='3'/></source><rom bar='maybe'/></hostdev></devices></domain>",
		       "<hostdev><rom bar='maybe'>: on or off");
	expect_refused(HEAD "<devices><hostdev mode='subsystem' type='pci'><source/></hostdev>"
			    "</devices></domain>",
		       "<hostdev> needs <source><address");
	expect_refused(HEAD "<metadata><lockstep:vm xmlns:lockstep='urn:lockstep:domain:1'>"
			    "<lockstep:hostdev host='0000:00:09.0' reset='on'/></lockstep:vm>"
			    "</metadata></domain>",
		       "<lockstep:hostdev host='0000:00:09.0'> names no <hostdev>");
	expect_refused(HEAD "<metadata><lockstep:vm xmlns:lockstep='urn:lockstep:domain:1'>"
			    "<lockstep:hostdev host='0000:00:03.0' reset='flr'/></lockstep:vm>"
			    "</metadata></domain>",
		       "<lockstep:hostdev reset='flr'>: auto, on or off");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hostdev_in),
		cmocka_unit_test(hostdev_round_trip),
		cmocka_unit_test(hostdev_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
