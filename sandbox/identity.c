/*
 * The worker's unprivileged user: its uid, primary group and supplementary groups, looked up
 * in the passwd and group databases before anything is confined (NSS may need files and
 * sockets a confined worker no longer reaches).  lockstepd looks the user up before each start
 * so that a missing user is a clear refusal; lockstep-vm looks it up again for itself.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
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
