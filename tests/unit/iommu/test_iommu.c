/*
 * iommu/ without an IOMMU: VFIO's region info decoded (sparse mmap areas, MSI-X mappable, a
 * chain that leaves the buffer or loops), the back end chosen on trees that have iommufd or
 * not, and the host's PCI devices, groups, viability, interrupt counts and the binding to
 * vfio-pci on a sysfs tree made here (where no driver really binds: the binding is refused and
 * undone).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/vfio.h>

#include "iommu/iommu.h"
#include "iommu/iommu_internal.h"
#include "util/util.h"

static char root[256];

static void put(const char *rel, const char *text)
{
	char path[512], cmd[700];
	FILE *f;

	snprintf(path, sizeof(path), "%s%s", root, rel);
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
	assert_int_equal(system(cmd), 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void link_to(const char *rel, const char *target)
{
	char path[512], cmd[1800];

	snprintf(path, sizeof(path), "%s%s", root, rel);
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\" && ln -sfn '%s' '%s'", path,
		 target, path);
	assert_int_equal(system(cmd), 0);
}

static void device(const char *bdf, const char *id, const char *driver, int group)
{
	char rel[160], target[160];

	snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/vendor", bdf);
	snprintf(target, sizeof(target), "0x%.4s\n", id);
	put(rel, target);
	snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/device", bdf);
	snprintf(target, sizeof(target), "0x%.4s\n", id + 5);
	put(rel, target);
	snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/class", bdf);
	put(rel, "0x00ff00\n");
	snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/driver_override", bdf);
	put(rel, "(null)\n");
	if (driver[0]) {
		snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/driver", bdf);
		snprintf(target, sizeof(target), "../../../bus/pci/drivers/%s", driver);
		link_to(rel, target);
	}
	if (group >= 0) {
		snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/iommu_group", bdf);
		snprintf(target, sizeof(target), "../../../kernel/iommu_groups/%d", group);
		link_to(rel, target);
		snprintf(rel, sizeof(rel), "/sys/kernel/iommu_groups/%d/devices/%s", group, bdf);
		link_to(rel, "../../../../bus/pci/devices/x");
		snprintf(rel, sizeof(rel), "/sys/kernel/iommu_groups/%d/type", group);
		put(rel, "DMA\n");
		snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/iommu", bdf);
		link_to(rel, "../../virtual/iommu/dmar0");
	}
}

static int setup(void **state)
{
	strcpy(root, "/tmp/lockstep-iommu-test.XXXXXX");
	assert_non_null(mkdtemp(root));
	device("0000:00:03.0", "1234:11e8", "vfio-pci", 3);
	device("0000:00:06.0", "1234:11e8", "", 4);
	device("0000:00:06.1", "8086:10d3", "e1000e", 4);
	device("0000:00:07.0", "1234:11e8", "pci-stub", 5);
	device("0000:00:1f.0", "8086:2918", "", -1);
	put("/sys/bus/pci/devices/0000:00:03.0/reset_method", "flr bus\n");
	put("/sys/bus/pci/drivers/vfio-pci/bind", "");
	put("/sys/bus/pci/drivers_probe", "");
	put("/proc/interrupts", "            CPU0       CPU1\n"
				"  24:        10          0   PCI-MSI 65536-edge      virtio0\n"
				"  29:        30         12  IR-PCI-MSI 49152-edge      "
				"vfio-msi[0](0000:00:03.0)\n"
				"  30:         1          0  IR-PCI-MSI 49153-edge      "
				"vfio-msi[1](0000:00:03.0)\n");
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd);
}

static void bdfs(void **state)
{
	assert_true(util_pci_address_valid("0000:00:03.0"));
	assert_true(util_pci_address_valid("ffff:ff:1f.7"));
	assert_false(util_pci_address_valid("0000:00:20.0"));
	assert_false(util_pci_address_valid("0000:00:03.8"));
	assert_false(util_pci_address_valid("0000:00:0A.0")); /* the kernel's spelling only */
	assert_false(util_pci_address_valid("0000:00:03.0/.."));
	assert_false(util_pci_address_valid("00:03.0"));
	assert_false(util_pci_address_valid(NULL));
}

/* A region info buffer: the struct, then caps at the offsets given. */
struct info_buf {
	union {
		struct vfio_region_info ri;
		uint8_t bytes[512];
	};
};

static void regions(void **state)
{
	struct info_buf b = {
		.ri = { .argsz = 512,
			.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
				 VFIO_REGION_INFO_FLAG_MMAP | VFIO_REGION_INFO_FLAG_CAPS,
			.index = 0,
			.cap_offset = 64,
			.size = 0x100000,
			.offset = 0x10000000000ull }
	};
	struct vfio_region_info_cap_sparse_mmap *sp = (void *)(b.bytes + 64);
	struct vfio_info_cap_header *msix = (void *)(b.bytes + 200);
	struct iommu_region r;

	/* a sparse list of three areas, one outside the region; then MSI-X mappable */
	sp->header = (struct vfio_info_cap_header){ .id = VFIO_REGION_INFO_CAP_SPARSE_MMAP,
						    .version = 1,
						    .next = 200 };
	sp->nr_areas = 3;
	sp->areas[0] = (struct vfio_region_sparse_mmap_area){ .offset = 0, .size = 0x1000 };
	sp->areas[1] = (struct vfio_region_sparse_mmap_area){ .offset = 0x3000, .size = 0xfd000 };
	sp->areas[2] = (struct vfio_region_sparse_mmap_area){ .offset = 0xff000, .size = 0x2000 };
	*msix = (struct vfio_info_cap_header){ .id = VFIO_REGION_INFO_CAP_MSIX_MAPPABLE };
	assert_int_equal(iommu_region_parse(&b, sizeof(b), &r), 0);
	assert_int_equal(r.size, 0x100000);
	assert_int_equal(r.offset, 0x10000000000ull);
	assert_int_equal(r.flags, IOMMU_REGION_READ | IOMMU_REGION_WRITE | IOMMU_REGION_MMAP);
	assert_int_equal(r.nr_areas, 2);
	assert_int_equal(r.area[1].offset, 0x3000);
	assert_int_equal(r.area[1].size, 0xfd000);
	assert_true(r.msix_mappable);
	/* no capabilities: the whole region may be mapped */
	b.ri.flags &= ~VFIO_REGION_INFO_FLAG_CAPS;
	assert_int_equal(iommu_region_parse(&b, sizeof(b), &r), 0);
	assert_int_equal(r.nr_areas, 1);
	assert_int_equal(r.area[0].size, 0x100000);
	assert_false(r.msix_mappable);
	/* not mappable: no areas even with a sparse list */
	b.ri.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_CAPS;
	assert_int_equal(iommu_region_parse(&b, sizeof(b), &r), 0);
	assert_int_equal(r.nr_areas, 0);
	/* chains that leave the buffer, point backwards into the struct, or loop */
	b.ri.flags |= VFIO_REGION_INFO_FLAG_MMAP;
	msix->next = 200;
	assert_int_equal(iommu_region_parse(&b, sizeof(b), &r), -EPROTO);
	msix->next = 4;
	assert_int_equal(iommu_region_parse(&b, sizeof(b), &r), -EPROTO);
	msix->next = 0;
	sp->nr_areas = 1000;
	assert_int_equal(iommu_region_parse(&b, sizeof(b), &r), -EPROTO);
	b.ri.cap_offset = 600;
	assert_int_equal(iommu_region_parse(&b, sizeof(b), &r), -EPROTO);
	assert_int_equal(iommu_region_parse(&b, 8, &r), -EPROTO);
}

static void backends(void **state)
{
	const char *bdf[] = { "0000:00:03.0" };
	enum iommu_backend be;
	char why[256];

	assert_int_equal(
		iommu_backend_choose(root, IOMMU_PREFER_AUTO, bdf, 1, &be, why, sizeof(why)), 0);
	assert_int_equal(be, IOMMU_TYPE1);
	assert_non_null(strstr(why, "no /dev/iommu"));
	assert_int_equal(
		iommu_backend_choose(root, IOMMU_PREFER_IOMMUFD, bdf, 1, &be, why, sizeof(why)),
		-ENODEV);
	put("/dev/iommu", "");
	assert_int_equal(
		iommu_backend_choose(root, IOMMU_PREFER_AUTO, bdf, 1, &be, why, sizeof(why)), 0);
	assert_int_equal(be, IOMMU_TYPE1);
	assert_non_null(strstr(why, "no VFIO device cdev"));
	put("/sys/bus/pci/devices/0000:00:03.0/vfio-dev/vfio0/dev", "511:0\n");
	assert_int_equal(
		iommu_backend_choose(root, IOMMU_PREFER_AUTO, bdf, 1, &be, why, sizeof(why)), 0);
	assert_int_equal(be, IOMMU_IOMMUFD);
	assert_int_equal(
		iommu_backend_choose(root, IOMMU_PREFER_TYPE1, bdf, 1, &be, why, sizeof(why)), 0);
	assert_int_equal(be, IOMMU_TYPE1);
}

static void pci_devices(void **state)
{
	char members[8][IOMMU_BDF_MAX], why[512];
	const char *ours[] = { "0000:00:06.1" };
	struct iommu_pci p, *list;
	unsigned n;

	assert_int_equal(iommu_pci_read(root, "0000:00:03.0", &p), 0);
	assert_int_equal(p.vendor, 0x1234);
	assert_int_equal(p.device, 0x11e8);
	assert_string_equal(p.driver, "vfio-pci");
	assert_int_equal(p.group, 3);
	assert_string_equal(p.unit, "dmar0");
	assert_string_equal(p.unit_kind, "VT-d");
	assert_string_equal(p.domain, "DMA");
	assert_string_equal(p.reset_method, "flr bus");
	assert_string_equal(p.override, "");
	assert_int_equal(iommu_pci_read(root, "0000:00:1f.0", &p), 0);
	assert_int_equal(p.group, -1);
	assert_int_equal(iommu_pci_read(root, "0000:00:09.0", &p), -ENOENT);
	assert_int_equal(iommu_pci_read(root, "../../etc", &p), -EINVAL);
	assert_int_equal(iommu_pci_list(root, &list, &n), 0);
	assert_int_equal(n, 5);
	assert_string_equal(list[0].bdf, "0000:00:03.0");
	assert_string_equal(list[4].bdf, "0000:00:1f.0");
	free(list);
	assert_int_equal(iommu_group_devices(root, 4, members, 8), 2);
	assert_string_equal(members[0], "0000:00:06.0");
	assert_string_equal(members[1], "0000:00:06.1");
	/* viability: a host driver in the group is in the way, unless it is ours too */
	assert_int_equal(iommu_group_check(root, "0000:00:03.0", NULL, 0, why, sizeof(why)), 0);
	assert_int_equal(iommu_group_check(root, "0000:00:07.0", NULL, 0, why, sizeof(why)), 0);
	assert_int_equal(iommu_group_check(root, "0000:00:06.0", NULL, 0, why, sizeof(why)),
			 -EBUSY);
	assert_non_null(strstr(why, "IOMMU group 4 of 0000:00:06.0 is not viable: 0000:00:06.1 "
				    "[8086:10d3] in the same group is in use by the host driver "
				    "e1000e"));
	assert_int_equal(iommu_group_check(root, "0000:00:06.0", ours, 1, why, sizeof(why)), 0);
	assert_int_equal(iommu_group_check(root, "0000:00:1f.0", NULL, 0, why, sizeof(why)),
			 -ENOENT);
	assert_non_null(strstr(why, "in no IOMMU group"));
	assert_true(iommu_driver_viable("pci-stub") && iommu_driver_viable("") &&
		    iommu_driver_viable("pcieport") && !iommu_driver_viable("e1000e"));
}

static void host_irqs(void **state)
{
	struct iommu_host_irqs irqs;

	assert_int_equal(iommu_host_irqs(root, "0000:00:03.0", &irqs), 0);
	assert_int_equal(irqs.lines, 2);
	assert_int_equal(irqs.count, 43);
	assert_string_equal(irqs.chip, "IR-PCI-MSI");
	assert_true(irqs.remapped);
	assert_int_equal(iommu_host_irqs(root, "0000:00:06.0", &irqs), 0);
	assert_int_equal(irqs.lines, 0);
}

/* Here no driver binds for real: vfio-pci "does not take" the device, and all is undone. */
static void binding(void **state)
{
	char prev[32], why[256], path[512], *text = NULL;
	size_t len;

	assert_int_equal(
		iommu_bind_vfio(root, "0000:00:06.0", prev, sizeof(prev), why, sizeof(why)), -EIO);
	assert_non_null(strstr(why, "vfio-pci did not take 0000:00:06.0"));
	snprintf(path, sizeof(path), "%s/sys/bus/pci/devices/0000:00:06.0/driver_override", root);
	assert_int_equal(util_read_file(path, 64, &text, &len), 0);
	assert_string_equal(text, "\n"); /* cleared again */
	free(text);
	/* already on vfio-pci: nothing to do either way */
	put("/dev/vfio/3", "");
	assert_int_equal(
		iommu_bind_vfio(root, "0000:00:03.0", prev, sizeof(prev), why, sizeof(why)), 0);
	assert_string_equal(prev, "vfio-pci");
	assert_int_equal(iommu_unbind_vfio(root, "0000:00:03.0", prev, why, sizeof(why)), 0);
	assert_int_equal(
		iommu_bind_vfio(root, "0000:00:99.0", prev, sizeof(prev), why, sizeof(why)),
		-EINVAL);
	assert_int_equal(
		iommu_bind_vfio(root, "0000:00:09.0", prev, sizeof(prev), why, sizeof(why)),
		-ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bdfs),	     cmocka_unit_test(regions),
		cmocka_unit_test(backends),  cmocka_unit_test(pci_devices),
		cmocka_unit_test(host_irqs), cmocka_unit_test(binding),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
