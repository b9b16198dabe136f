#!/usr/bin/env bash
# Makes everything a REAL test node needs (test/harness/realnode and
# cluster.Options{Node: cluster.RealNode}): a kubelet and kube-proxy, a
# container runtime, the CNI plugins, and the sandbox ("pause") program.
#
#   hack/realnode.sh              install what is missing, build what is not cached
#   hack/realnode.sh --print-dir  prints the folder of containerd, its runc shim, ctr and pause
#   hack/realnode.sh --check      exits 1, naming what is missing, without changing anything
#
# Nothing prebuilt is downloaded:
# - kubelet and kube-proxy are built by hack/controlplane.sh, from the same
#   pinned k8s.io/kubernetes module and with the same -ldflags as the control
#   plane, into its folder (hack/controlplane.sh --print-dir);
# - containerd, containerd-shim-runc-v2 and ctr (for the tests) are built through the Go module
#   proxy at the version pinned in hack/realnode/containerd/go.mod (their own
#   module, so the operator's go.mod is not affected);
# - pause is hack/realnode/pause, a static Go program: registry.k8s.io cannot
#   be reached here, so the harness pushes it to the test registry;
# - runc, the CNI plugins (bridge, host-local, loopback, portmap), iptables,
#   nftables and conntrack come from Debian, installed with apt-get when missing.
# Built binaries land in bin/realnode/containerd-<version>/; one that is there
# is not built again (pause is rebuilt when its source is newer).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
ctrd_mod="$root/hack/realnode/containerd"
pause_mod="$root/hack/realnode/pause"

ctrd_version=$(awk '$1=="github.com/containerd/containerd/v2" && $2 ~ /^v/ {print $2; exit}' "$ctrd_mod/go.mod")
if [[ -z "$ctrd_version" ]]; then
  echo "realnode: cannot read the pinned containerd version from $ctrd_mod/go.mod" >&2
  exit 1
fi
out="$root/bin/realnode/containerd-${ctrd_version}"

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$out"
  exit 0
fi

# Debian packages: "command or file|package".
debian=(
  "runc|runc"
  "/usr/lib/cni/bridge|containernetworking-plugins"
  "/usr/lib/cni/host-local|containernetworking-plugins"
  "/usr/lib/cni/loopback|containernetworking-plugins"
  "/usr/lib/cni/portmap|containernetworking-plugins"
  "iptables|iptables"
  "nft|nftables"
  "conntrack|conntrack"
)
missing_packages() {
  local entry what pkg
  for entry in "${debian[@]}"; do
    what=${entry%%|*} pkg=${entry##*|}
    if [[ $what == /* ]]; then
      [[ -x $what ]] || echo "$pkg"
    else
      # iptables, nft and conntrack live in /usr/sbin, not always on a user's PATH.
      command -v "$what" >/dev/null || [[ -x /usr/sbin/$what ]] || echo "$pkg"
    fi
  done | sort -u
}

k8s_dir=$("$root/hack/controlplane.sh" --print-dir)
if [[ "${1:-}" == "--check" ]]; then
  missing=()
  for b in kubelet kube-proxy; do [[ -x $k8s_dir/$b ]] || missing+=("$k8s_dir/$b"); done
  for b in containerd containerd-shim-runc-v2 ctr pause; do [[ -x $out/$b ]] || missing+=("$out/$b"); done
  for p in $(missing_packages); do missing+=("Debian package $p"); done
  if [[ ${#missing[@]} -gt 0 ]]; then
    printf 'realnode: missing %s\n' "${missing[@]}" >&2
    echo "realnode: run hack/realnode.sh (make realnode)" >&2
    exit 1
  fi
  echo "realnode: everything is there"
  exit 0
fi

# 1. Debian packages, as hack/registry.sh installs docker-registry.
pkgs=$(missing_packages)
if [[ -n "$pkgs" ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "realnode: missing Debian packages; install them with: sudo apt-get install" $pkgs >&2
    exit 1
  fi
  echo "realnode: installing Debian packages:" $pkgs "(about 30 s)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086 # one word per package
  apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
  echo "realnode: installed" $pkgs
fi

# 2. kubelet and kube-proxy: the control plane's script, module and flags.
"$root/hack/controlplane.sh" kubelet kube-proxy

# build NAME MODULE_DIR PACKAGE TAGS LDFLAGS: go build with a progress line
# (compiled packages, elapsed seconds), as hack/controlplane.sh does, so a
# minute-long cold build is never silent.
build() {
  local name=$1 dir=$2 pkg=$3 tags=$4 ldflags=$5
  local log start=$SECONDS tty=0 last_report=-1
  log=$(mktemp)
  echo "realnode: building $name from source ($pkg)"
  (cd "$dir" && GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -v -trimpath -tags "$tags" -ldflags "$ldflags" \
    -o "$out/$name.tmp" "$pkg") >"$log" 2>&1 &
  local pid=$!
  [[ -t 1 ]] && tty=1
  while kill -0 "$pid" 2>/dev/null; do
    local elapsed=$((SECONDS - start)) pkgs
    pkgs=$(grep -cv '^#' "$log" || true)
    if [[ $tty == 1 ]]; then
      printf '\r  %s: %d packages compiled, %ds elapsed ' "$name" "$pkgs" "$elapsed"
    elif (( elapsed / 30 != last_report )); then
      last_report=$((elapsed / 30))
      echo "  $name: $pkgs packages compiled, ${elapsed}s elapsed"
    fi
    sleep 1
  done
  if ! wait "$pid"; then
    [[ $tty == 1 ]] && echo
    echo "realnode: building $name failed:" >&2
    grep -v '^[a-z0-9./_-]*$' "$log" | tail -n 40 >&2 || tail -n 40 "$log" >&2
    rm -f "$log" "$out/$name.tmp"
    return 1
  fi
  [[ $tty == 1 ]] && echo
  mv "$out/$name.tmp" "$out/$name"
  rm -f "$log"
  echo "realnode: $name ready in $((SECONDS - start))s"
}

# 3. containerd and its runc shim. The tags leave out the snapshotters and
# documentation this node does not use and keep the binaries static without
# cgo (osusergo netgo); the shim needs no gRPC server (no_grpc).
mkdir -p "$out"
tags="urfave_cli_no_docs no_btrfs no_devmapper no_zfs osusergo netgo"
ctrd_ldflags="-s -w -X github.com/containerd/containerd/v2/version.Version=${ctrd_version} -X github.com/containerd/containerd/v2/version.Package=github.com/containerd/containerd/v2"
# ctr is for the tests only: they make the node forget an image it pulled.
for name in containerd containerd-shim-runc-v2 ctr; do
  if [[ -x "$out/$name" ]]; then
    echo "realnode: $name cached ($out/$name)"
    continue
  fi
  extra=""
  [[ $name == containerd-shim-runc-v2 ]] && extra=" no_grpc"
  build "$name" "$ctrd_mod" "github.com/containerd/containerd/v2/cmd/$name" "$tags$extra" "$ctrd_ldflags"
done

# 4. pause: a second to build, so rebuilt whenever its source changed.
if [[ -x "$out/pause" && ! "$pause_mod/main.go" -nt "$out/pause" ]]; then
  echo "realnode: pause cached ($out/pause)"
else
  build pause "$pause_mod" . "" "-s -w"
fi
