#!/bin/sh
# What `make test-k8s` needs beyond Docker (scripts/k8s-testbed.sh): jq and
# gcc with a static libc for the build (Kubernetes' scripts, the pause
# program), dpkg-source to unpack Debian's source package, the keyring its
# own apt sources list is signed with, and for `up`: curl, openssl, ip,
# nsenter/unshare/setsid. Installs from Debian what is missing.
set -eu
missing=
need() { command -v "$1" >/dev/null 2>&1 || missing="$missing $2"; }
need jq jq
need gcc gcc
need dpkg-source dpkg-dev
need curl curl
need openssl openssl
need ip iproute2
need nsenter util-linux
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || missing="$missing libc6-dev"
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || missing="$missing debian-archive-keyring"
[ -z "$missing" ] && exit 0
echo "installing Debian's$missing for the Kubernetes testbed (once)" >&2
# shellcheck disable=SC2086 # a list of package names
sh "$(dirname "$0")/apt-install.sh" $missing
