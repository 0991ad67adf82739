#!/bin/sh
# apt-install.sh PACKAGE...: install Debian packages the set-up scripts need
# (as root, or through sudo), without recommends and without prompts. The
# package lists are refreshed only when the first try fails: a fresh
# machine's lists may be missing or stale, a set-up one's are fine as they are.
set -eu
[ "$#" -gt 0 ] || exit 0
if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y --no-install-recommends "$@" >&2 ||
    { $SUDO apt-get update >&2 && $SUDO apt-get install -y --no-install-recommends "$@" >&2; }
