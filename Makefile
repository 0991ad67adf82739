# lambdabox: `make run` serves on 127.0.0.1:9000 with examples/hello deployed;
# `make test` runs every test against a real Docker Engine. Both install and
# start Docker (Debian's docker.io) when it is missing.

CARGO   ?= cargo
TARGET  := x86_64-unknown-linux-gnu
BIN     := target/release/lambdabox
INIT    := target/release/lambdabox-init
ADDR    ?= 127.0.0.1:9000
# lambdabox-init runs inside arbitrary images: link it statically.
INIT_FLAGS := -C target-feature=+crt-static

.PHONY: all build init docker images image run test test-k8s unit lint deny-tool fmt clean bench bench-rie

all: build

build: init
	$(CARGO) build --release --bin lambdabox

# Built for an explicit --target so its static RUSTFLAGS never touch the controller's build.
init:
	RUSTFLAGS="$(INIT_FLAGS)" $(CARGO) build --release -p lambdabox-init --target $(TARGET)
	mkdir -p target/release
	cp target/$(TARGET)/release/lambdabox-init $(INIT).part && mv -f $(INIT).part $(INIT)

docker:
	sh scripts/ensure-docker.sh

images: build docker
	$(BIN) images build

# The controller as an image for Docker-based CI (lambdabox/lambdabox:latest),
# on lambdabox/base:bookworm, which building the python3.11 image ensures.
IMAGE ?= lambdabox/lambdabox:latest
image: build docker
	$(BIN) images build python3.11
	BIN=$(BIN) INIT=$(INIT) TAG=$(IMAGE) sh scripts/build-image.sh

run: images
	BIN=$(BIN) ADDR=$(ADDR) sh scripts/run.sh

# `make bench`: lambdabox against the AWS Runtime Interface Emulator on this
# machine, then cold starts per runtime (tables on stdout,
# target/bench/results.{json,png}). BENCH_ARGS=--quick for a short run.
# The RIE binary ships in the aws-sam-cli wheel on PyPI.
BENCH_CACHE := target/bench/cache
RIE_BIN     := $(BENCH_CACHE)/aws-lambda-rie
BENCH_FONT  := /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
BENCH_ARGS  ?=

bench: build docker bench-rie
	$(BIN) images build
	sh scripts/ensure-test-tools.sh
	test -f $(BENCH_FONT) || (apt-get update && apt-get install -y fonts-dejavu-core) || \
		(sudo apt-get update && sudo apt-get install -y fonts-dejavu-core)
	$(CARGO) build --release -p lambdabox-bench
	target/release/lambdabox-bench $(BENCH_ARGS)

bench-rie: $(RIE_BIN)

$(RIE_BIN):
	mkdir -p $(BENCH_CACHE)
	ls $(BENCH_CACHE)/aws_sam_cli-*.whl >/dev/null 2>&1 || \
		python3 -m pip download --no-deps --only-binary=:all: aws-sam-cli -d $(BENCH_CACHE)
	python3 -c 'import glob,sys,zipfile; z=zipfile.ZipFile(sorted(glob.glob(sys.argv[1]+"/aws_sam_cli-*.whl"))[-1]); open(sys.argv[2],"wb").write(z.read("samcli/local/rapid/aws-lambda-rie-x86_64"))' $(BENCH_CACHE) $@.part
	chmod +x $@.part
	mv $@.part $@

# Tests use the debug build cargo test makes anyway; images (and the boto3 the
# auth tests sign with, in target/pyenv, and the Go toolchain the Go fixture
# is built with) are set up first so their progress shows here rather than
# inside a test.
test: init docker
	$(CARGO) build --bin lambdabox
	target/debug/lambdabox images build
	sh scripts/ensure-boto3.sh >/dev/null
	sh scripts/ensure-test-tools.sh
	LAMBDABOX_INIT=$(CURDIR)/$(INIT) $(CARGO) test --workspace -- --test-threads=4

# `make test-k8s` (root): a real Kubernetes 1.20 in network namespaces of its
# own (scripts/k8s-testbed.sh; built once into ~/.cache/lambdabox/k8s), a
# smoke check, then the tests of the Kubernetes backend; the testbed is
# removed at the end, also on failure. Not part of `make test`; CI runs it
# after `make test` where the machine can host the testbed (`check`).
test-k8s: init docker
	sh scripts/ensure-k8s-tools.sh
	$(CARGO) build --bin lambdabox
	target/debug/lambdabox images build
	bash scripts/test-k8s.sh

unit:
	$(CARGO) test --workspace --lib --bins

lint: deny-tool
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) deny check --hide-inclusion-graph licenses bans sources

# deny.toml's checks; the tool is built from crates.io once per machine.
DENY_VERSION := 0.20.2
deny-tool:
	@$(CARGO) deny --version 2>/dev/null | grep -q "$(DENY_VERSION)" || \
		{ echo "installing cargo-deny $(DENY_VERSION) (a few minutes, once)"; \
		  $(CARGO) install cargo-deny --version $(DENY_VERSION) --locked; }

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
