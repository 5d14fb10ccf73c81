/*
 * Identities and privileges.  The worker's unprivileged user: its uid, primary group and
 * supplementary groups, looked up in the passwd and group databases before anything is
 * confined (NSS may need files and sockets a confined worker no longer reaches).  lockstepd
 * looks the user up before each start so that a missing user is a clear refusal; lockstep-vm
 * looks it up again for itself.  And lockstepd's own capabilities, which it trims to what
 * starting and steering workers needs (sandbox_caps_limit).
 */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/sandbox.h"
#include "util/util.h"

int sandbox_user_lookup(const char *name, struct sandbox_user *u, char *err, size_t err_len)
{
	struct passwd pw, *found = NULL;
	long bufsize = sysconf(_SC_GETPW_R_SIZE_MAX);
	char *buf;
	int ret;

	*u = (struct sandbox_user){ .ngroups = 0 };
	if (util_strlcpy(u->name, name, sizeof(u->name)))
		return util_error(err, err_len, -ENAMETOOLONG, "user name \"%.64s...\" is too long",
				  name);
	if (bufsize < 16384)
		bufsize = 16384;
	buf = malloc((size_t)bufsize);
	if (!buf)
		return util_error(err, err_len, -ENOMEM, "out of memory");
	ret = getpwnam_r(name, &pw, buf, (size_t)bufsize, &found);
	if (ret || !found) {
		free(buf);
		return util_error(err, err_len, ret ? -ret : -ENOENT,
				  "the worker user %s does not exist%s%s: create it "
				  "(scripts/worker-user.sh) or name another one",
				  name, ret ? ": " : "", ret ? strerror(ret) : "");
	}
	u->uid = pw.pw_uid;
	u->gid = pw.pw_gid;
	u->ngroups = SANDBOX_GROUPS_MAX;
	if (getgrouplist(name, pw.pw_gid, u->groups, &u->ngroups) < 0) {
		free(buf);
		return util_error(err, err_len, -E2BIG, "user %s is in more than %d groups", name,
				  SANDBOX_GROUPS_MAX);
	}
	free(buf);
	if (u->uid == 0 || u->gid == 0)
		return util_error(err, err_len, -EPERM,
				  "the worker user %s has uid or gid 0: it must be an unprivileged "
				  "user",
				  name);
	for (int i = 0; i < u->ngroups; i++)
		if (u->groups[i] == 0)
			return util_error(err, err_len, -EPERM,
					  "the worker user %s is in group 0 (root): it must be an "
					  "unprivileged user",
					  name);
	return 0;
}

bool sandbox_cap_effective(int cap)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct caps[2];

	return cap >= 0 && cap < 64 && syscall(SYS_capget, &hdr, caps) == 0 &&
	       (caps[cap / 32].effective & (1u << (cap % 32)));
}

int sandbox_caps_limit(const int *keep, unsigned n, bool bounding)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct caps[2];
	uint64_t mask = 0, permitted;

	for (unsigned i = 0; i < n; i++)
		if (keep[i] >= 0 && keep[i] < 64)
			mask |= 1ull << keep[i];
	/* The bounding set first: dropping from it needs CAP_SETPCAP, which goes next. */
	for (int cap = 0; bounding && cap < 64; cap++) {
		if (mask & (1ull << cap))
			continue;
		if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0)
			break; /* past the last capability this kernel knows */
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EPERM)
			return -errno;
	}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (syscall(SYS_capget, &hdr, caps) < 0)
		return -errno;
	permitted = ((uint64_t)caps[1].permitted << 32 | caps[0].permitted) & mask;
	caps[0].permitted = caps[0].effective = (uint32_t)permitted;
	caps[1].permitted = caps[1].effective = (uint32_t)(permitted >> 32);
	caps[0].inheritable = caps[1].inheritable = 0;
	return syscall(SYS_capset, &hdr, caps) < 0 ? -errno : 0;
}
