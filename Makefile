# The two commands a new user types are `make demo` and `make test`; each
# installs what is missing (scripts/install-deps.sh), configures and builds.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
PREFIX     ?= /usr/local
CTEST_ARGS ?=

.PHONY: all build deps demo test test-unit test-fast test-asan bench install clean format

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

demo: build
	@scripts/demo.sh $(BUILD)

# Normal build, then an AddressSanitizer + UndefinedBehaviorSanitizer build;
# ctest runs the whole suite on both.
test:
	@scripts/install-deps.sh --with-test
	@$(MAKE) --no-print-directory test-fast
	@$(MAKE) --no-print-directory test-asan

# The unit tests alone (ctest label `unit`: no process started, each a few
# seconds), in the normal build: well under a minute once it is built.
test-unit:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)
	cd $(BUILD) && ctest -L '^unit$$' --output-on-failure $(CTEST_ARGS)

test-fast:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)
	cd $(BUILD) && ctest --output-on-failure $(CTEST_ARGS)

test-asan:
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DLLMOS_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ctest --output-on-failure $(CTEST_ARGS)

bench:
	@scripts/install-deps.sh --with-bench
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)
	@scripts/bench.sh $(BUILD)

install: build
	cmake --install $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
