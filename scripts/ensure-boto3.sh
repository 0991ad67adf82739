#!/bin/sh
# A Python with boto3 and the AWS CLI (v1, from PyPI) for the tests
# (tests/it/auth.rs signs requests with real boto3; tests/it/eventbridge.rs
# drives `aws events`): a virtual environment under target/, made once. Progress goes to
# stderr; stdout gets the interpreter's path.
set -eu
cd "$(dirname "$0")/.."
VENV=target/pyenv
if ! "$VENV/bin/python" -c 'import boto3' >/dev/null 2>&1; then
    echo "installing boto3 into $VENV for the tests (once)" >&2
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV" >&2; then
        # Debian's own python3 keeps venv (and ensurepip) in a separate package.
        echo "python3 has no venv module; installing Debian's python3-venv" >&2
        rm -rf "$VENV"
        sh scripts/apt-install.sh python3-venv
        python3 -m venv "$VENV" >&2
    fi
    "$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar on boto3 awscli >&2
fi
if [ ! -x "$VENV/bin/aws" ]; then
    echo "installing the AWS CLI into $VENV for the tests (once)" >&2
    "$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar on boto3 awscli >&2
fi
echo "$PWD/$VENV/bin/python"
