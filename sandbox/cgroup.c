/*
 * A cgroup per VM with a memory and a pids limit.  cgroup v2 is used where the place for the
 * VMs' cgroups offers the memory and pids controllers; otherwise the v1 memory and pids
 * hierarchies (hybrid hosts mount a v2 hierarchy that holds neither).  Where they go:
 *
 *   v2: beside the creator's own cgroup, PARENT/lockstep/LEAF: a cgroup that holds processes
 *       (the daemon's) cannot have children with controllers enabled, its parent can;
 *   v1: beneath the creator's own cgroup in each hierarchy, OWN/lockstep/LEAF, so that VMs
 *       stay inside whatever their daemon is confined to.
 *
 * The creator (lockstepd, or lockstep-vm's relay when run by hand) makes the leaf, sets the
 * limits and opens cgroup.procs; the new process writes itself in before it execs; the creator
 * removes the leaf after the process is gone.  Plain files under /proc and /sys; no state.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/sandbox.h"
#include "util/util.h"

#define CGROUP_PARENT "lockstep"

struct mounts {
	char v2[PATH_MAX], v2_root[PATH_MAX];
	char memory[PATH_MAX], memory_root[PATH_MAX];
	char pids[PATH_MAX], pids_root[PATH_MAX];
};

/* A process's cgroup paths, relative to each hierarchy's root ("" = not in it). */
struct memberships {
	char v2[PATH_MAX], memory[PATH_MAX], pids[PATH_MAX];
};

/* mountinfo escapes blanks and backslashes as \ooo. */
static void unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

static bool has_word(const char *list, const char *word, char sep)
{
	size_t n = strlen(word);

	for (const char *p = list; p && *p;) {
		const char *end = strchr(p, sep);
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len == n && strncmp(p, word, n) == 0)
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

static void read_mounts(struct mounts *m)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];

	*m = (struct mounts){ .v2 = "" };
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *field[6] = { NULL }, *save = NULL, *tok, *dash = strstr(line, " - ");
		char fstype[64] = "", opts[512] = "";
		int n = 0;

		if (!dash || sscanf(dash + 3, "%63s %*s %511s", fstype, opts) != 2)
			continue;
		*dash = '\0';
		for (tok = strtok_r(line, " ", &save); tok && n < 6;
		     tok = strtok_r(NULL, " ", &save))
			field[n++] = tok;
		if (n < 5)
			continue;
		unescape(field[3]);
		unescape(field[4]);
		if (strcmp(fstype, "cgroup2") == 0 && !m->v2[0]) {
			util_strlcpy(m->v2, field[4], sizeof(m->v2));
			util_strlcpy(m->v2_root, field[3], sizeof(m->v2_root));
		} else if (strcmp(fstype, "cgroup") == 0) {
			if (has_word(opts, "memory", ',') && !m->memory[0]) {
				util_strlcpy(m->memory, field[4], sizeof(m->memory));
				util_strlcpy(m->memory_root, field[3], sizeof(m->memory_root));
			}
			if (has_word(opts, "pids", ',') && !m->pids[0]) {
				util_strlcpy(m->pids, field[4], sizeof(m->pids));
				util_strlcpy(m->pids_root, field[3], sizeof(m->pids_root));
			}
		}
	}
	fclose(f);
}

static int read_memberships(pid_t pid, struct memberships *ms)
{
	char path[64], line[4096];
	FILE *f;

	*ms = (struct memberships){ .v2 = "" };
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	else
		strcpy(path, "/proc/self/cgroup");
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *ctrls = strchr(line, ':'), *cg = ctrls ? strchr(ctrls + 1, ':') : NULL;

		if (!cg)
			continue;
		*ctrls++ = '\0';
		*cg++ = '\0';
		cg[strcspn(cg, "\n")] = '\0';
		if (strcmp(line, "0") == 0 && !ctrls[0])
			util_strlcpy(ms->v2, cg, sizeof(ms->v2));
		if (has_word(ctrls, "memory", ','))
			util_strlcpy(ms->memory, cg, sizeof(ms->memory));
		if (has_word(ctrls, "pids", ','))
			util_strlcpy(ms->pids, cg, sizeof(ms->pids));
	}
	fclose(f);
	return 0;
}

/* The directory of cgroup `path` in a hierarchy mounted at `mnt` whose mount shows `root`. */
static int cgroup_dir(const char *mnt, const char *root, const char *path, char *out, size_t size)
{
	size_t n = strcmp(root, "/") == 0 ? 0 : strlen(root);
	const char *rest = path + n;

	if (strncmp(path, root, n) != 0 || (*rest && *rest != '/'))
		return -ENOENT; /* outside what this mount shows */
	if (strcmp(rest, "/") == 0)
		rest = "";
	if (snprintf(out, size, "%s%s", mnt, rest) >= (int)size)
		return -ENAMETOOLONG;
	return 0;
}

/* cgroup files report no size: read until EOF (at most size-1 bytes); returns the length. */
static ssize_t read_text(const char *dir, const char *file, char *buf, size_t size)
{
	char path[PATH_MAX];
	size_t got = 0;
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (got < size - 1) {
		ssize_t n = read(fd, buf + got, size - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	return (ssize_t)got;
}

static int write_text(const char *dir, const char *file, const char *text)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	if (n < 0)
		n = -errno;
	close(fd);
	return n < 0 ? (int)n : 0;
}

static bool file_has_words(const char *dir, const char *file, const char *const *words)
{
	char text[1024];
	bool all = true;

	if (read_text(dir, file, text, sizeof(text)) < 0)
		return false;
	text[strcspn(text, "\n")] = '\0';
	for (; *words; words++)
		all = all && has_word(text, *words, ' ');
	return all;
}

/* Makes `dir` (its parent must exist); an existing one is reused only if no process is in it. */
static int make_leaf(const char *dir)
{
	char procs[64];
	ssize_t n;

	if (mkdir(dir, 0755) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	n = read_text(dir, "cgroup.procs", procs, sizeof(procs));
	if (n < 0)
		return (int)n;
	return n ? -EBUSY : 0;
}

static int open_procs(const char *dir)
{
	char path[PATH_MAX];
	int fd;

	if (snprintf(path, sizeof(path), "%s/cgroup.procs", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* PARENT/lockstep with memory and pids enabled for its children (v2). */
static int parent_v2(const struct mounts *m, const struct memberships *own, char *base, size_t size,
		     char *err, size_t err_len)
{
	static const char *const needed[] = { "memory", "pids", NULL };
	char parent_path[PATH_MAX], parent[PATH_MAX];
	char *slash;
	int ret;

	util_strlcpy(parent_path, own->v2, sizeof(parent_path));
	slash = strrchr(parent_path, '/');
	if (slash && slash != parent_path)
		*slash = '\0';
	else
		strcpy(parent_path, "/");
	ret = cgroup_dir(m->v2, m->v2_root, parent_path, parent, sizeof(parent));
	if (ret)
		return util_error(err, err_len, ret, "cgroup v2: %s is not visible", parent_path);
	/* Idempotent where the controllers are on already (systemd turns them on). */
	if (!file_has_words(parent, "cgroup.subtree_control", needed) &&
	    (ret = write_text(parent, "cgroup.subtree_control", "+memory +pids")))
		return util_error(err, err_len, ret,
				  "cgroup v2: cannot enable memory and pids below %s: %s", parent,
				  strerror(-ret));
	if (snprintf(base, size, "%s/" CGROUP_PARENT, parent) >= (int)size)
		return util_error(err, err_len, -ENAMETOOLONG, "cgroup path too long");
	if (mkdir(base, 0755) < 0 && errno != EEXIST)
		return util_error(err, err_len, -errno, "cgroup v2: %s: %s", base, strerror(errno));
	if (!file_has_words(base, "cgroup.subtree_control", needed) &&
	    (ret = write_text(base, "cgroup.subtree_control", "+memory +pids")))
		return util_error(err, err_len, ret,
				  "cgroup v2: cannot enable memory and pids in %s: %s", base,
				  strerror(-ret));
	return 0;
}

static int create_v2(const struct mounts *m, const struct memberships *own, const char *leaf,
		     struct sandbox_cgroup *cg, char *err, size_t err_len)
{
	char base[PATH_MAX], limit[32];
	int ret;

	ret = parent_v2(m, own, base, sizeof(base), err, err_len);
	if (ret)
		return ret;
	if (snprintf(cg->memory_dir, sizeof(cg->memory_dir), "%s/%s", base, leaf) >=
	    (int)sizeof(cg->memory_dir))
		return util_error(err, err_len, -ENAMETOOLONG, "cgroup path too long");
	strcpy(cg->pids_dir, cg->memory_dir);
	ret = make_leaf(cg->memory_dir);
	if (ret)
		return util_error(err, err_len, ret, "cgroup %s: %s", cg->memory_dir,
				  ret == -EBUSY ? "in use by another process" : strerror(-ret));
	snprintf(limit, sizeof(limit), "%llu", (unsigned long long)cg->memory_max);
	ret = write_text(cg->memory_dir, "memory.max", limit);
	snprintf(limit, sizeof(limit), "%llu", (unsigned long long)cg->pids_max);
	if (!ret)
		ret = write_text(cg->pids_dir, "pids.max", limit);
	if (!ret) {
		cg->procs_fd[0] = open_procs(cg->memory_dir);
		ret = cg->procs_fd[0] < 0 ? cg->procs_fd[0] : 0;
	}
	if (ret) {
		cg->procs_fd[0] = -1;
		rmdir(cg->memory_dir);
		return util_error(err, err_len, ret, "cgroup %s: cannot set its limits: %s",
				  cg->memory_dir, strerror(-ret));
	}
	cg->version = 2;
	return 0;
}

/* OWN/lockstep in one v1 hierarchy. */
static int parent_v1(const char *mnt, const char *root, const char *own, char *dir, size_t size)
{
	char own_dir[PATH_MAX];
	int ret;

	ret = cgroup_dir(mnt, root, own, own_dir, sizeof(own_dir));
	if (ret)
		return ret;
	if (snprintf(dir, size, "%s/" CGROUP_PARENT, own_dir) >= (int)size)
		return -ENAMETOOLONG;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int create_v1_one(const char *mnt, const char *root, const char *own, const char *leaf,
			 const char *limit_file, uint64_t limit, char *dir, size_t size, int *fd)
{
	char text[32];
	int ret;

	ret = parent_v1(mnt, root, own, dir, size);
	if (ret)
		return ret;
	if (strlen(dir) + 1 + strlen(leaf) >= size)
		return -ENAMETOOLONG;
	strcat(dir, "/");
	strcat(dir, leaf);
	ret = make_leaf(dir);
	if (ret)
		return ret;
	snprintf(text, sizeof(text), "%llu", (unsigned long long)limit);
	ret = write_text(dir, limit_file, text);
	if (ret)
		return ret;
	*fd = open_procs(dir);
	if (*fd >= 0)
		return 0;
	ret = *fd;
	*fd = -1;
	return ret;
}

static int create_v1(const struct mounts *m, const struct memberships *own, const char *leaf,
		     struct sandbox_cgroup *cg, char *err, size_t err_len)
{
	int ret;

	ret = create_v1_one(m->memory, m->memory_root, own->memory, leaf, "memory.limit_in_bytes",
			    cg->memory_max, cg->memory_dir, sizeof(cg->memory_dir),
			    &cg->procs_fd[0]);
	if (ret)
		return util_error(err, err_len, ret, "cgroup v1 memory %s: %s", cg->memory_dir,
				  ret == -EBUSY ? "in use by another process" : strerror(-ret));
	ret = create_v1_one(m->pids, m->pids_root, own->pids, leaf, "pids.max", cg->pids_max,
			    cg->pids_dir, sizeof(cg->pids_dir), &cg->procs_fd[1]);
	if (ret) {
		rmdir(cg->memory_dir);
		return util_error(err, err_len, ret, "cgroup v1 pids %s: %s", cg->pids_dir,
				  ret == -EBUSY ? "in use by another process" : strerror(-ret));
	}
	cg->version = 1;
	return 0;
}

/* Whether the v2 hierarchy offers memory and pids where the VMs' cgroups would go. */
static bool v2_usable(const struct mounts *m, const struct memberships *own)
{
	static const char *const needed[] = { "memory", "pids", NULL };
	char parent_path[PATH_MAX], dir[PATH_MAX], *slash;

	if (!m->v2[0] || !own->v2[0])
		return false;
	util_strlcpy(parent_path, own->v2, sizeof(parent_path));
	slash = strrchr(parent_path, '/');
	if (slash && slash != parent_path)
		*slash = '\0';
	else
		strcpy(parent_path, "/");
	return cgroup_dir(m->v2, m->v2_root, parent_path, dir, sizeof(dir)) == 0 &&
	       file_has_words(dir, "cgroup.controllers", needed);
}

int sandbox_cgroup_prepare(int *version, char *err, size_t err_len)
{
	char dir[PATH_MAX];
	struct memberships own;
	struct mounts m;
	int ret;

	*version = 0;
	read_mounts(&m);
	ret = read_memberships(0, &own);
	if (ret)
		return util_error(err, err_len, ret, "/proc/self/cgroup: %s", strerror(-ret));
	if (v2_usable(&m, &own)) {
		ret = parent_v2(&m, &own, dir, sizeof(dir), err, err_len);
		*version = ret ? 0 : 2;
		return ret;
	}
	if (!m.memory[0] || !m.pids[0] || !own.memory[0] || !own.pids[0])
		return util_error(
			err, err_len, -ENOTSUP,
			"no cgroup hierarchy offers the memory and pids controllers "
			"lockstep needs to limit a VM: mount cgroup v2 with them (Debian 12 "
			"does), or the v1 memory and pids hierarchies");
	if ((ret = parent_v1(m.memory, m.memory_root, own.memory, dir, sizeof(dir))) ||
	    (ret = parent_v1(m.pids, m.pids_root, own.pids, dir, sizeof(dir))))
		return util_error(err, err_len, ret, "cgroup v1: %s: %s", dir, strerror(-ret));
	*version = 1;
	return 0;
}

int sandbox_cgroup_create(const char *leaf, uint64_t memory_max, uint64_t pids_max,
			  struct sandbox_cgroup *cg, char *err, size_t err_len)
{
	struct memberships own;
	struct mounts m;
	int ret;

	*cg = (struct sandbox_cgroup){ .memory_max = memory_max,
				       .pids_max = pids_max,
				       .procs_fd = { -1, -1 } };
	if (!leaf[0] || strchr(leaf, '/') || leaf[0] == '.')
		return util_error(err, err_len, -EINVAL, "bad cgroup name \"%s\"", leaf);
	read_mounts(&m);
	ret = read_memberships(0, &own);
	if (ret)
		return util_error(err, err_len, ret, "/proc/self/cgroup: %s", strerror(-ret));
	if (v2_usable(&m, &own))
		ret = create_v2(&m, &own, leaf, cg, err, err_len);
	else if (m.memory[0] && m.pids[0] && own.memory[0] && own.pids[0])
		ret = create_v1(&m, &own, leaf, cg, err, err_len);
	else
		ret = util_error(
			err, err_len, -ENOTSUP,
			"no cgroup hierarchy offers the memory and pids controllers "
			"lockstep needs to limit a VM: mount cgroup v2 with them (Debian 12 "
			"does), or the v1 memory and pids hierarchies");
	if (ret)
		sandbox_cgroup_close(cg);
	return ret;
}

static bool parent_is_ours(const char *path)
{
	char copy[PATH_MAX], *slash;

	util_strlcpy(copy, path, sizeof(copy));
	slash = strrchr(copy, '/');
	if (!slash || slash == copy)
		return false;
	*slash = '\0';
	slash = strrchr(copy, '/');
	return slash && strcmp(slash + 1, CGROUP_PARENT) == 0;
}

/* A limit file's value; "max" is UINT64_MAX. */
static uint64_t read_limit(const char *dir, const char *file)
{
	char text[64];
	uint64_t v = 0;

	if (read_text(dir, file, text, sizeof(text)) <= 0)
		return 0;
	text[strcspn(text, "\n")] = '\0';
	if (strcmp(text, "max") == 0)
		v = UINT64_MAX;
	else if (util_parse_u64(text, 0, UINT64_MAX, &v))
		v = 0;
	return v;
}

static void read_limits(struct sandbox_cgroup *cg)
{
	cg->memory_max = read_limit(cg->memory_dir,
				    cg->version == 2 ? "memory.max" : "memory.limit_in_bytes");
	cg->pids_max = read_limit(cg->pids_dir, "pids.max");
}

uint64_t sandbox_memory_max(uint64_t guest_ram, uint32_t vcpus)
{
	return guest_ram + guest_ram / 16 + (256ull << 20) + (uint64_t)vcpus * (4ull << 20);
}

uint64_t sandbox_pids_max(uint32_t vcpus)
{
	return (uint64_t)vcpus + 16;
}

int sandbox_cgroup_remove_leaf(const char *leaf)
{
	char parent_path[PATH_MAX], dir[PATH_MAX], *slash;
	struct memberships own;
	struct mounts m;
	int ret = 0;

	if (!leaf[0] || strchr(leaf, '/') || leaf[0] == '.')
		return -EINVAL;
	read_mounts(&m);
	if (read_memberships(0, &own))
		return -ENOENT;
	if (v2_usable(&m, &own)) {
		util_strlcpy(parent_path, own.v2, sizeof(parent_path));
		slash = strrchr(parent_path, '/');
		if (slash && slash != parent_path)
			*slash = '\0';
		else
			strcpy(parent_path, "/");
		if (!cgroup_dir(m.v2, m.v2_root, parent_path, dir, sizeof(dir)) &&
		    snprintf(dir + strlen(dir), sizeof(dir) - strlen(dir), "/" CGROUP_PARENT "/%s",
			     leaf) > 0 &&
		    rmdir(dir) < 0 && errno != ENOENT)
			ret = -errno;
		return ret;
	}
	if (!cgroup_dir(m.memory, m.memory_root, own.memory, dir, sizeof(dir)) &&
	    snprintf(dir + strlen(dir), sizeof(dir) - strlen(dir), "/" CGROUP_PARENT "/%s", leaf) >
		    0 &&
	    rmdir(dir) < 0 && errno != ENOENT)
		ret = -errno;
	if (!cgroup_dir(m.pids, m.pids_root, own.pids, dir, sizeof(dir)) &&
	    snprintf(dir + strlen(dir), sizeof(dir) - strlen(dir), "/" CGROUP_PARENT "/%s", leaf) >
		    0 &&
	    rmdir(dir) < 0 && errno != ENOENT)
		ret = -errno;
	return ret;
}

int sandbox_cgroup_of(pid_t pid, struct sandbox_cgroup *cg)
{
	struct memberships ms;
	struct mounts m;
	int ret;

	*cg = (struct sandbox_cgroup){ .procs_fd = { -1, -1 } };
	read_mounts(&m);
	ret = read_memberships(pid, &ms);
	if (ret)
		return ret;
	if (m.memory[0] && m.pids[0] && parent_is_ours(ms.memory) && parent_is_ours(ms.pids) &&
	    !cgroup_dir(m.memory, m.memory_root, ms.memory, cg->memory_dir,
			sizeof(cg->memory_dir)) &&
	    !cgroup_dir(m.pids, m.pids_root, ms.pids, cg->pids_dir, sizeof(cg->pids_dir))) {
		cg->version = 1;
		read_limits(cg);
		return 0;
	}
	if (m.v2[0] && parent_is_ours(ms.v2) &&
	    !cgroup_dir(m.v2, m.v2_root, ms.v2, cg->memory_dir, sizeof(cg->memory_dir))) {
		strcpy(cg->pids_dir, cg->memory_dir);
		cg->version = 2;
		read_limits(cg);
		return 0;
	}
	return -ENOENT;
}

int sandbox_cgroup_join(const struct sandbox_cgroup *cg)
{
	for (int i = 0; i < 2; i++)
		if (cg->procs_fd[i] >= 0 && write(cg->procs_fd[i], "0", 1) != 1)
			return -errno;
	return 0;
}

void sandbox_cgroup_close(struct sandbox_cgroup *cg)
{
	for (int i = 0; i < 2; i++) {
		if (cg->procs_fd[i] >= 0)
			close(cg->procs_fd[i]);
		cg->procs_fd[i] = -1;
	}
}

int sandbox_cgroup_remove(struct sandbox_cgroup *cg)
{
	int ret = 0;

	if (!cg->version)
		return 0;
	sandbox_cgroup_close(cg);
	if (rmdir(cg->memory_dir) < 0 && errno != ENOENT)
		ret = -errno;
	if (strcmp(cg->pids_dir, cg->memory_dir) && rmdir(cg->pids_dir) < 0 && errno != ENOENT)
		ret = -errno;
	if (!ret)
		cg->version = 0;
	return ret;
}

void sandbox_cgroup_describe(const struct sandbox_cgroup *cg, char *buf, size_t size)
{
	if (cg->version == 2)
		snprintf(buf, size, "cgroup v2 %s", cg->memory_dir);
	else if (cg->version == 1)
		snprintf(buf, size, "cgroup v1 %s and %s", cg->memory_dir, cg->pids_dir);
	else
		snprintf(buf, size, "no cgroup");
}
