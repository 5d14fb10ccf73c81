/*
 * Prints this CPU's CPUID leaves in the recording format the host check's unit tests read
 * (host_cpuid_parse): the CPUID part of a recording made with record.py.
 */
#include <stdio.h>

#include "host/host.h"

int main(void)
{
	struct host_cpuid c;

	host_cpuid_read(&c);
	host_cpuid_print(&c, stdout);
	return 0;
}
