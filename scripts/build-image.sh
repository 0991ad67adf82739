#!/bin/sh
# Build the lambdabox image from binaries built outside it (no toolchain in
# the image): BIN (the controller), INIT (the static lambdabox-init), TAG.
# The context holds only the recipe and the two binaries, not the source tree.
set -eu
BIN=${BIN:-target/release/lambdabox}
INIT=${INIT:-target/release/lambdabox-init}
TAG=${TAG:-lambdabox/lambdabox:latest}
for f in "$BIN" "$INIT"; do
    [ -x "$f" ] || { echo "build-image: $f is missing; run make build" >&2; exit 1; }
done
docker image inspect lambdabox/base:bookworm >/dev/null 2>&1 || {
    echo "build-image: lambdabox/base:bookworm is missing; run lambdabox images build python3.11" >&2
    exit 1
}
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp images/lambdabox/Dockerfile "$context/"
cp "$INIT" "$context/lambdabox-init"
# Symbols are half the controller's size and of no use in CI.
strip -o "$context/lambdabox" "$BIN" 2>/dev/null || cp "$BIN" "$context/lambdabox"
# The classic builder: the engine's own, with no buildx plugin needed.
DOCKER_BUILDKIT=0 docker build --quiet -t "$TAG" "$context" >/dev/null
echo "$TAG built"
