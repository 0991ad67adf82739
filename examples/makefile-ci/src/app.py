import json


def handler(event, context):
    # Invoked directly, the event is the payload; through the HttpApi route,
    # it is an API Gateway payload (format 2.0) with path parameters.
    name = (event.get("pathParameters") or {}).get("name") or event.get("name", "world")
    body = {"message": f"hello, {name}"}
    if "requestContext" in event:
        return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}
    return body
