/*
 * The host's PCI devices as sysfs shows them (under a root directory, so the unit tests read
 * recorded trees): IDs, class, driver, IOMMU group and the remapping unit in front of it, the
 * group's domain type, reset methods, the VFIO cdev; group members and whether a group can go
 * to VFIO; and the binding of a managed device to vfio-pci and back.
 *
 * Binding writes sysfs as the kernel documents it (Documentation/ABI, driver_override):
 * driver_override names vfio-pci, the current driver lets go of the device (unbind), and
 * drivers_probe hands it to the driver the override names.  Going back clears the override and
 * binds the driver the device had.  Called by lockstepd's loop thread (root) and by tools.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "iommu/iommu_internal.h"
#include "util/util.h"

#define VFIO_NODE_WAIT_MS 5000

/* The first line of a sysfs file, without its newline; "" when unreadable. */
static void read_line(const char *root, char *buf, size_t size, const char *fmt, const char *bdf)
{
	char path[PATH_MAX], rel[256], *text = NULL;
	size_t len;

	buf[0] = '\0';
	snprintf(rel, sizeof(rel), fmt, bdf);
	iommu_path(root, path, sizeof(path), "%s", rel);
	if (util_read_text(path, 4096, &text, &len))
		return;
	text[strcspn(text, "\n")] = '\0';
	util_strlcpy(buf, text, size);
	free(text);
}

/* The last component of a symlink's target; "" when it is not one. */
static void link_name(const char *root, char *buf, size_t size, const char *fmt, const char *bdf)
{
	char path[PATH_MAX], rel[256], target[PATH_MAX];
	const char *slash;
	ssize_t n;

	buf[0] = '\0';
	snprintf(rel, sizeof(rel), fmt, bdf);
	iommu_path(root, path, sizeof(path), "%s", rel);
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return;
	target[n] = '\0';
	slash = strrchr(target, '/');
	util_strlcpy(buf, slash ? slash + 1 : target, size);
}

static uint64_t hex_value(const char *s)
{
	return strtoull(s, NULL, 16);
}

int iommu_pci_read(const char *root, const char *bdf, struct iommu_pci *out)
{
	char path[PATH_MAX], line[64], group[32];

	if (!util_pci_address_valid(bdf))
		return -EINVAL;
	iommu_path(root, path, sizeof(path), "/sys/bus/pci/devices/%s", bdf);
	if (access(path, F_OK))
		return -ENOENT;
	*out = (struct iommu_pci){ .group = -1, .numa_node = -1 };
	util_strlcpy(out->bdf, bdf, sizeof(out->bdf));
	read_line(root, line, sizeof(line), "/sys/bus/pci/devices/%s/vendor", bdf);
	out->vendor = (uint16_t)hex_value(line);
	read_line(root, line, sizeof(line), "/sys/bus/pci/devices/%s/device", bdf);
	out->device = (uint16_t)hex_value(line);
	read_line(root, line, sizeof(line), "/sys/bus/pci/devices/%s/class", bdf);
	out->class_code = (uint32_t)hex_value(line);
	read_line(root, line, sizeof(line), "/sys/bus/pci/devices/%s/numa_node", bdf);
	if (line[0])
		out->numa_node = atoi(line);
	link_name(root, out->driver, sizeof(out->driver), "/sys/bus/pci/devices/%s/driver", bdf);
	read_line(root, out->override, sizeof(out->override),
		  "/sys/bus/pci/devices/%s/driver_override", bdf);
	if (strcmp(out->override, "(null)") == 0)
		out->override[0] = '\0';
	read_line(root, out->reset_method, sizeof(out->reset_method),
		  "/sys/bus/pci/devices/%s/reset_method", bdf);
	link_name(root, group, sizeof(group), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	if (group[0]) {
		char rel[64];

		out->group = atoi(group);
		snprintf(rel, sizeof(rel), "/sys/kernel/iommu_groups/%d/type", out->group);
		read_line(root, out->domain, sizeof(out->domain), "%s", rel);
	}
	link_name(root, out->unit, sizeof(out->unit), "/sys/bus/pci/devices/%s/iommu", bdf);
	if (strncmp(out->unit, "dmar", 4) == 0)
		util_strlcpy(out->unit_kind, "VT-d", sizeof(out->unit_kind));
	else if (strncmp(out->unit, "ivhd", 4) == 0)
		util_strlcpy(out->unit_kind, "AMD-Vi", sizeof(out->unit_kind));
	out->vfio_cdev = iommu_cdev_name(root, bdf, line, sizeof(line)) == 0;
	return 0;
}

static int cmp_pci(const void *a, const void *b)
{
	return strcmp(((const struct iommu_pci *)a)->bdf, ((const struct iommu_pci *)b)->bdf);
}

int iommu_pci_list(const char *root, struct iommu_pci **out, unsigned *n)
{
	struct iommu_pci *list = NULL;
	unsigned count = 0, cap = 0;
	char path[PATH_MAX];
	struct dirent *e;
	DIR *dir;

	*out = NULL;
	*n = 0;
	iommu_path(root, path, sizeof(path), "/sys/bus/pci/devices");
	dir = opendir(path);
	if (!dir)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(dir))) {
		if (!util_pci_address_valid(e->d_name))
			continue;
		if (count == cap) {
			struct iommu_pci *l =
				realloc(list, (cap = cap ? 2 * cap : 32) * sizeof(*l));

			if (!l) {
				free(list);
				closedir(dir);
				return -ENOMEM;
			}
			list = l;
		}
		if (iommu_pci_read(root, e->d_name, &list[count]) == 0)
			count++;
	}
	closedir(dir);
	qsort(list, count, sizeof(*list), cmp_pci);
	*out = list;
	*n = count;
	return 0;
}

static int cmp_bdf(const void *a, const void *b)
{
	return strcmp(a, b);
}

int iommu_group_devices(const char *root, int group, char (*bdfs)[IOMMU_BDF_MAX], unsigned max)
{
	char path[PATH_MAX];
	struct dirent *e;
	unsigned n = 0;
	DIR *dir;

	iommu_path(root, path, sizeof(path), "/sys/kernel/iommu_groups/%d/devices", group);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((e = readdir(dir)) && n < max)
		if (util_pci_address_valid(e->d_name))
			util_strlcpy(bdfs[n++], e->d_name, IOMMU_BDF_MAX);
	closedir(dir);
	qsort(bdfs, n, IOMMU_BDF_MAX, cmp_bdf);
	return (int)n;
}

bool iommu_driver_viable(const char *driver)
{
	return !driver[0] || strcmp(driver, "vfio-pci") == 0 || strcmp(driver, "pci-stub") == 0 ||
	       strcmp(driver, "pcieport") == 0;
}

int iommu_group_check(const char *root, const char *bdf, const char *const *ours, unsigned n,
		      char *why, size_t why_len)
{
	char members[64][IOMMU_BDF_MAX];
	struct iommu_pci dev, other;
	int count, ret;

	ret = iommu_pci_read(root, bdf, &dev);
	if (ret)
		return util_error(why, why_len, ret == -ENOENT ? -ENOENT : ret,
				  "this host has no PCI device %s", bdf);
	if (dev.group < 0)
		return util_error(why, why_len, -ENOENT,
				  "PCI device %s is in no IOMMU group (no IOMMU, or DMA remapping "
				  "is off)",
				  bdf);
	count = iommu_group_devices(root, dev.group, members, 64);
	for (int i = 0; i < count; i++) {
		bool mine = strcmp(members[i], bdf) == 0;

		for (unsigned k = 0; k < n && !mine; k++)
			mine = strcmp(members[i], ours[k]) == 0;
		if (mine || iommu_pci_read(root, members[i], &other))
			continue;
		if (!iommu_driver_viable(other.driver))
			return util_error(why, why_len, -EBUSY,
					  "IOMMU group %d of %s is not viable: %s [%04x:%04x] in "
					  "the same group is in use by the host driver %s (bind it "
					  "to vfio-pci too, or pass it through with %s)",
					  dev.group, bdf, other.bdf, other.vendor, other.device,
					  other.driver, bdf);
	}
	return 0;
}

/* Writes `value` to a sysfs file under `root`: 0 or -errno. */
static int write_file(const char *root, const char *rel, const char *value)
{
	char path[PATH_MAX];
	size_t len = strlen(value);
	ssize_t n;
	int fd, ret = 0;

	iommu_path(root, path, sizeof(path), "%s", rel);
	/* O_TRUNC as the shell's echo opens them: sysfs ignores it, a recorded tree needs it */
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, value, len);
	if (n != (ssize_t)len)
		ret = n < 0 ? -errno : -EIO;
	close(fd);
	return ret;
}

static void driver_of(const char *root, const char *bdf, char *buf, size_t size)
{
	link_name(root, buf, size, "/sys/bus/pci/devices/%s/driver", bdf);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* The VFIO node of a device just bound: /dev/vfio/GROUP (type1) appears a moment later. */
static int wait_vfio_node(const char *root, const char *bdf)
{
	char path[PATH_MAX], group[32];

	link_name(root, group, sizeof(group), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	if (!group[0])
		return -ENOENT;
	iommu_path(root, path, sizeof(path), "/dev/vfio/%s", group);
	for (unsigned waited = 0; access(path, F_OK); waited += 10) {
		if (waited >= VFIO_NODE_WAIT_MS)
			return -ETIMEDOUT;
		sleep_ms(10);
	}
	return 0;
}

int iommu_bind_vfio(const char *root, const char *bdf, char *prev, size_t prev_len, char *why,
		    size_t why_len)
{
	char rel[128], drv[64], now[64];
	int ret;

	prev[0] = '\0';
	if (!util_pci_address_valid(bdf))
		return util_error(why, why_len, -EINVAL,
				  "\"%.32s\" is not a PCI address such as 0000:03:00.0", bdf);
	iommu_path(root, rel, sizeof(rel), "/sys/bus/pci/devices/%s", bdf);
	if (access(rel, F_OK))
		return util_error(why, why_len, -ENOENT, "this host has no PCI device %s", bdf);
	iommu_path(root, rel, sizeof(rel), "/sys/bus/pci/drivers/vfio-pci");
	if (access(rel, F_OK))
		return util_error(why, why_len, -ENOENT,
				  "vfio-pci is not loaded (modprobe vfio-pci), so %s cannot be "
				  "bound to it",
				  bdf);
	driver_of(root, bdf, drv, sizeof(drv));
	util_strlcpy(prev, drv, prev_len);
	if (strcmp(drv, "vfio-pci") == 0)
		return wait_vfio_node(root, bdf);
	snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/driver_override", bdf);
	ret = write_file(root, rel, "vfio-pci");
	if (ret)
		return util_error(why, why_len, ret, "cannot set the driver override of %s: %s",
				  bdf, strerror(-ret));
	if (drv[0]) {
		snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/driver/unbind", bdf);
		ret = write_file(root, rel, bdf);
		if (ret) {
			util_error(why, why_len, ret, "%s's driver %s does not let it go: %s", bdf,
				   drv, strerror(-ret));
			goto err_override;
		}
	}
	write_file(root, "/sys/bus/pci/drivers_probe", bdf);
	driver_of(root, bdf, now, sizeof(now));
	if (strcmp(now, "vfio-pci") != 0) {
		ret = util_error(why, why_len, -EIO, "vfio-pci did not take %s (its driver is %s)",
				 bdf, now[0] ? now : "none");
		goto err_rebind;
	}
	ret = wait_vfio_node(root, bdf);
	if (ret) {
		util_error(why, why_len, ret,
			   "%s is bound to vfio-pci but its VFIO node did not "
			   "appear",
			   bdf);
		goto err_rebind;
	}
	return 0;

err_rebind:
	iommu_unbind_vfio(root, bdf, prev, NULL, 0);
	return ret;
err_override:
	snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/driver_override", bdf);
	write_file(root, rel, "\n");
	return ret;
}

int iommu_unbind_vfio(const char *root, const char *bdf, const char *prev, char *why,
		      size_t why_len)
{
	char rel[128], drv[64];
	int ret;

	if (!util_pci_address_valid(bdf))
		return util_error(why, why_len, -EINVAL, "\"%.32s\" is not a PCI address", bdf);
	if (strcmp(prev, "vfio-pci") == 0)
		return 0; /* it was on vfio-pci before lockstep took it: it stays there */
	driver_of(root, bdf, drv, sizeof(drv));
	if (strcmp(drv, "vfio-pci") == 0) {
		snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/driver/unbind", bdf);
		ret = write_file(root, rel, bdf);
		if (ret)
			return util_error(why, why_len, ret, "vfio-pci does not let %s go: %s", bdf,
					  strerror(-ret));
	}
	/*
	 * The override names the driver it had, so that drivers_probe gives it to exactly that
	 * one, even a driver that binds by override only (pci-stub); then it is cleared.
	 */
	snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/driver_override", bdf);
	ret = write_file(root, rel, prev[0] ? prev : "\n");
	if (!ret && prev[0])
		write_file(root, "/sys/bus/pci/drivers_probe", bdf);
	if (!ret)
		ret = write_file(root, rel, "\n");
	if (ret)
		return util_error(why, why_len, ret, "cannot set the driver override of %s: %s",
				  bdf, strerror(-ret));
	driver_of(root, bdf, drv, sizeof(drv));
	if (strcmp(drv, prev) != 0)
		return util_error(why, why_len, -EIO, "%s did not go back to %s (its driver is %s)",
				  bdf, prev[0] ? prev : "no driver", drv[0] ? drv : "none");
	return 0;
}

int iommu_host_irqs(const char *root, const char *bdf, struct iommu_host_irqs *out)
{
	char path[PATH_MAX], want[32], *text = NULL, *line, *next;
	unsigned cpus = 0;
	size_t len;
	int ret;

	memset(out, 0, sizeof(*out));
	iommu_path(root, path, sizeof(path), "/proc/interrupts");
	ret = util_read_text(path, 4u << 20, &text, &len);
	if (ret)
		return ret;
	snprintf(want, sizeof(want), "(%s)", bdf);
	for (line = text; line && *line; line = next) {
		char *p, *end;
		unsigned col = 0;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (line == text) { /* the header: one column per CPU */
			for (p = strtok_r(line, " ", &end); p; p = strtok_r(NULL, " ", &end))
				cpus++;
			continue;
		}
		if (!strstr(line, "vfio-") || !strstr(line, want))
			continue;
		out->lines++;
		p = strchr(line, ':');
		for (p = p ? p + 1 : line; col < cpus; col++) {
			out->count += strtoull(p, &end, 10);
			if (end == p)
				break;
			p = end;
		}
		while (*p == ' ')
			p++;
		if (out->lines == 1) {
			size_t n = strcspn(p, " ");

			snprintf(out->chip, sizeof(out->chip), "%.*s", (int)n, p);
			out->remapped = strncmp(out->chip, "IR-", 3) == 0;
		}
	}
	free(text);
	return 0;
}
