/*
 * The worker's seccomp allow-lists, one per thread kind, and what happens on a call outside
 * them.
 *
 * Four kinds of thread, four lists: a vCPU thread (KVM_RUN and what its exits emulate: MMIO and
 * port I/O, interrupt routes the guest programs, test-device timers), the device thread
 * (vm/devloop.c: eventfds, timers, MSIs), the steering thread (vm/steering.c: KVM statistics
 * and GSI routing) and the control thread (the control channel, run-state samples, reports,
 * and the VM's teardown).  Each thread installs its own filter before it does any work for the
 * guest: the device and steering threads as they start, a vCPU thread once its kick signal is
 * set up and before it first enters the guest, the control thread once it has started all the
 * others (so none inherits it: each kind gets only its own list).  All are built here by the
 * control thread before any of those threads run, as BPF programs (libseccomp, exported once),
 * so a thread installs its filter with a single seccomp() call.
 *
 * ioctl() is allowed only on the thread's own KVM fds and only with the commands that thread
 * issues, and, in a VM with passthrough devices, on its VFIO descriptors with the few commands
 * that still run once confined (vm_passthrough_ioctls; KVM_SET_USER_MEMORY_REGION for the
 * BARs' memory slots); openat() only relative to the run-state directory (vm/runstate.c); tgkill() only
 * within this process; mmap() and mprotect() never with PROT_EXEC.  Anything else traps
 * (SECCOMP_RET_TRAP): the SIGSYS handler writes {"reason":"seccomp","syscall":NR,"status":159}
 * to the exit report (VM_REPORT_FD) and a line to stderr, then ends the process with status
 * 159 (128 + SIGSYS); lockstepd reports the VM as crashed with "seccomp: NAME".  A call from
 * the wrong architecture (x32, i386) kills the process outright.
 *
 * Sanitizer builds (LOCKSTEP_SANITIZE) add the calls the sanitizer runtimes make on their own
 * (allocator, alternate signal stacks, and LeakSanitizer's exit-time thread inspection);
 * docs/security.md lists them.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "iommu/iommu.h"
#include "vm/vm_internal.h"

struct vm_filter {
	struct sock_fprog prog;
};

/* Every thread: synchronisation, its own I/O on descriptors it holds, signals, time, exit. */
static const char *const common_calls[] = {
	"futex",	   "read",
	"write",	   "pread64",
	"pwrite64",	   "ftruncate",
	"rt_sigreturn",	   "rt_sigprocmask",
	"clock_gettime",   "clock_nanosleep",
	"nanosleep",	   "sched_yield",
	"restart_syscall", "getpid",
	"gettid",	   "madvise",
	"munmap",	   "exit",
	"exit_group",	   NULL,
};

/*
 * vCPU threads: sleeping in a pv WAIT and eating a kick left pending after KVM_RUN; the lines
 * and timers of devices the guest programs (an MSI vector's eventfd, a test device's timer);
 * malloc()'s per-thread arena.
 */
static const char *const vcpu_calls[] = {
	"ppoll",  "rt_sigtimedwait", "eventfd2", "close", "timerfd_settime",
	"sendto", /* COM1's output to the console client (vm/uart.c), which never blocks */
	NULL,
};

/* The device thread: its epoll loop, device timers. */
static const char *const devices_calls[] = { "epoll_wait", "timerfd_settime", NULL };

/* The steering thread needs nothing beyond the common list and its ioctls. */
static const char *const steering_calls[] = { NULL };

/*
 * The control thread: the control channel, run-state sampling, memory, the final report
 * (glibc's qsort() asks sysinfo() how much memory there is before sorting a large array), and
 * the devices' teardown.
 */
static const char *const control_calls[] = {
	"poll", "ppoll", "close",      "fcntl", "accept4", "recvfrom",	"sendto",
	"dup",	"fstat", "newfstatat", "lseek", "sysinfo", "epoll_ctl", NULL,
};

#ifdef LOCKSTEP_SANITIZE
/* What ASan/UBSan/LSan do by themselves on any thread, and LSan's exit-time leak check. */
static const char *const sanitizer_calls[] = {
	/* the allocator, shadow memory, alternate signal stacks */
	"mmap",
	"munmap",
	"mprotect",
	"mremap",
	"brk",
	"sigaltstack",
	/* LeakSanitizer's exit-time check: a tracer task that lists and stops the threads
	 * through /proc (the x86-64 runtime uses the legacy open/stat/getdents calls) */
	"clone",
	"ptrace",
	"wait4",
	"prctl",
	"getppid",
	"rt_sigaction",
	"kill",
	"tgkill",
	"open",
	"openat",
	"close",
	"read",
	"stat",
	"lstat",
	"fstat",
	"newfstatat",
	"getdents",
	"getdents64",
	"readlink",
	"lseek",
	"sched_getaffinity",
	"process_vm_readv",
	NULL,
};
#endif

/* KVM ioctls per thread kind: the only ones hv/ issues on that thread once the VM runs. */
static const unsigned long vcpu_fd_cmds[] = {
	KVM_RUN, KVM_GET_REGS, KVM_GET_SREGS, KVM_GET_LAPIC, KVM_GET_MSRS,
};
static const unsigned long vm_fd_cmds_vcpu[] = {
	KVM_IRQ_LINE, KVM_IRQ_LINE_STATUS, KVM_SIGNAL_MSI, KVM_SET_GSI_ROUTING, KVM_IRQFD,
};
static const unsigned long vm_fd_cmds_devices[] = {
	KVM_IRQ_LINE,
	KVM_IRQ_LINE_STATUS,
	KVM_SIGNAL_MSI,
};
static const unsigned long vm_fd_cmds_steering[] = { KVM_SET_GSI_ROUTING };
static const unsigned long vm_fd_cmds_control[] = {
	KVM_IRQ_LINE, KVM_IOEVENTFD, KVM_IRQFD, KVM_SET_GSI_ROUTING, KVM_GET_IRQCHIP,
};

/* Where the VM has passthrough devices: a vCPU thread moves a BAR's memory slots when the guest
 * moves the BAR, the control thread takes them down at the end. */
static const unsigned long vm_fd_cmds_passthrough[] = { KVM_SET_USER_MEMORY_REGION };

#define LOW32 0xffffffffull /* int and ioctl-command arguments: compare their low 32 bits */

/* The distinct system calls a filter allows (with or without conditions on arguments). */
struct allowed {
	unsigned n;
	int nr[128];
};

static void note(struct allowed *a, int nr)
{
	for (unsigned i = 0; i < a->n; i++)
		if (a->nr[i] == nr)
			return;
	if (a->n < sizeof(a->nr) / sizeof(a->nr[0]))
		a->nr[a->n++] = nr;
}

static int allow_list(scmp_filter_ctx ctx, const char *const *names, struct allowed *a)
{
	for (; *names; names++) {
		int nr = seccomp_syscall_resolve_name(*names);
		int ret;

		if (nr == __NR_SCMP_ERROR || nr < 0)
			continue; /* not a system call on this architecture */
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (ret && ret != -EEXIST)
			return ret;
		note(a, nr);
	}
	return 0;
}

/* A conditional rule; libseccomp drops it if the call is allowed outright already. */
static int allow_if(scmp_filter_ctx ctx, struct allowed *a, int nr, unsigned nargs,
		    const struct scmp_arg_cmp *cmp)
{
	int ret = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, nargs, cmp);

	if (ret && ret != -EEXIST)
		return ret;
	note(a, nr);
	return 0;
}

static int allow_ioctls(scmp_filter_ctx ctx, struct allowed *a, int fd, const unsigned long *cmds,
			size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct scmp_arg_cmp cmp[] = {
			SCMP_A0(SCMP_CMP_MASKED_EQ, LOW32, (uint64_t)fd),
			SCMP_A1(SCMP_CMP_MASKED_EQ, LOW32, (uint64_t)cmds[i]),
		};
		int ret = allow_if(ctx, a, SCMP_SYS(ioctl), 2, cmp);

		if (ret)
			return ret;
	}
	return 0;
}

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* What one thread kind may call, beyond the common list; its KVM ioctls. */
struct thread_rules {
	const char *const *calls;
	const unsigned long *vm_cmds;
	size_t nr_vm_cmds;
};

static const struct thread_rules thread_rules[VM_THREAD_KINDS] = {
	[VM_THREAD_CONTROL] = { control_calls, vm_fd_cmds_control, ARRAY_LEN(vm_fd_cmds_control) },
	[VM_THREAD_VCPU] = { vcpu_calls, vm_fd_cmds_vcpu, ARRAY_LEN(vm_fd_cmds_vcpu) },
	[VM_THREAD_DEVICES] = { devices_calls, vm_fd_cmds_devices, ARRAY_LEN(vm_fd_cmds_devices) },
	[VM_THREAD_STEERING] = { steering_calls, vm_fd_cmds_steering,
				 ARRAY_LEN(vm_fd_cmds_steering) },
};

/* Memory for malloc() on any thread (its own arena, or the main one past the arena limit),
 * never executable. */
static int allow_memory(scmp_filter_ctx ctx, struct allowed *a)
{
	const struct scmp_arg_cmp mmap_no_exec =
		SCMP_A2(SCMP_CMP_MASKED_EQ, (uint64_t)PROT_EXEC, 0);
	static const char *const calls[] = { "brk", "mremap", NULL };
	int ret = allow_list(ctx, calls, a);

	if (!ret)
		ret = allow_if(ctx, a, SCMP_SYS(mmap), 1, &mmap_no_exec);
	if (!ret)
		ret = allow_if(ctx, a, SCMP_SYS(mprotect), 1, &mmap_no_exec);
	return ret;
}

/* Only a VM with passthrough devices, and only its own VFIO descriptors and commands. */
static int allow_passthrough(scmp_filter_ctx ctx, struct vm *vm, enum vm_thread_kind kind,
			     struct allowed *a)
{
	struct iommu_ioctl calls[2 * VMDEF_DEVICES_MAX + 1];
	unsigned n = vm_passthrough_ioctls(vm, kind, calls, ARRAY_LEN(calls));
	int ret = 0;

	if (n)
		ret = allow_ioctls(ctx, a, hv_vm_fd(vm->hv), vm_fd_cmds_passthrough,
				   ARRAY_LEN(vm_fd_cmds_passthrough));
	for (unsigned i = 0; i < n && !ret; i++)
		ret = allow_ioctls(ctx, a, calls[i].fd, &calls[i].cmd, 1);
	return ret;
}

static int add_rules(scmp_filter_ctx ctx, struct vm *vm, enum vm_thread_kind kind,
		     struct vm_vcpu *v, struct allowed *a)
{
	const struct thread_rules *rules = &thread_rules[kind];
	const struct scmp_arg_cmp own_process =
		SCMP_A0(SCMP_CMP_MASKED_EQ, LOW32, (uint64_t)getpid());
	const struct scmp_arg_cmp tcgets = SCMP_A1(SCMP_CMP_MASKED_EQ, LOW32, (uint64_t)TCGETS);
	const struct scmp_arg_cmp stdin_tcsetsf[] = {
		SCMP_A0(SCMP_CMP_MASKED_EQ, LOW32, (uint64_t)STDIN_FILENO),
		SCMP_A1(SCMP_CMP_MASKED_EQ, LOW32, (uint64_t)TCSETSF),
	};
	const struct scmp_arg_cmp task_dir =
		SCMP_A0(SCMP_CMP_MASKED_EQ, LOW32, (uint64_t)vm->task_dir_fd);
	int ret;

	ret = allow_list(ctx, common_calls, a);
	if (!ret)
		ret = allow_list(ctx, rules->calls, a);
#ifdef LOCKSTEP_SANITIZE
	if (!ret)
		ret = allow_list(ctx, sanitizer_calls, a);
#endif
	if (!ret)
		ret = allow_memory(ctx, a);
	/* Signals to its own threads only (kicks; abort()). */
	if (!ret)
		ret = allow_if(ctx, a, SCMP_SYS(tgkill), 1, &own_process);
	if (!ret)
		ret = allow_ioctls(ctx, a, hv_vm_fd(vm->hv), rules->vm_cmds, rules->nr_vm_cmds);
	if (!ret && v)
		ret = allow_ioctls(ctx, a, hv_vcpu_fd(v->hv), vcpu_fd_cmds,
				   ARRAY_LEN(vcpu_fd_cmds));
	if (!ret)
		ret = allow_passthrough(ctx, vm, kind, a);
	if (ret || kind != VM_THREAD_CONTROL)
		return ret;
	/* stdio asks whether stdout and stderr are terminals. */
	ret = allow_if(ctx, a, SCMP_SYS(ioctl), 1, &tcgets);
	/* --console on a terminal: its mode is restored at the end (vm_console_fini). */
	if (!ret)
		ret = allow_if(ctx, a, SCMP_SYS(ioctl), 2, stdin_tcsetsf);
	/* Run-state samples: /proc/self/task/TID/stat of its own threads, nothing else. */
	if (!ret && vm->task_dir_fd >= 0)
		ret = allow_if(ctx, a, SCMP_SYS(openat), 1, &task_dir);
	return ret;
}

/* libseccomp 2.5 exports BPF to a descriptor only: through a memfd into memory. */
static int export_bpf(scmp_filter_ctx ctx, struct vm_filter *f)
{
	int fd = memfd_create("lockstep-seccomp", MFD_CLOEXEC);
	off_t size;
	int ret;

	if (fd < 0)
		return -errno;
	ret = seccomp_export_bpf(ctx, fd);
	size = ret ? 0 : lseek(fd, 0, SEEK_END);
	if (!ret && (size <= 0 || size % (off_t)sizeof(struct sock_filter)))
		ret = -EPROTO;
	if (!ret) {
		f->prog.filter = malloc((size_t)size);
		f->prog.len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
		if (!f->prog.filter)
			ret = -ENOMEM;
		else if (pread(fd, f->prog.filter, (size_t)size, 0) != size)
			ret = -EIO;
	}
	close(fd);
	return ret;
}

int vm_seccomp_build(struct vm *vm, enum vm_thread_kind kind, struct vm_vcpu *v,
		     struct vm_filter **out, unsigned *count)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	struct allowed allowed = { .n = 0 };
	struct vm_filter *f;
	int ret;

	*count = 0;
	if (!ctx)
		return -ENOMEM;
	f = calloc(1, sizeof(*f));
	if (!f) {
		seccomp_release(ctx);
		return -ENOMEM;
	}
	ret = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (!ret) /* a binary tree of system call numbers rather than a linear chain */
		seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	if (!ret)
		ret = add_rules(ctx, vm, kind, v, &allowed);
	if (!ret)
		ret = export_bpf(ctx, f);
	*count = allowed.n;
	seccomp_release(ctx);
	if (ret) {
		vm_seccomp_free(f);
		return ret;
	}
	*out = f;
	return 0;
}

int vm_seccomp_install(const struct vm_filter *f)
{
	/* no_new_privs is already set (vm_jail_enter), as an unprivileged filter requires. */
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &f->prog) < 0)
		return -errno;
	return 0;
}

void vm_seccomp_free(struct vm_filter *f)
{
	if (!f)
		return;
	free(f->prog.filter);
	free(f);
}

/* Decimal digits of v into buf (no terminator); returns their count.  Async-signal-safe. */
static size_t put_uint(char *buf, unsigned v)
{
	char tmp[12];
	size_t n = 0, len;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < sizeof(tmp));
	len = n;
	while (n)
		*buf++ = tmp[--n];
	return len;
}

static size_t put_str(char *buf, const char *s)
{
	size_t n = strlen(s);

	memcpy(buf, s, n);
	return n;
}

/* Only async-signal-safe calls, and only ones every filter allows. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	char rec[128], line[128];
	unsigned nr = (unsigned)si->si_syscall;
	size_t n = 0, m = 0;

	n += put_str(rec + n, "{\"reason\":\"seccomp\",\"syscall\":");
	n += put_uint(rec + n, nr);
	n += put_str(rec + n, ",\"status\":");
	n += put_uint(rec + n, VM_EXIT_SECCOMP);
	n += put_str(rec + n, "}\n");
	if (syscall(SYS_pwrite64, VM_REPORT_FD, rec, n, 0) == (long)n)
		syscall(SYS_ftruncate, VM_REPORT_FD, n);
	m += put_str(line + m, "lockstep-vm: seccomp: system call ");
	m += put_uint(line + m, nr);
	m += put_str(line + m, " is not allowed here; the VM stops\n");
	syscall(SYS_write, STDERR_FILENO, line, m);
	syscall(SYS_exit_group, VM_EXIT_SECCOMP);
}

int vm_seccomp_trap_init(void)
{
	struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };

	sigemptyset(&sa.sa_mask);
	sigfillset(&sa.sa_mask); /* nothing else runs on this thread while it reports */
	return sigaction(SIGSYS, &sa, NULL) < 0 ? -errno : 0;
}
