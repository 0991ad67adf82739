#!/usr/bin/env bash
# `make test-k8s`: build the Kubernetes testbed (cached outside the clone),
# bring it up, smoke-check it, run the Rust tests of the Kubernetes backend
# against it, and bring it down again, also when a step fails or the run is
# interrupted. Needs root (network namespaces, dockerd, kubelet).
#
# The Makefile has built lambdabox-init and the runtime images first: the
# testbed's nodes get their images from the local Docker daemon.
set -euo pipefail
cd "$(dirname "$0")/.."
bed=scripts/k8s-testbed.sh

log() { printf '%s test-k8s: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
t0=$(date +%s)

"$bed" build
t_built=$(date +%s)

# From here on the testbed must go, whatever happens.
down() {
    local rc=$?
    trap - EXIT INT TERM
    "$bed" down || rc=1
    log "wall time $(($(date +%s) - t0)) s (build $((t_built - t0)) s); exit $rc"
    exit "$rc"
}
trap down EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$bed" up >/dev/null
"$bed" status
bash scripts/k8s-smoke.sh

# The conformance subset on the Kubernetes backend: tests/it/k8s.rs, which
# runs `lambdabox serve --backend kubernetes` with the controller listening
# on $LBXK_CONTROLLER_ADDR.
if [ -f tests/it/k8s.rs ]; then
    eval "$("$bed" env)"
    log "cargo test --test it k8s:: (LAMBDABOX_K8S=1, KUBECONFIG=$KUBECONFIG)"
    # The node-loss test kills a node: the others first, then it alone.
    LAMBDABOX_K8S=1 LAMBDABOX_INIT="$PWD/target/release/lambdabox-init" \
        ${CARGO:-cargo} test --test it k8s:: -- ${K8S_TEST_ARGS:---test-threads=2} --skip k8s::node_loss
    LAMBDABOX_K8S=1 LAMBDABOX_INIT="$PWD/target/release/lambdabox-init" \
        ${CARGO:-cargo} test --test it k8s::node_loss -- --exact
else
    log "SKIP: tests/it/k8s.rs does not exist yet (the Kubernetes backend's tests); testbed and smoke check only"
fi
