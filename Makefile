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

.PHONY: all build init docker images run test unit lint fmt clean

all: build

build: init
	$(CARGO) build --release --bin lambdabox

# Built for an explicit --target so its static RUSTFLAGS never touch the controller's build.
init:
	RUSTFLAGS="$(INIT_FLAGS)" $(CARGO) build --release -p lambdabox-init --target $(TARGET)
	mkdir -p target/release
	cp target/$(TARGET)/release/lambdabox-init $(INIT)

docker:
	sh scripts/ensure-docker.sh

images: build docker
	$(BIN) images build

run: images
	BIN=$(BIN) ADDR=$(ADDR) sh scripts/run.sh

# Tests use the debug build cargo test makes anyway; images are built first so
# their progress shows here rather than inside a test.
test: init docker
	$(CARGO) build --bin lambdabox
	target/debug/lambdabox images build
	LAMBDABOX_INIT=$(CURDIR)/$(INIT) $(CARGO) test --workspace -- --test-threads=4

unit:
	$(CARGO) test --workspace --lib --bins

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
