# A thin wrapper over CMake: CMake is the build.
JOBS ?= $(shell nproc)
RELEASE := build/release
ASAN := build/asan

.PHONY: all deps build build-asan test fuzz demo demo-once bench bench-quick bench-build bench-worker \
	clean package test-deploy demo-compose

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

# Benchmarks (bench/run.sh): an optimised build, the peer proxies and the load generators.
bench-build:
	@bash scripts/install-deps.sh --bench
	cmake -S . -B $(RELEASE) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(RELEASE) -j $(JOBS)

# The full run (5 rounds, about 30 minutes); its tables go to bench/results/<date>-<host>.txt.
bench: bench-build
	bash bench/run.sh --out bench/results/$$(date -u +%Y-%m-%d)-$$(hostname -s).txt

# Two short rounds (about 3 minutes), also CI's smoke test: no thresholds.
bench-quick: bench-build
	bash bench/run.sh --quick

# The Debian package (CPack): CPU-only binaries for /usr, units, examples, docs.
PACKAGE := build/package
package: deps
	cmake -S . -B $(PACKAGE) -DCMAKE_BUILD_TYPE=Release -DCCGATE_CUDA=OFF -DCMAKE_INSTALL_PREFIX=/usr
	cmake --build $(PACKAGE) -j $(JOBS) --target ccgate ccgate-client ccgate-server ccgate-worker \
		ccgate-kbs cg_changelog
	rm -rf $(PACKAGE)/deb
	cd $(PACKAGE) && cpack
	@ls $(PACKAGE)/deb/*.deb

# Images, compose files, the .deb, units and manifests, tested for real (scripts/test-deploy.sh).
# A Docker daemon: the one DOCKER_HOST names if it answers, else one of its own under build/.
test-deploy: package
	@bash scripts/install-deps.sh --deploy
	bash scripts/test-deploy.sh $$(ls $(PACKAGE)/deb/ccgate_*.deb)

# deploy/compose/demo.yml on the simulated TEE: a request and the verification document.
demo-compose:
	@bash scripts/install-deps.sh --deploy
	bash scripts/demo-compose.sh

# ccgate-worker beside llama.cpp on the CPU, same GGUF files (bench/llama-compare/README.md):
# prints the RATIO worker_cpu_{decode,prefill}_vs_llamacpp lines; a few minutes here (16 generated
# tokens; `make bench-worker BENCH_WORKER_ARGS=--full` generates 64).
bench-worker: bench-build
	bash bench/llama-compare/run.sh $(BENCH_WORKER_ARGS) --out bench/results/$$(date -u +%Y-%m-%d)-llama-compare-$$(hostname -s).txt

clean:
	rm -rf build
