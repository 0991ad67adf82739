#!/bin/sh
# What the tests build and fetch with, beyond Rust and Docker:
# - a Go toolchain (tests/it/common/bootstrap.rs builds the Go conformance
#   fixture): the one on PATH or in /usr/local/go, else Debian's golang-go;
#   an older Go fetches the release the fixture's go.mod asks for from the
#   Go module proxy by itself (GOTOOLCHAIN=auto);
# - curl (tests/it/common/java.rs fetches checksummed jars from Maven Central);
# - Compose (tests/it/ci_image.rs runs examples/docker-compose): Debian's
#   docker-compose (v1), unless a `docker-compose` is on PATH already.
set -eu
missing=
if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
    missing="$missing golang-go"
fi
command -v curl >/dev/null 2>&1 || missing="$missing curl"
command -v docker-compose >/dev/null 2>&1 || missing="$missing docker-compose"
[ -z "$missing" ] && exit 0
echo "installing Debian's$missing for the tests (once)" >&2
# shellcheck disable=SC2086 # a list of package names
sh "$(dirname "$0")/apt-install.sh" $missing
