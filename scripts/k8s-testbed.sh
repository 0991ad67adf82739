#!/usr/bin/env bash
# A real Kubernetes 1.20 on this one machine, for testing the Kubernetes
# backend (`make test-k8s`). No registry or internet is needed: everything
# comes from Debian's packages (apt) and the images already in the local
# Docker daemon.
#
#   k8s-testbed.sh check       can this machine host it? (root, cgroup v1,
#                              network namespaces, memory); why not, exit 1
#   k8s-testbed.sh build       build kube-apiserver, kube-scheduler, kubelet,
#                              kubectl (Debian's `kubernetes` source package,
#                              Debian's Go), etcd and pause into the cache
#   k8s-testbed.sh up          start a control plane and two nodes in network
#                              namespaces of their own; print the kubeconfig
#   k8s-testbed.sh down        stop everything, remove namespaces and state
#   k8s-testbed.sh status      what runs; nodes and their readiness
#   k8s-testbed.sh env         shell lines to use the testbed (eval them)
#   k8s-testbed.sh load IMAGE...
#                              copy images of the local daemon into both nodes
#   k8s-testbed.sh smoke       scripts/k8s-smoke.sh: pods on both nodes, logs,
#                              OOM, exit codes, the scheduler (no lambdabox)
#   k8s-testbed.sh kill-node N [--silent]
#                              kill node N's kubelet, dockerd and containers
#                              (N = 1 or 2): a lost node; see cmd_kill_node
#
# Layout (all our own; nothing else on this box uses 10.213.1.0/24):
#   netns lbxk-c    bridge br0 10.213.1.2: etcd (its loopback), kube-apiserver
#                   on :6443, kube-scheduler
#   host            lbxk-h 10.213.1.1: the lambdabox controller listens here
#   netns lbxk-n1   eth0 10.213.1.11: dockerd (pods on 10.213.11.0/24) + kubelet
#   netns lbxk-n2   eth0 10.213.1.12: dockerd (pods on 10.213.12.0/24) + kubelet
# The host and the nodes are ports of the one bridge: no forwarding or NAT on
# the host. Pods are NATed by their node's dockerd and may reach 10.213.1.1
# only; no netns has a default route, so nothing leaves the machine.
#
# Environment: LAMBDABOX_K8S_CACHE (binaries; default
# ${XDG_CACHE_HOME:-$HOME/.cache}/lambdabox/k8s), LAMBDABOX_K8S_STATE (pids,
# logs, data roots; default ${TMPDIR:-/tmp}/lambdabox-k8s),
# LAMBDABOX_K8S_IMAGES (images loaded into the nodes; default every
# lambdabox/* image of the local daemon but the build-* ones),
# LAMBDABOX_K8S_TMPFS (size cap of each node's docker data root, held in RAM;
# default 6g; 0: on disk), LAMBDABOX_K8S_KEEP_BUILD=1 keeps the sources, Go
# and Go's build cache (3.7 GB, for a faster rebuild).
set -euo pipefail

CACHE=${LAMBDABOX_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lambdabox/k8s}
STATE=${LAMBDABOX_K8S_STATE:-${TMPDIR:-/tmp}/lambdabox-k8s}
BIN=$CACHE/bin
MIRROR=${LAMBDABOX_K8S_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Bump when the way binaries are built changes: `build` then rebuilds.
RECIPE="recipe=2 kubernetes(debian-src,bookworm)+reflect2-1.0.2 go=golang-1.19 etcd=etcd-server pause=gcc-static"
K8S_BINS="kube-apiserver kube-scheduler kubelet kubectl"

log() { printf '%s k8s-testbed: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
need_root() { [ "$(id -u)" -eq 0 ] || die "run as root (network namespaces, dockerd, kubelet)"; }

# ---------------------------------------------------------------- build ----

# apt with a sources list, lists and cache of our own under $CACHE/apt: the
# system's apt configuration is never changed (it may not even have deb-src).
apt_own() {
    local d=$CACHE/apt
    mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
    if [ ! -f "$d/sources.list" ]; then
        local key=/usr/share/keyrings/debian-archive-keyring.gpg
        printf 'deb [signed-by=%s] %s bookworm main\ndeb-src [signed-by=%s] %s bookworm main\n' \
            "$key" "$MIRROR" "$key" "$MIRROR" >"$d/sources.list"
    fi
    # APT::Sandbox::User=root: $CACHE is usually under /root, which apt's
    # unprivileged download user cannot write.
    apt-get -q -o Dir::Etc::SourceList="$d/sources.list" -o Dir::Etc::SourceParts=/nonexistent \
        -o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" \
        -o APT::Sandbox::User=root "$@"
}

built() {
    local b
    for b in $K8S_BINS etcd pause; do [ -x "$BIN/$b" ] || return 1; done
    [ -f "$BIN/STAMP" ] && [ "$(head -n1 "$BIN/STAMP")" = "$RECIPE" ]
}

cmd_build() {
    if built; then
        log "binaries are built ($BIN; $(tail -n +2 "$BIN/STAMP" | tr '\n' ' '))"
        return 0
    fi
    command -v gcc >/dev/null || die "gcc is needed (pause); apt-get install gcc libc6-dev"
    command -v jq >/dev/null || die "jq is needed by Kubernetes' build scripts; apt-get install jq"
    local dl=$CACHE/dl work=$CACHE/build t0
    t0=$(date +%s)
    mkdir -p "$dl" "$work" "$BIN"

    # 1. Sources and packages (kept in $dl: a rebuild needs no network).
    local pkgs="golang-1.19-go golang-1.19-src etcd-server rsync libpopt0 golang-github-modern-go-reflect2-dev"
    local missing="" p
    for p in $pkgs; do ls "$dl/${p}_"*.deb >/dev/null 2>&1 || missing="$missing $p"; done
    ls "$dl"/kubernetes_*.dsc >/dev/null 2>&1 || missing="$missing kubernetes(source)"
    if [ -n "$missing" ]; then
        log "apt: fetching$missing (own sources list in $CACHE/apt)"
        apt_own update -qq
        ls "$dl"/kubernetes_*.dsc >/dev/null 2>&1 || (cd "$dl" && apt_own source --download-only kubernetes >/dev/null)
        # shellcheck disable=SC2086 # a list of package names
        (cd "$dl" && apt_own download $pkgs >/dev/null)
        rm -rf "$CACHE/apt" # 44 MB of package lists, needed no more
    fi

    # 2. Unpack: Go and the tools into $work/root, the sources into $work/src
    # (dpkg-source applies Debian's patches, as Debian's own build does).
    rm -rf "$work/root" "$work/src"
    mkdir -p "$work/root"
    log "unpacking Go, etcd, rsync"
    local deb
    for deb in "$dl"/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
    log "unpacking the kubernetes source package"
    dpkg-source --no-check -x "$(ls "$dl"/kubernetes_*.dsc | tail -n1)" "$work/src" >/dev/null

    # Kubernetes 1.20 vendors reflect2 1.0.1, whose map iteration breaks
    # with Go >= 1.18: the apiserver dies with SIGSEGV ("unexpected fault
    # address", in aeshashbody under json-iterator) encoding any object with
    # labels. Debian's reflect2 1.0.2 is API-compatible and fixed. Only the
    # files change: vendor/modules.txt must keep matching go.mod.
    rm -rf "$work/src/vendor/github.com/modern-go/reflect2"
    cp -r "$work/root/usr/share/gocode/src/github.com/modern-go/reflect2" "$work/src/vendor/github.com/modern-go/"
    rm -f "$work/src/vendor/github.com/modern-go/reflect2/"*_test.go

    # 3. Build. Kubernetes' make runs its code generators, then one `go
    # install`; it wants its tree at $GOPATH/src/k8s.io/kubernetes.
    # KUBE_GIT_VERSION_FILE gives the version that no .git can tell here.
    local goroot=$work/root/usr/lib/go-1.19 ver
    ver=$(sed -n 's/^Version: *[0-9]*:*[^+]*+really\([0-9.]*\).*/\1/p' "$(ls "$dl"/kubernetes_*.dsc | tail -n1)")
    [ -n "$ver" ] || ver=1.20.2
    cat >"$work/version" <<EOF
KUBE_GIT_COMMIT='0000000000000000000000000000000000000000'
KUBE_GIT_TREE_STATE='clean'
KUBE_GIT_VERSION='v$ver'
KUBE_GIT_MAJOR='${ver%%.*}'
KUBE_GIT_MINOR='$(echo "$ver" | cut -d. -f2)'
EOF
    mkdir -p "$work/gopath/src/k8s.io"
    ln -sfn "$work/src" "$work/gopath/src/k8s.io/kubernetes"
    local what="" b
    for b in $K8S_BINS; do what="$what cmd/$b"; done
    log "go build of$what (Go $("$goroot/bin/go" version | cut -d' ' -f3); 11 to 12 min of CPU, niced: 12 to 20 min here; log: $work/make.log)"
    (
        cd "$work/gopath/src/k8s.io/kubernetes"
        # (Kubernetes' scripts put Go's build cache in _output/local/go/cache.)
        export GOROOT=$goroot GOPATH=$work/gopath \
            GOTOOLCHAIN=local GOPROXY=off \
            PATH=$goroot/bin:$work/root/usr/bin:$PATH LD_LIBRARY_PATH=$work/root/usr/lib/x86_64-linux-gnu \
            KUBE_GIT_VERSION_FILE=$work/version
        # Progress every 30 s: the build output grows to about 2.5 GB.
        nice -n 19 make WHAT="${what# }" >"$work/make.log" 2>&1 &
        local pid=$! start
        start=$(date +%s)
        while kill -0 "$pid" 2>/dev/null; do
            sleep 30
            kill -0 "$pid" 2>/dev/null || break
            log "  ...building: $(($(date +%s) - start)) s, build output $(du -sm "$work/src/_output" 2>/dev/null | cut -f1) MB, load $(cut -d' ' -f1 /proc/loadavg)"
        done
        wait "$pid" || { tail -n 30 "$work/make.log" >&2; exit 1; }
    ) || die "kubernetes build failed; see $work/make.log"
    for b in $K8S_BINS; do
        install -m 0755 "$work/src/_output/local/bin/linux/amd64/$b" "$BIN/$b"
    done
    install -m 0755 "$work/root/usr/bin/etcd" "$BIN/etcd"

    # 4. The pause container's program, static so that the image needs no libc.
    log "gcc: static pause"
    gcc -Os -static -Wall -DVERSION="v$ver-lambdabox" -o "$BIN/pause" "$work/src/build/pause/linux/pause.c"
    strip "$BIN/pause" 2>/dev/null || true

    {
        echo "$RECIPE"
        echo "kubernetes=v$ver"
        echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ) in $(($(date +%s) - t0))s"
    } >"$BIN/STAMP"

    # 5. Keep the cache compact: the binaries and the downloaded packages
    # (34 MB of sources: a rebuild needs no network) stay; the unpacked tree,
    # Go and its build cache (over 1 GB) only speed up a rebuild, which the
    # stamp makes rare.
    if [ "${LAMBDABOX_K8S_KEEP_BUILD:-0}" = 1 ]; then
        log "keeping $work (LAMBDABOX_K8S_KEEP_BUILD=1): $(du -sh "$work" | cut -f1)"
    else
        rm -rf "$work"
    fi
    log "built in $(($(date +%s) - t0)) s: $(du -sh "$CACHE" | cut -f1) in $CACHE"
}

# ------------------------------------------------------------------- up ----

NS_C=lbxk-c
NET=10.213.1                 # the testbed's one segment (a bridge in lbxk-c)
CONTROLLER_ADDR=$NET.1       # host side: where pods reach the lambdabox controller
APISERVER_ADDR=$NET.2
NODES="1 2"
node_addr() { echo "$NET.1$1"; }          # 10.213.1.11, 10.213.1.12
node_pod_net() { echo "10.213.1$1.1/24"; } # docker0 inside node N's netns
PAUSE_IMAGE=lbxk/pause:3.2
# Size limit of each node's docker data root in RAM (pages used count, not
# the limit); 0 keeps it on disk under $STATE.
TMPFS_SIZE=${LAMBDABOX_K8S_TMPFS:-6g}
# Every daemon runs in a pids cgroup of ours, and node N's containers under
# the cgroup parent /lbxk/nN-pods: a node is killed (kill-node, down) by the
# processes of its cgroups, which also catches containerd and its shims, that
# have no PID file of ours.
CG_PIDS=/sys/fs/cgroup/pids

# What runs, by PID file name, in start order (status lists them).
DAEMONS="etcd kube-apiserver kube-scheduler n1-ns n1-dockerd n1-kubelet n2-ns n2-dockerd n2-kubelet"

kubectl() { "$BIN/kubectl" --kubeconfig "$STATE/kubeconfig" "$@"; }
now_ms() { date +%s%3N; }
secs_since() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }

# wait_for SECONDS WHAT CMD...: poll CMD every 0.2 s.
wait_for() {
    local limit=$1 what=$2 deadline
    shift 2
    deadline=$(($(date +%s) + limit))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || die "$what: not within ${limit}s (logs: $STATE/logs)"
        sleep 0.2
    done
}

cg_dir() { echo "$CG_PIDS/lbxk/$1"; }

# spawn NAME CGROUP CMD...: start CMD detached (own session: a ^C at the
# terminal that ran `up` does not reach it), in pids cgroup lbxk/CGROUP,
# logging to $STATE/logs/NAME.log, its PID in $STATE/pids/NAME.pid. The
# wrapper shell writes its own PID, then execs, so the PID is the daemon's.
spawn() {
    local name=$1 cg
    cg=$(cg_dir "$2")
    shift 2
    mkdir -p "$cg"
    sh -c 'echo $$ >"$2/cgroup.procs" && echo $$ >"$1" && shift 2 && exec setsid "$@"' \
        sh "$STATE/pids/$name.pid" "$cg" "$@" </dev/null >>"$STATE/logs/$name.log" 2>&1 &
    wait_for 5 "$name pid file" test -s "$STATE/pids/$name.pid"
}

# The PID in NAME's pid file if that process is alive and still ours (in a
# cgroup of ours: guards against a PID reused since).
our_pid() {
    local f=$STATE/pids/$1.pid pid
    [ -s "$f" ] || return 1
    pid=$(cat "$f")
    grep -qs ":/lbxk/" "/proc/$pid/cgroup" || return 1
    echo "$pid"
}

net_up() {
    log "network: netns $NS_C with bridge $NET.0/24, host side $CONTROLLER_ADDR, nodes $(node_addr 1) $(node_addr 2)"
    ip netns add "$NS_C"
    ip -n "$NS_C" link set lo up
    ip -n "$NS_C" link add br0 type bridge
    ip -n "$NS_C" addr add "$APISERVER_ADDR/24" dev br0
    ip -n "$NS_C" link set br0 up
    # The host's end: the controller listens on $CONTROLLER_ADDR. It is a plain
    # member of the segment, so nothing on the host forwards or NATs.
    ip link add lbxk-h type veth peer name lbxk-hp netns "$NS_C"
    ip addr add "$CONTROLLER_ADDR/24" dev lbxk-h
    ip link set lbxk-h up
    ip -n "$NS_C" link set lbxk-hp master br0 up
    local n
    for n in $NODES; do
        ip netns add "lbxk-n$n"
        ip -n "lbxk-n$n" link set lo up
        ip link add "lbxk-n${n}p" netns "$NS_C" type veth peer name eth0 netns "lbxk-n$n"
        ip -n "$NS_C" link set "lbxk-n${n}p" master br0 up
        ip -n "lbxk-n$n" addr add "$(node_addr "$n")/24" dev eth0
        ip -n "lbxk-n$n" link set eth0 up
        # No default route anywhere: pods (NATed by their node's dockerd) reach
        # the segment, hence the controller, and nothing beyond.
    done
}

# A kubeconfig that trusts any serving certificate (the apiserver makes its
# own self-signed one) and authenticates with a static token.
write_kubeconfig() {
    cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: lbxk
  cluster:
    server: https://$APISERVER_ADDR:6443
    insecure-skip-tls-verify: true
users:
- name: $2
  user:
    token: $3
contexts:
- name: lbxk
  context: {cluster: lbxk, user: "$2", namespace: default}
current-context: lbxk
KC
}

control_plane_up() {
    local c=$STATE/c t0 tok_admin tok_sched n
    mkdir -p "$c/pki" "$c/etcd"
    # Identities: one static token each. RBAC and the Node authorizer are on,
    # as in a real cluster, so the backend's RBAC needs can be tried here.
    tok_admin=$(openssl rand -hex 16)
    tok_sched=$(openssl rand -hex 16)
    {
        echo "$tok_admin,admin,admin,\"system:masters\""
        echo "$tok_sched,system:kube-scheduler,system:kube-scheduler"
        for n in $NODES; do
            echo "$(openssl rand -hex 16 | tee "$c/node$n.token"),system:node:lbxk-n$n,system:node:lbxk-n$n,\"system:nodes\""
        done
    } >"$c/tokens.csv"
    chmod 600 "$c/tokens.csv"
    write_kubeconfig "$STATE/kubeconfig" admin "$tok_admin"
    write_kubeconfig "$c/scheduler.kubeconfig" system:kube-scheduler "$tok_sched"
    echo "$tok_admin" >"$STATE/token"
    # The service-account issuer and keys are required flags, though no
    # controller-manager ever mints tokens here.
    openssl genrsa -out "$c/sa.key" 2048 2>/dev/null

    log "etcd"
    spawn etcd c nsenter --net=/run/netns/$NS_C "$BIN/etcd" --name lbxk --data-dir "$c/etcd" \
        --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
        --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
        --initial-cluster lbxk=http://127.0.0.1:2380 --logger zap --log-level warn
    t0=$(now_ms)
    log "kube-apiserver on https://$APISERVER_ADDR:6443"
    spawn kube-apiserver c nsenter --net=/run/netns/$NS_C "$BIN/kube-apiserver" \
        --etcd-servers http://127.0.0.1:2379 --bind-address 0.0.0.0 --secure-port 6443 \
        --advertise-address "$APISERVER_ADDR" --cert-dir "$c/pki" \
        --token-auth-file "$c/tokens.csv" --authorization-mode Node,RBAC \
        --service-account-issuer https://kubernetes.default.svc \
        --service-account-key-file "$c/sa.key" --service-account-signing-key-file "$c/sa.key" \
        --service-cluster-ip-range 10.213.100.0/24 \
        --disable-admission-plugins ServiceAccount \
        --kubelet-preferred-address-types InternalIP \
        --enable-priority-and-fairness=false --profiling=false --event-ttl 30m
    wait_for 90 "kube-apiserver ready" curl -fsk -H "Authorization: Bearer $tok_admin" \
        "https://$APISERVER_ADDR:6443/readyz"
    T_APISERVER=$(secs_since "$t0")
    log "kube-apiserver ready in ${T_APISERVER}s"
    log "kube-scheduler"
    spawn kube-scheduler c nsenter --net=/run/netns/$NS_C "$BIN/kube-scheduler" \
        --kubeconfig "$c/scheduler.kubeconfig" --leader-elect=false \
        --bind-address 127.0.0.1 --port 10251 --secure-port 0 \
        --kube-api-qps 100 --kube-api-burst 200
}

# dockerd's runtime on the nodes: runc, with a negative oomScoreAdj raised to
# 0. The kubelet asks for -998/-997 (pause, Guaranteed pods); lowering a
# score needs CAP_SYS_RESOURCE, which this box does not have, and runc then
# fails with "can't get final child's PID from pipe".
write_runc_wrapper() {
    cat >"$1" <<'WRAP'
#!/bin/sh
case " $* " in
*" create "* | *" run "*)
    bundle= prev=
    for a in "$@"; do
        case $prev in --bundle | -b) bundle=$a ;; esac
        case $a in --bundle=*) bundle=${a#--bundle=} ;; esac
        prev=$a
    done
    if [ -n "$bundle" ] && [ -f "$bundle/config.json" ]; then
        jq -c 'if (.process.oomScoreAdj // 0) < 0 then .process.oomScoreAdj = 0 else . end' \
            "$bundle/config.json" >"$bundle/config.json.clamped" &&
            mv "$bundle/config.json.clamped" "$bundle/config.json"
    fi
    ;;
esac
exec runc "$@"
WRAP
    chmod +x "$1"
}

# Node N: a holder process owning a mount namespace of the node's own, in
# which its dockerd and kubelet run. Why: the kubelet has paths it cannot be
# told to move (/var/log/pods, /var/log/containers, /var/lib/kubelet/
# device-plugins), and a kubelet deletes every /var/log/pods entry of a pod
# it does not know, so two kubelets sharing them delete each other's logs.
# The namespace is a slave of the host's: it sees the host's files, and the
# mounts the node makes (overlays, emptyDir tmpfs) stay inside it and vanish
# with it.
node_up() {
    local n=$1 d holder
    d=$STATE/n$n
    mkdir -p "$d/docker" "$d/exec" "$d/kubelet" "$d/dockershim" "$d/plugins"
    echo '{}' >"$d/daemon.json"
    # Docker's data root on a tmpfs (unless LAMBDABOX_K8S_TMPFS=0): the
    # loaded images are 1.2 GB of small files per node, which this box's
    # disk took 2 minutes to delete; a tmpfs goes with the namespace at once.
    spawn "n$n-ns" "n$n" unshare --mount --propagation slave sh -c \
        'mount -t tmpfs -o size=64m,mode=755 lbxk-varlog /var/log &&
         mkdir /var/log/pods /var/log/containers &&
         mount -t tmpfs -o size=16m,mode=755 lbxk-varlib /var/lib &&
         mkdir /var/lib/kubelet &&
         if [ "$1" != 0 ]; then mount -t tmpfs -o "size=$1,mode=710" lbxk-docker "$2"; fi &&
         touch /var/log/.lbxk-ready && exec sleep infinity' sh "$TMPFS_SIZE" "$d/docker"
    holder=$(cat "$STATE/pids/n$n-ns.pid")
    wait_for 10 "node $n mount namespace" nsenter --mount="/proc/$holder/ns/mnt" test -e /var/log/.lbxk-ready
    local enter="nsenter --net=/run/netns/lbxk-n$n --mount=/proc/$holder/ns/mnt"

    log "node $n: dockerd (data $d/docker, socket $d/docker.sock)"
    # shellcheck disable=SC2086 # $enter is a command and its options
    spawn "n$n-dockerd" "n$n" $enter dockerd --config-file "$d/daemon.json" \
        --data-root "$d/docker" --exec-root "$d/exec" --pidfile "$d/dockerd.pid" \
        -H "unix://$d/docker.sock" --bip "$(node_pod_net "$n")" \
        --cgroup-parent "/lbxk/n$n-pods" --exec-opt native.cgroupdriver=cgroupfs \
        --add-runtime "lbxk-runc=$STATE/runc-clamp" --default-runtime lbxk-runc \
        --storage-driver overlay2 --log-driver json-file --userland-proxy=false \
        --oom-score-adjust 0
    wait_for 60 "node $n dockerd" docker -H "unix://$d/docker.sock" version
    # Pods may reach the controller and nothing else: not the apiserver, not
    # the kubelets (their API is open to anonymous callers here), not the
    # other node. Inserted above dockerd's own rules, inside the node's netns.
    local ipt="nsenter --net=/run/netns/lbxk-n$n iptables -w"
    $ipt -I DOCKER-USER -i docker0 -j DROP
    $ipt -I DOCKER-USER -i docker0 -d "$CONTROLLER_ADDR" -j ACCEPT
    $ipt -I INPUT -i docker0 -j DROP
    $ipt -I INPUT -i docker0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    # The pod sandbox image, imported from a one-file root (no registry here).
    tar -C "$STATE/pause-root" -c . |
        docker -H "unix://$d/docker.sock" import --change 'ENTRYPOINT ["/pause"]' - "$PAUSE_IMAGE" >/dev/null

    local kc=$d/kubelet.kubeconfig
    write_kubeconfig "$kc" "system:node:lbxk-n$n" "$(cat "$STATE/c/node$n.token")"
    log "node $n: kubelet lbxk-n$n ($(node_addr "$n"))"
    # --docker and --docker-root (deprecated) are cAdvisor's: left out, the
    # kubelet's cAdvisor asks the host's own dockerd (/var/run/docker.sock)
    # for container stats, and stalls its start-up for a minute whenever that
    # daemon is slow to answer `info`.
    # SizeMemoryBackedVolumes (alpha in 1.20, on by default from 1.22): a
    # memory emptyDir's tmpfs gets its sizeLimit as its size, as the
    # backend's /tmp needs; without it the tmpfs is half the box's RAM.
    # shellcheck disable=SC2086
    spawn "n$n-kubelet" "n$n" $enter "$BIN/kubelet" --kubeconfig "$kc" \
        --hostname-override "lbxk-n$n" --node-ip "$(node_addr "$n")" --address "$(node_addr "$n")" \
        --read-only-port 0 \
        --container-runtime docker --docker-endpoint "unix://$d/docker.sock" \
        --docker "unix://$d/docker.sock" --docker-root "$d/docker" \
        --container-runtime-endpoint "unix://$d/dockershim.sock" \
        --image-service-endpoint "unix://$d/dockershim.sock" \
        --experimental-dockershim-root-directory "$d/dockershim" \
        --root-dir "$d/kubelet" --volume-plugin-dir "$d/plugins" \
        --pod-infra-container-image "$PAUSE_IMAGE" \
        --cgroups-per-qos=false --enforce-node-allocatable= --cgroup-driver cgroupfs \
        --fail-swap-on=false --image-gc-high-threshold 100 --image-gc-low-threshold 99 \
        --eviction-hard 'memory.available<20Mi,nodefs.available<1%,imagefs.available<1%,nodefs.inodesFree<1%' \
        --kube-api-qps 50 --kube-api-burst 100 --max-pods 64 \
        --feature-gates SizeMemoryBackedVolumes=true \
        --node-labels "lambdabox.dev/testbed-node=$n"
}

images_to_load() {
    if [ -n "${LAMBDABOX_K8S_IMAGES:-}" ]; then
        echo "$LAMBDABOX_K8S_IMAGES" | tr ', ' '\n\n' | sed '/^$/d'
    else
        # Functions run lambdabox/<runtime> images; build-* ones only serve
        # `sam build`-style dependency builds on the controller's host.
        docker images --format '{{.Repository}}:{{.Tag}}' |
            grep '^lambdabox/' | grep -v -e '^lambdabox/build-' -e ':<none>$' | sort
    fi
}

# One `docker save` (shared layers once), teed into both nodes' dockerd.
# $1: the images (default: images_to_load).
load_images() {
    local imgs t0 n fifo pids=""
    imgs=${1:-$(images_to_load | tr '\n' ' ')}
    if [ -z "${imgs// /}" ]; then
        log "images: none to load (no lambdabox/* image in the local daemon, LAMBDABOX_K8S_IMAGES empty)"
        echo "" >"$STATE/images"
        return 0
    fi
    t0=$(now_ms)
    log "images: docker save | load into both nodes: $imgs"
    local tees=""
    for n in $NODES; do
        fifo=$STATE/n$n/images.fifo
        rm -f "$fifo" && mkfifo "$fifo"
        docker -H "unix://$STATE/n$n/docker.sock" load -q <"$fifo" >"$STATE/logs/n$n-load.log" 2>&1 &
        pids="$pids $!"
        tees="$tees $fifo"
    done
    # shellcheck disable=SC2086
    docker save $imgs | tee $tees >/dev/null
    for n in $pids; do wait "$n" || die "docker load failed: $STATE/logs/n*-load.log"; done
    rm -f $tees
    echo "$imgs" >>"$STATE/images"
    log "images loaded in $(secs_since "$t0")s"
}

node_ready() {
    kubectl get node "lbxk-n$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True
}

nodes_ready() {
    local n t0=$1 registered=""
    for n in $NODES; do
        wait_for 120 "node lbxk-n$n registered" kubectl get node "lbxk-n$n"
        # No controller-manager runs to lift the taints a new node starts with.
        kubectl taint node "lbxk-n$n" node.kubernetes.io/not-ready- >/dev/null 2>&1 || true
        kubectl taint node "lbxk-n$n" node.cloudprovider.kubernetes.io/uninitialized- >/dev/null 2>&1 || true
        registered="$registered lbxk-n$n"
    done
    for n in $NODES; do
        wait_for 120 "node lbxk-n$n Ready" node_ready "$n"
    done
    T_NODES=$(secs_since "$t0")
    log "nodes$registered Ready ${T_NODES}s after their kubelets started"
}

cmd_up() {
    need_root
    built || die "binaries missing in $BIN: run '$0 build' first"
    local tool
    for tool in ip nsenter unshare setsid dockerd containerd runc docker openssl curl jq iptables tar awk; do
        command -v "$tool" >/dev/null || die "$tool is needed"
    done
    [ -d "$CG_PIDS" ] || die "cgroup v1 pids hierarchy ($CG_PIDS) not found; this testbed expects cgroup v1"
    # `docker version`, not `docker info`: the latter was seen hanging for
    # minutes on this shared box while the daemon served everything else.
    timeout 30 docker version >/dev/null 2>&1 ||
        die "the local Docker daemon does not answer (images are read from it): sh scripts/ensure-docker.sh"
    cmd_down quiet
    [ -e "/run/netns/$NS_C" ] &&
        die "netns $NS_C exists: a testbed of another LAMBDABOX_K8S_STATE is up; take it down with that state dir"
    # Our segment must be free: another interface or route on it would
    # capture or shadow the testbed's traffic.
    if ip -4 route show | grep -q "^10\.213\.1\."; then
        die "10.213.1.0/24 is routed on this host already: $(ip -4 route show | grep '^10\.213\.1\.')"
    fi
    local t_up
    t_up=$(now_ms)
    mkdir -p "$STATE/pids" "$STATE/logs" "$STATE/pause-root"
    install -m 0755 "$BIN/pause" "$STATE/pause-root/pause"
    write_runc_wrapper "$STATE/runc-clamp"
    net_up
    control_plane_up
    local n t_kubelets
    for n in $NODES; do node_up "$n"; done
    t_kubelets=$(now_ms)
    # Images load while the kubelets register (a pod needs both anyway).
    load_images &
    local load_pid=$!
    nodes_ready "$t_kubelets"
    wait "$load_pid" || die "loading images into the nodes failed"
    cat >"$STATE/env" <<ENV
export KUBECONFIG=$STATE/kubeconfig
export LBXK_CONTROLLER_ADDR=$CONTROLLER_ADDR
export LBXK_APISERVER=https://$APISERVER_ADDR:6443
export LBXK_TOKEN=$(cat "$STATE/token")
export LBXK_KUBECTL=$BIN/kubectl
export LBXK_NODES="lbxk-n1 lbxk-n2"
export LBXK_NODE1_DOCKER=unix://$STATE/n1/docker.sock
export LBXK_NODE2_DOCKER=unix://$STATE/n2/docker.sock
export LBXK_PAUSE_IMAGE=$PAUSE_IMAGE
ENV
    printf 'apiserver_ready_s=%s\nnodes_ready_s=%s\nup_s=%s\n' "$T_APISERVER" "$T_NODES" "$(secs_since "$t_up")" >"$STATE/timings"
    log "up in $(secs_since "$t_up")s (apiserver ready ${T_APISERVER}s, nodes Ready ${T_NODES}s)"
    echo "export KUBECONFIG=$STATE/kubeconfig"
    echo "# more: eval \"\$($0 env)\""
}

# ----------------------------------------------------------------- down ----

# cg_kill DIR: SIGKILL every process in the cgroup DIR and below, until none
# is left (a process may fork while we look).
cg_kill() {
    local i pids
    for i in $(seq 1 50); do
        pids=$(cat $(find "$1" -name cgroup.procs 2>/dev/null) 2>/dev/null | tr '\n' ' ')
        [ -n "${pids// /}" ] || return 0
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
        sleep 0.1
    done
    log "warning: processes left in $1: $pids"
}

# stop NAME...: TERM these daemons together, KILL those left after 10 s.
stop() {
    local name pid running="" i alive
    for name in "$@"; do
        pid=$(our_pid "$name") || continue
        kill -TERM "$pid" 2>/dev/null && running="$running $name=$pid"
    done
    for i in $(seq 1 50); do
        alive=""
        for name in $running; do kill -0 "${name#*=}" 2>/dev/null && alive="$alive $name"; done
        [ -n "$alive" ] || return 0
        sleep 0.2
    done
    log "still running 10 s after TERM, KILL:$alive"
    for name in $alive; do kill -KILL "${name#*=}" 2>/dev/null || true; done
}

# The kubelets first (they would restart what goes), then the containers,
# then the dockerds, which then have nothing left to stop, and the rest of
# the control plane; etcd and the holders of the nodes' mount namespaces
# (with which their mounts go) last.
stop_all() {
    stop n1-kubelet n2-kubelet
    cg_kill "$(cg_dir n1-pods)"
    cg_kill "$(cg_dir n2-pods)"
    stop n1-dockerd n2-dockerd kube-scheduler kube-apiserver
    stop etcd n1-ns n2-ns
    local cg
    for cg in n1 n2 c; do cg_kill "$(cg_dir "$cg")"; done
}

cmd_down() {
    need_root
    local quiet=${1:-} n d m
    # The names (netns, cgroups, addresses) are fixed, so one testbed runs
    # at a time; without our state dir, what runs under them is not ours
    # (another LAMBDABOX_K8S_STATE) and stays.
    if [ ! -d "$STATE" ]; then
        if [ -e "/run/netns/$NS_C" ]; then
            log "down: no $STATE, but netns $NS_C exists: a testbed of another LAMBDABOX_K8S_STATE? left alone"
        else
            [ -n "$quiet" ] || log "down: nothing runs (no $STATE)"
        fi
        return 0
    fi
    [ -n "$quiet" ] || log "down: stopping what runs (state $STATE)"
    stop_all
    [ -n "$quiet" ] || log "down: stopped"
    # Empty cgroups of ours (docker's in every hierarchy, ours in pids).
    for d in /sys/fs/cgroup/*/lbxk; do
        [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
    # Mounts under the state dir in the host's namespace: there should be
    # none (nodes mount in their own namespaces), but a half-failed start may
    # leave some. Deepest first; lazily if busy.
    if [ -d "$STATE" ]; then
        awk -v s="$STATE/" 'index($5, s) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
            while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" || true; done
    fi
    ip link del lbxk-h 2>/dev/null || true
    for n in $NS_C lbxk-n1 lbxk-n2; do
        ip netns del "$n" 2>/dev/null || true
    done
    [ -n "$quiet" ] || log "down: network removed; removing $STATE"
    rm -rf "$STATE"
    [ -n "$quiet" ] || log "down: done"
}

# ------------------------------------------------- status, env, kill-node ----

cmd_status() {
    local name pid rss
    [ -d "$STATE" ] || { echo "testbed is down (no $STATE)"; return 0; }
    for name in $DAEMONS; do
        if pid=$(our_pid "$name"); then
            rss=$(awk '/^VmRSS/ { printf "%d MB", $2 / 1024 }' "/proc/$pid/status")
            printf '%-16s running  pid %-8s rss %s\n' "$name" "$pid" "$rss"
        else
            printf '%-16s DOWN\n' "$name"
        fi
    done
    # Whole groups: a node's own daemons include containerd and its shims.
    local cg
    for cg in c n1 n2 n1-pods n2-pods; do
        printf '%-16s %s\n' "cgroup $cg" "$(cat $(find "$(cg_dir "$cg")" -name cgroup.procs 2>/dev/null) 2>/dev/null |
            while read -r pid; do awk '/^VmRSS/ { print $2 }' "/proc/$pid/status" 2>/dev/null; done |
            awk '{ s += $1; n++ } END { printf "%d processes, rss %d MB", n, s / 1024 }')"
    done
    [ -f "$STATE/timings" ] && tr '\n' ' ' <"$STATE/timings" && echo
    kubectl get nodes -o wide 2>&1 || true
    kubectl get pods -A -o wide 2>&1 || true
}

# Images built after `up` (say, one with lambdabox-init for an init
# container) go into both nodes the same way.
cmd_load() {
    need_root
    [ -d "$STATE/n1" ] || die "testbed is not up"
    [ $# -gt 0 ] || die "usage: $0 load IMAGE..."
    load_images "$*"
}

cmd_env() {
    [ -f "$STATE/env" ] || die "testbed is not up (no $STATE/env)"
    cat "$STATE/env"
    echo "export LBXK_IMAGES=\"$(tr '\n' ' ' <"$STATE/images" | sed 's/  */ /g; s/ $//')\""
}

# A node lost: its kubelet, dockerd, containerd and every container die at
# once (SIGKILL), as when a machine fails. With --silent its link goes down
# first, so that peers get no FIN or RST either (a power cut, not a crash).
# Then what the node lifecycle controller of a real cluster does within
# about 40 s (none runs here): the node's Ready turns Unknown and it is
# tainted unreachable, so the scheduler sends nothing more to it. Pods bound
# to it stay as they are in the API (no controller evicts them).
cmd_kill_node() {
    need_root
    local n=${1:-} silent=${2:-}
    case $n in 1 | 2) ;; *) die "usage: $0 kill-node 1|2 [--silent]" ;; esac
    [ -d "$STATE/n$n" ] || die "testbed is not up"
    [ "$silent" = --silent ] && ip -n "lbxk-n$n" link set eth0 down
    local t0
    t0=$(now_ms)
    cg_kill "$(cg_dir "n$n")"
    cg_kill "$(cg_dir "n$n-pods")"
    log "node $n: kubelet, dockerd and containers killed in $(secs_since "$t0")s"
    kubectl taint node "lbxk-n$n" node.kubernetes.io/unreachable:NoSchedule --overwrite >/dev/null
    kubectl taint node "lbxk-n$n" node.kubernetes.io/unreachable:NoExecute --overwrite >/dev/null
    local ts
    ts=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    curl -fsk -X PATCH -H "Authorization: Bearer $(cat "$STATE/token")" \
        -H 'Content-Type: application/strategic-merge-patch+json' \
        "https://$APISERVER_ADDR:6443/api/v1/nodes/lbxk-n$n/status" \
        -d "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"Unknown\",\"reason\":\"NodeStatusUnknown\",\"message\":\"killed by k8s-testbed.sh kill-node\",\"lastHeartbeatTime\":\"$ts\",\"lastTransitionTime\":\"$ts\"}]}}" >/dev/null
    log "node $n: marked Ready=Unknown and tainted unreachable (what the node lifecycle controller would do)"
}

# ---------------------------------------------------------------- check ----

# Can this machine host the testbed? Exit 0 if so; else one line on why not
# and exit 1 (CI runs `make test-k8s` only where this passes).
cmd_check() {
    local why="" probe=lbxk-probe-$$ avail_mb
    avail_mb=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
    if [ "$(id -u)" -ne 0 ]; then
        why="not root (network namespaces, dockerd, kubelet)"
    elif [ ! -d "$CG_PIDS" ]; then
        why="no cgroup v1 pids hierarchy at $CG_PIDS (the testbed expects cgroup v1)"
    elif ! command -v ip >/dev/null; then
        why="no ip (iproute2)"
    elif ! { ip netns add "$probe" 2>/dev/null && ip netns del "$probe"; }; then
        why="network namespaces cannot be made here"
    elif [ "${avail_mb:-0}" -lt 4096 ]; then
        why="${avail_mb:-0} MB of memory available, the testbed needs about 4 GB"
    elif ! built && [ ! -f /usr/share/keyrings/debian-archive-keyring.gpg ]; then
        why="no binaries in $BIN and no Debian archive keyring to fetch their sources with"
    fi
    if [ -n "$why" ]; then
        log "this machine cannot host the testbed: $why"
        return 1
    fi
    log "this machine can host the testbed$(built && echo ' (binaries built)' || echo ' (binaries to build: about 20 min)')"
}

case "${1:-}" in
    check) cmd_check ;;
    build) cmd_build ;;
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    smoke) bash "$(dirname "$0")/k8s-smoke.sh" ;;
    load) shift; cmd_load "$@" ;;
    kill-node) cmd_kill_node "${2:-}" "${3:-}" ;;
    *) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
# `exit` on esac's line: bash reads a script as it runs it, and this one runs
# for minutes; an edit made meanwhile must not be read as the next command.
esac; exit
