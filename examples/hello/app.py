"""The example function `make run` deploys: a greeting that echoes its event."""

import os


def handler(event, context):
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    return {
        "message": f"Hello, {name}!",
        "function": context.function_name,
        "request_id": context.aws_request_id,
        "runtime": os.environ.get("AWS_EXECUTION_ENV"),
        "event": event,
    }
