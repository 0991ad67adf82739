#!/bin/sh
# Make sure a Docker Engine is installed and answering, for `make run`,
# `make test` and CI. On a fresh Debian/Ubuntu box this installs Debian's
# docker.io (and debootstrap, used to build the base image when no container
# registry can be reached), then starts dockerd.
set -eu

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "ensure-docker: need root (or sudo) to install and start Docker" >&2; exit 1
    fi
fi

missing=""
command -v dockerd >/dev/null 2>&1 || missing="$missing docker.io"
command -v debootstrap >/dev/null 2>&1 || missing="$missing debootstrap"
if [ -n "$missing" ]; then
    echo "ensure-docker: installing$missing (apt-get)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

# `docker version` rather than `docker info`: info waits on every
# container's lock, so one stuck container makes a healthy daemon look
# down; and bounded, so a daemon that stopped answering fails this script
# instead of hanging it.
docker_ok() { $SUDO timeout 20 docker version >/dev/null 2>&1; }
if docker_ok; then
    exit 0
fi

echo "ensure-docker: starting dockerd"
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl start docker || true
fi
if ! docker_ok; then
    $SUDO sh -c 'nohup dockerd >/var/log/lambdabox-dockerd.log 2>&1 &'
fi
i=0
until docker_ok; do
    i=$((i + 1))
    if [ "$i" -gt 60 ]; then
        echo "ensure-docker: dockerd did not come up; see /var/log/lambdabox-dockerd.log" >&2
        exit 1
    fi
    sleep 0.5
done
echo "ensure-docker: Docker is running"
