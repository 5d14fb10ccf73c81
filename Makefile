# lockstep — top-level entry points.  Quick start on a fresh Debian 12 machine, as root:
#   make demo    install what is missing, build, and show an SMP VM at work
#   make check   install what is missing, build, and run the whole test suite
# Everything else is plain CMake + ctest in build/ (and build-asan/, build-fuzz/).

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all deps deps-build build asan fuzz demo check check-unit check-asan check-fuzz \
	check-build-types check-layering check-includes check-calls format format-check clean \
	worker-user deb

all: build

deps:
	@scripts/deps.sh test

deps-build:
	@scripts/deps.sh build

# The build trees the test suite runs in carry the workers' test hooks (LOCKSTEP_TEST_HOOKS);
# a build that gets installed leaves them out.
$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOCKSTEP_TEST_HOOKS=ON $(CMAKE_ARGS)

build: deps-build $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

$(ASAN_BUILD)/CMakeCache.txt:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DLOCKSTEP_SANITIZE=ON \
		-DLOCKSTEP_TEST_HOOKS=ON $(CMAKE_ARGS)

asan: deps $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j $(JOBS)

$(FUZZ_BUILD)/CMakeCache.txt:
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DLOCKSTEP_FUZZ=ON -DLOCKSTEP_GUEST=OFF $(CMAKE_ARGS)

fuzz: deps $(FUZZ_BUILD)/CMakeCache.txt
	cmake --build $(FUZZ_BUILD) -j $(JOBS)

# VM workers run as an unprivileged system user (docs/security.md); created where missing.
worker-user:
	@scripts/worker-user.sh

demo: build worker-user
	@scripts/demo.sh $(BUILD)

# The Debian package (dpkg-buildpackage in a copy of the tree): build-deb/lockstep_*.deb.
deb:
	@scripts/deps.sh deb
	@scripts/mkdeb.sh build-deb

# The whole suite: the normal build, the same tests under ASan/UBSan, a fuzz smoke run of
# every libFuzzer target, the formatting check and the layering checks.
check: deps worker-user
	@$(MAKE) --no-print-directory build
	ctest --test-dir $(BUILD) --output-on-failure -j 2
	@$(MAKE) --no-print-directory check-asan check-fuzz format-check check-layering

check-unit: build
	ctest --test-dir $(BUILD) -L unit --output-on-failure -j $(JOBS)

check-asan: asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --test-dir $(ASAN_BUILD) --output-on-failure -j 2

check-fuzz: fuzz
	ctest --test-dir $(FUZZ_BUILD) --output-on-failure -j 2

# Every build type a user may pick builds with -Werror (the optimisers warn differently).
check-build-types: deps-build
	@for t in Debug Release MinSizeRel; do \
		cmake -S . -B $(BUILD)-$$t -DCMAKE_BUILD_TYPE=$$t $(CMAKE_ARGS) >/dev/null && \
		cmake --build $(BUILD)-$$t -j $(JOBS) >/dev/null && echo "build type $$t: ok" || \
		{ echo "build type $$t: failed (see $(BUILD)-$$t)"; exit 1; }; done

# The build enforces the layering (per-target include roots); here, that includes name headers
# from the repository root, so that no path relative to the including file bypasses them, and
# that lockstepd's files call each other in no circle.
check-layering: check-includes check-calls

check-includes:
	@scripts/check_includes.py

check-calls:
	@scripts/check_calls.py daemon daemon/rpc daemon/virt

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

format-check:
	@bad=$$(git ls-files '*.c' '*.h' | while read f; do \
		clang-format --dry-run -Werror "$$f" >/dev/null 2>&1 || echo "$$f"; done); \
	if [ -n "$$bad" ]; then echo "not clang-formatted (run make format):"; echo "$$bad"; \
		exit 1; fi; echo "format: ok"

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(BUILD)-Debug $(BUILD)-Release $(BUILD)-MinSizeRel \
		build-deb
