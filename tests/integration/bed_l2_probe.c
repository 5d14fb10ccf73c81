/*
 * A static program for the test bed's L2 Linux guests (bed_l2_linux.py packs it into an
 * initramfs): prints what the guest sees of its hypervisor -- the online CPUs, the CPUID
 * hypervisor signature (leaf 0x40000000) and KVM's paravirtual feature bits (leaf
 * 0x40000001 EAX) -- as one "l2: key=value ..." line.  Built with -static: the initramfs
 * has no shared libraries.
 */
#include <cpuid.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	unsigned int eax, ebx, ecx, edx;
	char signature[13] = "";
	unsigned int features = 0;

	__cpuid(1, eax, ebx, ecx, edx);
	if (ecx & (1u << 31)) { /* the hypervisor-present bit */
		__cpuid(0x40000000, eax, ebx, ecx, edx);
		memcpy(signature, &ebx, 4);
		memcpy(signature + 4, &ecx, 4);
		memcpy(signature + 8, &edx, 4);
		if (!strcmp(signature, "KVMKVMKVM")) {
			__cpuid(0x40000001, eax, ebx, ecx, edx);
			features = eax;
		}
	}
	printf("l2: cpus=%ld hypervisor=%s kvm_features=0x%x\n", sysconf(_SC_NPROCESSORS_ONLN),
	       signature[0] ? signature : "none", features);
	return 0;
}
