import json
import os

import six  # from PyPI, installed by `lambdabox up`
from shared import greet  # from the layer

VERSION = "v1"


def handler(event, context):
    item = (event.get("pathParameters") or {}).get("id")
    body = {
        "message": greet(os.environ.get("GREETING", "Hi"), item or "world"),
        "six": six.__version__,
        "version": VERSION,
        "stage": os.environ.get("STAGE"),
        "route": event.get("routeKey"),
    }
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}
