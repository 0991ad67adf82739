#!/usr/bin/env bash
# Smoke check of a running testbed (`k8s-testbed.sh up`), without lambdabox:
# does the cluster serve what the Kubernetes backend needs? Through the
# apiserver's REST API with curl, it runs pods of a lambdabox runtime image
# (imagePullPolicy Never) under the security context the backend uses, that
# dial a TCP listener at the controller's address; watches them to their
# end; reads their logs; sees an OOM kill and an exit code; lets the
# scheduler place a pod; deletes them all. Prints timings.
#
# Environment: LBXK_SMOKE_IMAGE (default lambdabox/python3.11:latest; it
# needs python3).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
eval "$("$here/k8s-testbed.sh" env)"
IMAGE=${LBXK_SMOKE_IMAGE:-lambdabox/python3.11:latest}
NS=default
SEL=lambdabox.dev/smoke
work=$(mktemp -d "${TMPDIR:-/tmp}/lbxk-smoke.XXXXXX")
listener_pid=
failures=0

log() { printf '%s k8s-smoke: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { log "FAIL: $*"; failures=$((failures + 1)); }
now_ms() { date +%s%3N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1000 }'; }

# api METHOD PATH [BODY]: one call to the apiserver as the admin.
api() {
    printf '%s' "${3:-}" | curl -sSk --http1.1 --fail-with-body -X "$1" \
        -H "Authorization: Bearer $LBXK_TOKEN" -H 'Content-Type: application/json' \
        ${3:+--data-binary @-} "$LBXK_APISERVER$2"
}

cleanup() {
    set +e # all of it, whatever fails
    local f
    for f in "$work"/*.watchpid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
    [ -n "$listener_pid" ] && kill "$listener_pid" 2>/dev/null
    api DELETE "/api/v1/namespaces/$NS/pods?labelSelector=$SEL" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# The "controller": a TCP listener on the host side of the testbed's segment.
# Each connection's first bytes are logged with the time they came; the
# answer waits HOLD seconds, which keeps the pod running long enough for the
# Running phase to be seen.
python3 -u - "$LBXK_CONTROLLER_ADDR" "$work" <<'PY' &
import socket, sys, threading, time
addr, work = sys.argv[1], sys.argv[2]
srv = socket.socket()
srv.bind((addr, 0))
srv.listen(64)
out = open(work + "/listener.log", "a", buffering=1)
def serve(c, peer):
    data = b""
    while True:
        chunk = c.recv(4096)
        if not chunk:
            break
        data += chunk
    out.write("%d %s %s\n" % (time.time() * 1000, peer[0], data.decode(errors="replace")))
    time.sleep(1.5)
    c.sendall(b"ack")
    c.close()
open(work + "/port.part", "w").write(str(srv.getsockname()[1]))
import os; os.rename(work + "/port.part", work + "/port")
while True:
    c, peer = srv.accept()
    threading.Thread(target=serve, args=(c, peer), daemon=True).start()
PY
listener_pid=$!
for _ in $(seq 1 50); do [ -f "$work/port" ] && break; sleep 0.1; done
[ -f "$work/port" ] || { log "listener did not start"; exit 1; }
CONTROLLER=$LBXK_CONTROLLER_ADDR:$(cat "$work/port")
log "controller stand-in listening on $CONTROLLER; image $IMAGE"

# What a function pod does here: checks its sandbox, then dials the controller.
read -r -d '' POD_PY <<'PY' || true
import os, socket
node, (host, port) = os.environ["NODE"], os.environ["CONTROLLER"].rsplit(":", 1)
open("/tmp/probe", "w").write("x")
st = os.statvfs("/tmp")
size = st.f_blocks * st.f_frsize >> 20
print("memory /tmp writable, %d MiB: %s" % (size, "ok" if size == 64 else "BAD (sizeLimit is 64Mi)"))
try:
    open("/probe", "w")
    print("root fs writable: BAD")
except OSError as e:
    print("root fs read-only: ok (%s)" % e.strerror)
for where in (("1.1.1.1", 443), ("10.213.1.2", 6443)):
    try:
        socket.create_connection(where, timeout=1)
        print("reached %s:%d: BAD" % where)
    except OSError as e:
        print("no way to %s:%d: ok (%s)" % (where + (e.strerror or "timeout",)))
s = socket.create_connection((host, int(port)), timeout=10)
s.sendall(("hello from %s uid=%d" % (node, os.getuid())).encode())
s.shutdown(socket.SHUT_WR)
print("controller answered: " + s.recv(100).decode())
print("hello from %s uid=%d: ok" % (node, os.getuid()))
PY

# pod_json NAME NODE MEMORY COMMAND-JSON: the pod spec the backend will use:
# non-root uid, read-only root, no capabilities, no privilege escalation, a
# memory-backed /tmp, memory and CPU limits; NODE empty lets the scheduler
# choose.
pod_json() {
    jq -n --arg name "$1" --arg node "$2" --arg mem "$3" --argjson cmd "$4" \
        --arg image "$IMAGE" --arg ctl "$CONTROLLER" --arg sel "$SEL" '{
      apiVersion: "v1", kind: "Pod",
      metadata: {name: $name, labels: {($sel): "1"}},
      spec: ({
        restartPolicy: "Never", automountServiceAccountToken: false,
        enableServiceLinks: false, dnsPolicy: "Default", terminationGracePeriodSeconds: 1,
        securityContext: {runAsUser: 993, runAsGroup: 993, runAsNonRoot: true},
        containers: [{
          name: "fn", image: $image, imagePullPolicy: "Never", command: $cmd,
          env: [{name: "CONTROLLER", value: $ctl},
                {name: "NODE", valueFrom: {fieldRef: {fieldPath: "spec.nodeName"}}}],
          securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false,
                            capabilities: {drop: ["ALL"]}},
          resources: {limits: {memory: $mem, cpu: "500m"}},
          volumeMounts: [{name: "tmp", mountPath: "/tmp"}]}],
        volumes: [{name: "tmp", emptyDir: {medium: "Memory", sizeLimit: "64Mi"}}]
      } + (if $node == "" then {} else {nodeName: $node} end))}'
}

# A watch per pod, streamed to a file from before its creation, so that
# every phase it passes is seen when the apiserver reports it.
create() {
    local name=$1
    curl -sNk --http1.1 -H "Authorization: Bearer $LBXK_TOKEN" \
        "$LBXK_APISERVER/api/v1/namespaces/$NS/pods?watch=1&fieldSelector=metadata.name%3D$name&timeoutSeconds=180" \
        >"$work/$name.watch" 2>/dev/null &
    echo $! >"$work/$name.watchpid"
    sleep 0.1 # the watch is open before the pod exists
    now_ms >"$work/$name.t0"
    api POST "/api/v1/namespaces/$NS/pods" "$(pod_json "$@")" >/dev/null
}

# state NAME: "PHASE REASON EXIT NODE" of the latest event of NAME's watch.
state() {
    jq -r '.object | [.status.phase,
        ((.status.containerStatuses // [])[0].state.terminated.reason // "-"),
        ((.status.containerStatuses // [])[0].state.terminated.exitCode // "-"),
        (.spec.nodeName // "-")] | join(" ")' <"$work/$1.watch" 2>/dev/null | tail -n1
}

# await NAME REGEX SECONDS: until NAME's state matches; prints the seconds
# since its creation.
await() {
    local deadline=$(($(date +%s) + $3)) st
    while :; do
        st=$(state "$1")
        if echo "$st" | grep -Eq "$2"; then
            secs "$(cat "$work/$1.t0")" "$(now_ms)"
            return 0
        fi
        [ "$(date +%s)" -lt "$deadline" ] || { log "$1: last state '$st'"; return 1; }
        sleep 0.05
    done
}

connected_after() { # NAME NODE: seconds from create to the controller's accept
    local t
    t=$(grep " hello from $2 " "$work/listener.log" | tail -n1 | cut -d' ' -f1)
    [ -n "$t" ] && secs "$(cat "$work/$1.t0")" "$t"
}

check_logs() { # NAME NODE
    local out
    out=$(api GET "/api/v1/namespaces/$NS/pods/$1/log") || { fail "$1: logs not readable"; return; }
    printf '%s\n' "$out" | sed "s/^/    $1| /" >&2
    echo "$out" | grep -q "hello from $2 uid=993: ok" || fail "$1: no hello in the logs"
    echo "$out" | grep -q "BAD" && fail "$1: sandbox check failed"
    [ "$(echo "$out" | grep -c ': ok')" -ge 5 ] || fail "$1: a sandbox check is missing"
}

PY_CMD=$(jq -n --arg py "$POD_PY" '["python3", "-c", $py]')

# 1. One pod pinned to each node: Running, the controller reached, Succeeded.
for node in $LBXK_NODES; do
    name=smoke-$node
    log "$name: create (nodeName $node)"
    create "$name" "$node" 128Mi "$PY_CMD"
    t_run=$(await "$name" '^Running ' 60) || { fail "$name: never Running"; continue; }
    t_done=$(await "$name" '^(Succeeded|Failed) ' 60) || { fail "$name: never finished"; continue; }
    st=$(state "$name")
    [ "${st%% *}" = Succeeded ] || fail "$name: ended '$st'"
    t_conn=$(connected_after "$name" "$node") || { fail "$name: the controller was not reached"; t_conn=-; }
    log "$name: create→Running ${t_run}s, →controller reached ${t_conn}s, →${st%% *} ${t_done}s"
    check_logs "$name" "$node"
    echo "pod_running_s[$node]=$t_run pod_connected_s[$node]=$t_conn" >>"$work/timings"
done

# 2. No nodeName: the scheduler binds it.
log "smoke-sched: create (no nodeName)"
create smoke-sched "" 128Mi "$PY_CMD"
if t_run=$(await smoke-sched '^Running ' 60) && await smoke-sched '^Succeeded ' 60 >/dev/null; then
    node=$(state smoke-sched | cut -d' ' -f4)
    log "smoke-sched: scheduled to $node; create→Running ${t_run}s"
    check_logs smoke-sched "$node"
    echo "pod_running_s[scheduler]=$t_run" >>"$work/timings"
else
    fail "smoke-sched: $(state smoke-sched)"
fi

# 3. Out of memory and a plain exit code, one per node, at the same time.
OOM_CMD='["python3", "-c", "b = bytearray(256 << 20); print(len(b))"]'
EXIT_CMD='["python3", "-c", "import sys; print(\"exiting 3\"); sys.exit(3)"]'
set -- $LBXK_NODES
log "smoke-oom (32Mi on $1), smoke-exit (exit 3 on $2)"
create smoke-oom "$1" 32Mi "$OOM_CMD"
create smoke-exit "$2" 128Mi "$EXIT_CMD"
# expect_failed POD 'REASON CODE': POD ends Failed with that reason and exit code.
expect_failed() {
    local t st
    if t=$(await "$1" '^Failed ' 60); then
        st=$(state "$1")
        echo "$st" | grep -q "^Failed $2 " || fail "$1: '$st', not ${2/ //}"
        log "$1: $st after ${t}s"
    else
        fail "$1: never Failed"
    fi
}
expect_failed smoke-oom 'OOMKilled 137'
expect_failed smoke-exit 'Error 3'

# 4. Delete them all (as the backend's cleanup would) and see them gone.
t0=$(now_ms)
api DELETE "/api/v1/namespaces/$NS/pods?labelSelector=$SEL" >/dev/null
left=
for _ in $(seq 1 300); do
    left=$(api GET "/api/v1/namespaces/$NS/pods?labelSelector=$SEL" | jq '.items | length')
    [ "$left" = 0 ] && break
    sleep 0.1
done
[ "$left" = 0 ] || fail "$left pods still there 30 s after their deletion"
log "all smoke pods deleted and gone in $(secs "$t0" "$(now_ms)")s"

sed 's/^/  /' "$work/timings" >&2 || true
if [ "$failures" -gt 0 ]; then
    log "$failures check(s) failed"
    exit 1
fi
log "all checks passed"
