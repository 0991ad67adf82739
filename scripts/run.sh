#!/bin/sh
# `make run`: serve lambdabox in the foreground with examples/hello deployed.
set -eu
BIN=${BIN:-target/release/lambdabox}
ADDR=${ADDR:-127.0.0.1:9000}
ENDPOINT="http://$ADDR"

"$BIN" serve --listen "$ADDR" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid; exit 0' INT TERM

i=0
until curl -fsS "$ENDPOINT/lambdabox/v1/health" >/dev/null 2>&1; do
    i=$((i + 1))
    if ! kill -0 "$pid" 2>/dev/null || [ "$i" -gt 100 ]; then
        echo "lambdabox did not start; see the log above" >&2
        exit 1
    fi
    sleep 0.1
done

# The CLI signs with the key pair serve generated in its data directory.
"$BIN" --endpoint "$ENDPOINT" deploy hello --runtime python3.11 --handler app.handler --code examples/hello >/dev/null
"$BIN" --endpoint "$ENDPOINT" invoke hello --payload '{"name":"lambdabox"}' >/dev/null

cat <<MSG

lambdabox is serving on $ENDPOINT with the function 'hello' deployed.
Requests must be signed (SigV4) with this key pair; for the AWS CLI and SDKs:

MSG
"$BIN" --endpoint "$ENDPOINT" credentials | sed 's/^/  /'
cat <<MSG

  (or: eval "\$($BIN --endpoint $ENDPOINT credentials)")

  aws lambda invoke --function-name hello --payload '{"name":"Ada"}' out.json && cat out.json
      (AWS CLI v2: add --cli-binary-format raw-in-base64-out)
  curl -s --aws-sigv4 aws:amz:us-east-1:lambda --user "\$AWS_ACCESS_KEY_ID:\$AWS_SECRET_ACCESS_KEY" \\
      -X POST $ENDPOINT/2015-03-31/functions/hello/invocations -d '{"name":"Ada"}'
  $BIN invoke hello --payload '{"name":"Ada"}'

Press Ctrl-C to stop; lambdabox removes its containers on the way out.
MSG
wait $pid
