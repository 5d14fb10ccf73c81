/*
 * lockstep host check [--json] [--verbose]: what this host's virtualization can do for SMP
 * guests, one line per fact (verdict, fact, value, source), grouped; under each fact that
 * warns or fails, what it means and the fix (--verbose: under every fact, with details).
 */
#include <stdio.h>
#include <string.h>

#include "clients/cli.h"

#define WRAP_COLUMNS 100
#define INDENT 8

/* Prints `label` and `text` indented, wrapped at word boundaries. */
static void wrapped(const char *label, const char *text)
{
	int width = INDENT + (int)strlen(label);
	int col = printf("%*s%s", INDENT, "", label);
	bool first = true;

	while (*text) {
		const char *end = strchr(text, ' ');
		int len;

		if (!end)
			end = text + strlen(text);
		len = (int)(end - text);
		if (!first && col + 1 + len > WRAP_COLUMNS)
			col = printf("\n%*s", width, "") - 1;
		else if (!first)
			col += printf(" ");
		col += printf("%.*s", len, text);
		first = false;
		text = *end ? end + 1 : end;
	}
	putchar('\n');
}

static const char *group_title(const char *group)
{
	static const char *const titles[][2] = {
		{ "kvm", "KVM" },    { "cpu", "CPU and TSC" }, { "topology", "Topology" },
		{ "mem", "Memory" }, { "iommu", "IOMMU" },     { "sandbox", "Worker sandbox" },
	};

	for (size_t i = 0; i < sizeof(titles) / sizeof(titles[0]); i++)
		if (strcmp(group, titles[i][0]) == 0)
			return titles[i][1];
	return group;
}

static const char *upper_verdict(const char *v)
{
	return strcmp(v, "pass") == 0 ? "PASS" :
	       strcmp(v, "warn") == 0 ? "WARN" :
	       strcmp(v, "fail") == 0 ? "FAIL" :
					"n/a";
}

static void print_fact(json_t *f, bool verbose)
{
	const char *verdict = str(f, "verdict");
	bool explain = verbose || strcmp(verdict, "warn") == 0 || strcmp(verdict, "fail") == 0;
	size_t i;
	json_t *d;

	printf("  %-4s  %-25s %s  [%s]\n", upper_verdict(verdict), str(f, "id"), str(f, "value"),
	       str(f, "source"));
	if (!explain)
		return;
	wrapped("why: ", str(f, "meaning"));
	if (json_string_value(json_object_get(f, "fix")))
		wrapped("fix: ", str(f, "fix"));
	if (verbose)
		json_array_foreach(json_object_get(f, "details"), i, d)
			wrapped("- ", json_string_value(d));
}

static int host_check(struct cli *cli, int argc, char **argv)
{
	bool verbose = false;
	const struct cli_opt opts[] = { { "verbose", 'v', false, NULL, &verbose }, { 0 } };
	const char *group = "";
	json_t *r, *summary, *f;
	size_t i;
	int ret;

	if ((ret = parse_args(cli, argc, argv, opts, 0, 0, NULL)) < 0)
		return -ret;
	ret = call(cli, "host.check", NULL, &r);
	if (ret)
		return ret;
	if (cli->json) {
		print_json(r);
		json_decref(r);
		return 0;
	}
	summary = json_object_get(r, "summary");
	printf("lockstep host check: %s KVM; %lld pass, %lld warn, %lld fail, %lld n/a\n",
	       str(summary, "flavour"), num(summary, "pass"), num(summary, "warn"),
	       num(summary, "fail"), num(summary, "na"));
	printf("PLE statistics %s: %s\n",
	       json_is_true(json_object_get(summary, "ple_expected")) ? "expected" : "not expected",
	       str(summary, "ple"));
	json_array_foreach(json_object_get(r, "facts"), i, f) {
		if (strcmp(group, str(f, "group")) != 0) {
			group = str(f, "group");
			printf("\n%s\n", group_title(group));
		}
		print_fact(f, verbose);
	}
	json_decref(r);
	return 0;
}

const struct command cli_host_commands[] = {
	{ "host", "check", "[--verbose]", "what this host's virtualization gives SMP guests",
	  "Prints each fact lockstep checks about this host (KVM, CPU and TSC, topology, memory,\n"
	  "IOMMU, the worker sandbox): PASS, WARN, FAIL or n/a, its value and its source; under\n"
	  "each that warns or fails, what it means and the fix (docs/host.md).\n\n"
	  "  -v, --verbose   explain every fact, with its details\n",
	  host_check },
	{ 0 },
};
