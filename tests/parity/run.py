"""Replay the parity cases (cases/*.json) through boto3 against a running
lambdabox and compare each answer with what AWS answered (see README.md
here for the case format). Prints one JSON line per case, then a summary
line; exits 1 when a case's answer differs.

Environment: PARITY_ENDPOINT (http://127.0.0.1:PORT), AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY; PARITY_REGION and PARITY_ACCOUNT default to
lambdabox's us-east-1 and 000000000000; PARITY_ONLY runs the cases whose
name contains it.
"""

import glob
import io
import json
import os
import re
import sys
import zipfile

import boto3
import botocore.config
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
REGION = os.environ.get("PARITY_REGION", "us-east-1")
ACCOUNT = os.environ.get("PARITY_ACCOUNT", "000000000000")
FUNCTION = "parity-fn"
FUNCTION2 = "parity-fn-2"
LAYER = "parity-layer"
HANDLER = "def handler(event, context):\n    return event\n"


def zip_of(name, data):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, data)
    return buf.getvalue()


CODE = zip_of("app.py", HANDLER)
WORDS = {
    "account": ACCOUNT,
    "region": REGION,
    "fn": FUNCTION,
    "fn2": FUNCTION2,
    "layer": LAYER,
    "layer_arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{LAYER}",
}


def text(s):
    """Placeholders inside a string: {account}, {rep:CHAR:N}, ..."""
    s = re.sub(r"\{rep:(.):(\d+)\}", lambda m: m.group(1) * int(m.group(2)), s)
    return re.sub(r"\{(account|region|fn2|fn|layer|layer_arn)\}", lambda m: WORDS[m.group(1)], s)


def value(v):
    """A parameter: placeholders that stand for bytes, else text."""
    if isinstance(v, dict):
        return {k: value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [value(x) for x in v]
    if not isinstance(v, str):
        return v
    if v == "{zip}":
        return CODE
    if m := re.fullmatch(r"\{bytes:(.*)\}", v):
        return m.group(1).encode()
    if m := re.fullmatch(r"\{bytes_len:(\d+)\}", v):
        return b"0" * int(m.group(1))
    if m := re.fullmatch(r"\{zip_unzipped:(\d+)\}", v):
        return zip_of("big.bin", b"\0" * int(m.group(1)))
    return text(v)


def answer(client, operation, params):
    """The response as botocore parses it, errors included; a streamed
    payload read and decoded."""
    try:
        out = getattr(client, operation)(**params)
    except ClientError as e:
        return e.response
    if "Payload" in out:
        raw = out["Payload"].read()
        out["Payload"] = json.loads(raw) if raw else None
    return out


def at(doc, path):
    for part in path.split("."):
        if isinstance(doc, list):
            part = int(part)
            if part >= len(doc):
                raise KeyError(path)
        elif not isinstance(doc, dict) or part not in doc:
            raise KeyError(path)
        doc = doc[part]
    return doc


def mismatches(expect, got):
    """What differs between an expectation and an answer."""
    found = []
    meta = got.get("ResponseMetadata", {})
    if not meta.get("RequestId"):
        found.append("no x-amzn-RequestId")
    if meta.get("HTTPStatusCode") != expect["status"]:
        found.append(f"status {meta.get('HTTPStatusCode')}, AWS {expect['status']}")
    error = got.get("Error", {})
    if "code" in expect and error.get("Code") != expect["code"]:
        found.append(f"code {error.get('Code')}, AWS {expect['code']}")
    if "message_contains" in expect and text(expect["message_contains"]) not in (error.get("Message") or ""):
        found.append(f"message {error.get('Message')!r} lacks {text(expect['message_contains'])!r}")
    for key, want in expect.get("body", {}).items():
        if got.get(key) != text(want):
            found.append(f"body {key}={got.get(key)!r}, AWS {text(want)!r}")
    found += [f"no {k}" for k in expect.get("keys", []) if k not in got]
    found += [f"unexpected {k}" for k in expect.get("absent", []) if k in got]
    for path in expect.get("absent_fields", []):
        try:
            found.append(f"unexpected {path}={at(got, path)!r}")
        except KeyError:
            pass
    for path, want in expect.get("fields", {}).items():
        try:
            have = at(got, path)
        except KeyError:
            found.append(f"no {path}")
            continue
        if isinstance(want, dict) and "endswith" in want:
            ok = str(have).endswith(want["endswith"])
        elif isinstance(want, dict) and "length" in want:
            ok = len(have) == want["length"]
        elif isinstance(want, dict) and "keys" in want:
            ok = sorted(have) == sorted(want["keys"])
        else:
            want = json.loads(text(json.dumps(want)))
            ok = have == want
        if not ok:
            found.append(f"{path}={have!r}, AWS {want!r}")
    return found


def set_up(client):
    for name in (FUNCTION, FUNCTION2):
        client.create_function(
            FunctionName=name, Runtime="python3.11", Handler="app.handler",
            Role=f"arn:aws:iam::{ACCOUNT}:role/parity", Code={"ZipFile": CODE},
        )
    client.publish_layer_version(LayerName=LAYER, Content={"ZipFile": CODE}, CompatibleRuntimes=["python3.11"])


def main():
    config = botocore.config.Config(
        retries={"max_attempts": 1, "mode": "standard"}, parameter_validation=False,
        read_timeout=120, connect_timeout=10,
    )
    client = boto3.client("lambda", endpoint_url=os.environ["PARITY_ENDPOINT"], region_name=REGION, config=config)
    set_up(client)
    only = os.environ.get("PARITY_ONLY", "")
    counts = {"pass": 0, "fail": 0, "deliberate": 0}
    for path in sorted(glob.glob(os.path.join(HERE, "cases", "*.json"))):
        for case in json.load(open(path)):
            if only not in case["name"]:
                continue
            got = answer(client, case["operation"], value(case["params"]))
            deliberate = case.get("deliberate")
            found = mismatches(deliberate["expect"] if deliberate else case["expect"], got)
            result = "fail" if found else ("deliberate" if deliberate else "pass")
            counts[result] += 1
            line = {"case": f"{os.path.basename(path)}:{case['name']}", "result": result}
            if found:
                line["differences"] = found
                line["source"] = case["source"]
            print(json.dumps(line), flush=True)
    print(json.dumps({"summary": counts}), flush=True)
    sys.exit(1 if counts["fail"] else 0)


if __name__ == "__main__":
    main()
