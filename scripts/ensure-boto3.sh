#!/bin/sh
# A Python with boto3 for the tests (tests/it/auth.rs signs requests with real
# boto3): a virtual environment under target/, made once. Progress goes to
# stderr; stdout gets the interpreter's path.
set -eu
cd "$(dirname "$0")/.."
VENV=target/pyenv
if ! "$VENV/bin/python" -c 'import boto3' >/dev/null 2>&1; then
    echo "installing boto3 into $VENV for the tests (once)" >&2
    rm -rf "$VENV"
    python3 -m venv "$VENV" >&2
    "$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar on boto3 >&2
fi
echo "$PWD/$VENV/bin/python"
