# A thin wrapper over CMake: CMake is the build.
JOBS ?= $(shell nproc)
RELEASE := build/release
ASAN := build/asan

.PHONY: all deps build build-asan test fuzz demo demo-once clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	cmake -S . -B $(RELEASE) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(RELEASE) -j $(JOBS)

build-asan: deps
	cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DCCGATE_SANITIZE=ON
	cmake --build $(ASAN) -j $(JOBS)

FUZZ_SECONDS ?= 10

test: build-asan
	ctest --test-dir $(ASAN) --output-on-failure -j 2
	bash scripts/fuzz-smoke.sh $(FUZZ_SECONDS)

fuzz: deps
	bash scripts/fuzz-smoke.sh 300

demo: build
	bash scripts/demo.sh $(RELEASE)/bin

demo-once: build
	bash scripts/demo.sh --once $(RELEASE)/bin

clean:
	rm -rf build
