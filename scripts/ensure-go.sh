#!/bin/sh
# A Go toolchain for the tests (tests/it/common/bootstrap.rs builds the Go
# conformance fixture with it): the one on PATH or in /usr/local/go, else
# Debian's golang-go. An older Go fetches the release the fixture's go.mod
# asks for from the Go module proxy by itself (GOTOOLCHAIN=auto).
set -eu
if command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ]; then
    exit 0
fi
echo "installing Debian's golang-go for the tests (once)" >&2
if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
$SUDO apt-get install -y golang-go >&2 || { $SUDO apt-get update >&2 && $SUDO apt-get install -y golang-go >&2; }
