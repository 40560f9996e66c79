# Sourced by tools/cluster.sh: the `node` kind, a real single-node Kubernetes cluster on this
# machine. Every process runs in a network namespace made for this cluster, and every address
# the cluster uses lives inside it:
#
#   host  ── veth ──  node netns (NODE_IP)
#                      ├─ etcd (its loopback), kube-apiserver :6443, controller-manager, scheduler
#                      ├─ containerd + runc (Debian), kubelet, kube-proxy (iptables mode)
#                      └─ bridge cni0 (Debian CNI plugins) ── pods (POD_CIDR), Services (SERVICE_CIDR)
#
# The host reaches the node, its pods and its Service IPs through routes over the veth, so a
# kubeconfig pointing at https://NODE_IP:6443 works from the host for kubectl, helm and the Rust
# tests. The node netns has no default route: nothing inside can reach any address outside it.
#
# Processes are entered into the namespace with `nsenter --net`, never `ip netns exec`, which
# remounts /sys and hides the cgroup v1 mounts runc needs. Settings each found by its failure
# (see the README's "Real node" section): containerd's `restrict_oom_score_adj` (this sandbox's root
# lacks CAP_SYS_RESOURCE), kube-proxy `oomScoreAdj: 0`, kubelet `failCgroupV1: false` and the
# cgroupfs driver, image garbage collection off (the images cannot be pulled back).
#
# Teardown (stop_node) kills by PID and cgroup, unmounts everything under the cluster folder and
# deletes the namespace and the veth, so it leaves no mounts, namespaces or iptables rules behind.

node_name=telemetry-node

# pick_subnet: the first N in 1..250 whose 10.201.N.0/24 no route on the host uses. The node
# gets 10.201.N.2, pods 10.202.N.0/24, Services 10.203.N.0/24, so clusters can run side by side.
pick_subnet() {
  local n
  for n in $(seq 1 250); do
    if [ -z "$(ip -4 route show 10.201.$n.0/24)" ] && [ -z "$(ip -4 route show 10.202.$n.0/24)" ]; then
      echo "$n"
      return
    fi
  done
  log "no free 10.201.N.0/24 subnet for the node"
  exit 1
}

in_node() { nsenter --net="/run/netns/$netns" "$@"; }

# spawn_in_node LOG COMMAND...: starts COMMAND in the node's namespace in the background and
# records its PID for teardown. nsenter execs COMMAND (no fork when entering only a network
# namespace), so the PID is the process itself, not a wrapper that a signal would miss.
spawn_in_node() {
  local log=$1
  shift
  nsenter --net="/run/netns/$netns" "$@" >"$log" 2>&1 &
  pids+=($!)
}

make_node_network() {
  exec {netlock}>"${TMPDIR:-/tmp}/.telemetry-node-net.lock"
  flock "$netlock"
  subnet=$(pick_subnet)
  host_ip=10.201.$subnet.1
  node_ip=10.201.$subnet.2
  pod_cidr=10.202.$subnet.0/24
  service_cidr=10.203.$subnet.0/24
  api_service_ip=10.203.$subnet.1
  dns_service_ip=10.203.$subnet.10
  netns=telemetry-node-$$
  veth=tnode$$
  # `ip netns add` bind-mounts /run/netns onto itself as a shared mount; made while / is shared,
  # that bind joins /'s peer group and every namespace mounted in it is copied, hidden, beneath it,
  # where `ip netns del` cannot remove it (a busy /run/netns/<name> left per run). Own peer group.
  mkdir -p /run/netns
  mountpoint -q /run/netns || mount --bind /run/netns /run/netns
  mount --make-private /run/netns
  mount --make-shared /run/netns
  ip netns add "$netns"
  node_created=true
  ip link add "$veth" type veth peer name eth0 netns "$netns"
  ip addr add "$host_ip/24" dev "$veth"
  ip link set "$veth" up
  in_node ip link set lo up
  in_node ip addr add "$node_ip/24" dev eth0
  in_node ip link set eth0 up
  # The host reaches pods and Service IPs through the node (kube-proxy's rules are in its netns).
  ip route add "$pod_cidr" via "$node_ip" dev "$veth"
  ip route add "$service_cidr" via "$node_ip" dev "$veth"
  exec {netlock}>&-
  # Per-namespace settings: the node routes between its veth and the pod bridge, and bridged
  # pod traffic goes through iptables so Service IPs work between pods on the same bridge.
  in_node sysctl -qw net.ipv4.ip_forward=1
  modprobe br_netfilter 2>/dev/null || true
  in_node sysctl -qw net.bridge.bridge-nf-call-iptables=1
  log "node network: node $node_ip, pods $pod_cidr, services $service_cidr (netns $netns)"
}

make_node_certs() {
  local pki="$dir/pki"
  mkdir -p "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=telemetry-node-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    # client_cert NAME SUBJECT: a client certificate signed by the cluster CA.
    client_cert() {
      openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
      printf 'extendedKeyUsage=clientAuth\n' > "$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    }
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:%s,IP:%s,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\n' \
      "$node_ip" "$api_service_ip" > server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile server.ext -out server.crt 2>/dev/null
    client_cert admin "/O=system:masters/CN=admin"
    client_cert kubelet "/O=system:nodes/CN=system:node:$node_name"
    client_cert apiserver-kubelet "/O=system:masters/CN=kube-apiserver-kubelet-client"
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
}

# write_kubeconfig FILE USER: a kubeconfig for the node's API server with USER's certificate.
write_kubeconfig() {
  local file=$1 user=$2 pki="$dir/pki"
  "$bin/kubectl" config set-cluster node --kubeconfig "$file" \
    --server "https://$node_ip:6443" --certificate-authority "$pki/ca.crt" --embed-certs >/dev/null
  "$bin/kubectl" config set-credentials "$user" --kubeconfig "$file" \
    --client-certificate "$pki/$user.crt" --client-key "$pki/$user.key" --embed-certs >/dev/null
  "$bin/kubectl" config set-context node --kubeconfig "$file" --cluster node --user "$user" >/dev/null
  "$bin/kubectl" config use-context node --kubeconfig "$file" >/dev/null
}

start_containerd() {
  local base="$dir/containerd"
  mkdir -p "$base" "$dir/cni/net.d"
  containerd_sock="$base/containerd.sock"
  cat > "$base/config.toml" <<EOF
version = 2
root = "$base/root"
state = "$base/state"
[grpc]
  address = "$containerd_sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/thereview/pause:3.10"
  # This sandbox's root lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj.
  restrict_oom_score_adj = true
  # Pod network namespaces under the state folder, so teardown finds every one of them.
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$base/runc"
EOF
  # One bridge for the node's pods; host-local hands out addresses; portmap serves hostPort.
  cat > "$dir/cni/net.d/10-telemetry.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "telemetry-node",
  "plugins": [
    {
      "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$dir/cni/ipam",
        "ranges": [[{"subnet": "$pod_cidr"}]], "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  spawn_in_node "$dir/containerd.log" containerd --config "$base/config.toml"
  local deadline=$((SECONDS + 30))
  until ctr --address "$containerd_sock" version >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { log "containerd did not start; log:"; tail -n 20 "$dir/containerd.log" >&2; exit 1; }
    sleep 0.1
  done
}

# The images tools/images.sh built, imported before the node reports ready (no pulls here).
import_images() {
  local archive
  for archive in "$images"/*.tar; do
    ctr --address "$containerd_sock" -n k8s.io images import "$archive" >>"$dir/images.log" 2>&1 || {
      log "importing $archive failed:"; tail -n 5 "$dir/images.log" >&2; exit 1
    }
  done
}

start_control_plane() {
  local pki="$dir/pki"
  spawn_in_node "$dir/etcd.log" "$bin/etcd" --name default --data-dir "$dir/etcd" --unsafe-no-fsync \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster default=http://127.0.0.1:2380
  spawn_in_node "$dir/kube-apiserver.log" "$bin/kube-apiserver" \
    --etcd-servers http://127.0.0.1:2379 \
    --cert-dir "$pki" --tls-cert-file "$pki/server.crt" --tls-private-key-file "$pki/server.key" \
    --client-ca-file "$pki/ca.crt" \
    --bind-address 0.0.0.0 --advertise-address "$node_ip" --secure-port 6443 \
    --service-cluster-ip-range "$service_cidr" --allow-privileged=true \
    --authorization-mode Node,RBAC \
    --kubelet-client-certificate "$pki/apiserver-kubelet.crt" --kubelet-client-key "$pki/apiserver-kubelet.key" \
    --kubelet-preferred-address-types InternalIP \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key"
  write_kubeconfig "$kubeconfig" admin
  write_kubeconfig "$dir/kubelet.kubeconfig" kubelet
  wait_ready
  spawn_in_node "$dir/kube-controller-manager.log" "$bin/kube-controller-manager" --kubeconfig "$kubeconfig" \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --use-service-account-credentials=false --leader-elect=false \
    --service-cluster-ip-range "$service_cidr" --bind-address 127.0.0.1 --secure-port 0
  spawn_in_node "$dir/kube-scheduler.log" "$bin/kube-scheduler" --kubeconfig "$kubeconfig" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port 0
}

# The node's pods live under a cgroup of their own in every hierarchy, so teardown kills exactly
# this cluster's containers, however many clusters run. cgroup v1 cpuset children start with
# no CPUs or memory nodes: they are copied from the parent before anything joins.
make_node_cgroups() {
  cgroup_root=/telemetry-node-$$
  local hierarchy
  for hierarchy in /sys/fs/cgroup/*/; do
    [ -d "$hierarchy" ] && [ ! -L "${hierarchy%/}" ] || continue
    mkdir -p "$hierarchy${cgroup_root#/}"
    if [ -f "${hierarchy}cpuset.cpus" ]; then
      cat "${hierarchy}cpuset.cpus" >"$hierarchy${cgroup_root#/}/cpuset.cpus"
      cat "${hierarchy}cpuset.mems" >"$hierarchy${cgroup_root#/}/cpuset.mems"
    fi
  done
}

start_node_agents() {
  local pki="$dir/pki"
  mkdir -p "$dir/kubelet" "$dir/pod-logs"
  make_node_cgroups
  # Pods get the cluster DNS only: this file names no resolver of the host.
  printf 'nameserver %s\n' "$dns_service_ip" > "$dir/resolv.conf"
  cat > "$dir/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $node_ip
port: 10250
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous: {enabled: false}
  x509: {clientCAFile: $pki/ca.crt}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://$containerd_sock
cgroupDriver: cgroupfs
cgroupRoot: $cgroup_root
failCgroupV1: false
failSwapOn: false
clusterDNS: [$dns_service_ip]
clusterDomain: cluster.local
resolvConf: $dir/resolv.conf
podLogsDir: $dir/pod-logs
# The images cannot be pulled back once collected: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
imageMinimumGCAge: 87600h
evictionHard: {memory.available: 50Mi, nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
serializeImagePulls: false
maxPods: 60
EOF
  spawn_in_node "$dir/kubelet.log" "$bin/kubelet" --config "$dir/kubelet-config.yaml" --kubeconfig "$dir/kubelet.kubeconfig" \
    --root-dir "$dir/kubelet" --cert-dir "$dir/kubelet/pki" --hostname-override "$node_name" \
    --node-ip "$node_ip"
  kubelet_pid=$!
  cat > "$dir/kube-proxy-config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $kubeconfig}
hostnameOverride: $node_name
clusterCIDR: $pod_cidr
# This sandbox's root cannot lower oom_score_adj, nor raise conntrack limits.
oomScoreAdj: 0
conntrack: {maxPerCore: 0}
# Inside the node's network namespace: these ports collide with nothing of the host's.
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
EOF
  spawn_in_node "$dir/kube-proxy.log" "$bin/kube-proxy" --config "$dir/kube-proxy-config.yaml"
}

kubectl_node() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }

# wait_for_command SECONDS WHAT COMMAND...: retries COMMAND until it succeeds or time runs out.
wait_for_command() {
  local timeout=$1 what=$2
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      log "$what not reached after ${timeout}s; logs in $dir"
      tail -n 15 "$dir/kubelet.log" "$dir/containerd.log" >&2 || true
      exit 1
    fi
    sleep 0.5
  done
}

start_coredns() {
  sed -e "s/@DNS_SERVICE_IP@/$dns_service_ip/" "$here/node/coredns.yaml" | kubectl_node apply -f - >/dev/null
}

# Pods that mount a host path with `mountPropagation: HostToContainer` (the agent pipeline's
# /hostfs) need the host's / to be a shared mount, as systemd makes it at boot on every real
# node. This machine boots with a private /: make it shared for the node's lifetime (only / itself,
# not recursively), and private again at teardown if it was.
share_root_mount() {
  if [ "$(findmnt -no PROPAGATION /)" = private ]; then
    mount --make-shared /
    root_made_shared=true
  fi
}

start_node() {
  [ "$(id -u)" -eq 0 ] || { log "the node kind needs root (network namespace, containerd, kubelet)"; exit 1; }
  local tool
  for tool in containerd runc ctr nsenter iptables /usr/lib/cni/bridge; do
    command -v "$tool" >/dev/null || [ -x "$tool" ] || {
      log "$tool is missing: install tools/apt-packages.txt (tools/test.sh does)"; exit 1
    }
  done
  images=$("$here/images.sh" ${NODE_IMAGES_SKIP_CARGO:+--skip-cargo} | tail -n 1)
  share_root_mount
  make_node_network
  make_node_certs
  start_containerd
  import_images &
  local importer=$!
  start_control_plane
  wait "$importer"
  start_node_agents
  wait_for_command 120 "node Ready" kubectl_node wait --for=condition=Ready "node/$node_name" --timeout=2s
  wait_for_command 60 "kube-proxy healthy" in_node curl -fsS http://127.0.0.1:10256/healthz
  start_coredns
  wait_for_command 120 "CoreDNS Available" \
    kubectl_node -n kube-system wait --for=condition=Available deployment/coredns --timeout=2s
}

# Kills every process of the node's pods (through their cgroups), then the node's own
# processes, unmounts what they mounted and deletes the namespace and the veth.
stop_node() {
  if [ -n "${kubelet_pid:-}" ]; then
    kill -KILL "$kubelet_pid" 2>/dev/null || true
  fi
  if [ -n "${cgroup_root:-}" ]; then
    # Every process in any of the node's cgroups (containers vanish while this runs: no noise).
    find /sys/fs/cgroup/*"$cgroup_root" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u |
      xargs -r kill -KILL 2>/dev/null || true
  fi
  stop_processes
  if [ -n "${containerd_sock:-}" ]; then
    pkill -KILL -f -- "-address $containerd_sock" 2>/dev/null || true
  fi
  # The node's cgroups, emptied by the kills, deepest first.
  if [ -n "${cgroup_root:-}" ]; then
    find /sys/fs/cgroup/*"$cgroup_root" -depth -type d 2>/dev/null | xargs -r rmdir 2>/dev/null || true
  fi
  local mount
  findmnt -rn -o TARGET | grep -F "$dir/" | sort -r | while read -r mount; do
    umount -l "$mount" 2>/dev/null || true
  done
  if ${root_made_shared:-false} && [ -z "$(ls /run/netns 2>/dev/null | grep -v "^$netns$" | grep '^telemetry-node-')" ]; then
    mount --make-private /  # unless another node cluster still runs
  fi
  if ${node_created:-false}; then
    ip link del "$veth" 2>/dev/null || true
    ip netns del "$netns" 2>/dev/null || true
  fi
}
