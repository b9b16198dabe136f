#!/usr/bin/env bash
# Builds the Kubernetes control-plane binaries from source through the Go module
# proxy (no prebuilt release can be downloaded here) and caches them in bin/.
#
#   hack/controlplane.sh [BINARY...]   default: kube-apiserver etcd kubectl
#                                      (also: kube-controller-manager kube-scheduler kwok,
#                                      and kubelet kube-proxy for the real node: hack/realnode.sh)
#
# Binaries land in bin/controlplane/k8s-<version>/ (the folder that envtest's
# KUBEBUILDER_ASSETS points at). A binary that is already there is not rebuilt,
# so a second run costs nothing. The pinned versions are the require lines of
# hack/controlplane/*/go.mod; the cache folder is keyed by them.
#
#   hack/controlplane.sh --print-dir    prints the cache folder and exits
#   hack/controlplane.sh --kwok-stages  prints the folder of kwok's stage YAML
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
k8s_mod="$root/hack/controlplane/kubernetes"
etcd_mod="$root/hack/controlplane/etcd"
kwok_mod="$root/hack/controlplane/kwok"

# pinned MODULE_DIR MODULE: the version a go.mod requires (single line or block).
pinned() {
  awk -v m="$2" '($1=="require" && $2==m) {print $3; exit} ($1==m && $2 ~ /^v/) {print $2; exit}' "$1/go.mod"
}
k8s_version=$(pinned "$k8s_mod" k8s.io/kubernetes)
etcd_version=$(pinned "$etcd_mod" go.etcd.io/etcd/server/v3)
kwok_version=$(pinned "$kwok_mod" sigs.k8s.io/kwok)
if [[ -z "$k8s_version" || -z "$etcd_version" ]]; then
  echo "controlplane: cannot read the pinned versions from hack/controlplane/*/go.mod" >&2
  exit 1
fi
out="$root/bin/controlplane/k8s-${k8s_version}-etcd-${etcd_version}"

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$out"
  exit 0
fi
if [[ "${1:-}" == "--kwok-stages" ]]; then
  # The stage definitions ship inside the kwok module.
  (cd "$kwok_mod" && echo "$(go env GOMODCACHE)/sigs.k8s.io/kwok@${kwok_version}/kustomize/stage")
  exit 0
fi

wanted=("$@")
[[ ${#wanted[@]} -gt 0 ]] || wanted=(kube-apiserver etcd kubectl)

minor=${k8s_version#v1.}
minor=${minor%%.*}
k8s_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${k8s_version} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor} -X k8s.io/component-base/version.gitTreeState=clean"

# build NAME MODULE_DIR PACKAGE LDFLAGS: go build with a progress line that
# counts compiled packages and elapsed seconds, so a 5-minute cold build is
# never silent.
build() {
  local name=$1 dir=$2 pkg=$3 ldflags=$4
  local log
  log=$(mktemp)
  local start=$SECONDS
  echo "controlplane: building $name from source ($pkg)"
  (cd "$dir" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -v -trimpath -ldflags "$ldflags" -o "$out/$name.tmp" "$pkg") >"$log" 2>&1 &
  local pid=$!
  local tty=0
  [[ -t 1 ]] && tty=1
  local last_report=-1
  while kill -0 "$pid" 2>/dev/null; do
    local elapsed=$((SECONDS - start))
    local pkgs
    pkgs=$(grep -cv '^#' "$log" || true)
    if [[ $tty == 1 ]]; then
      printf '\r  %s: %d packages compiled, %ds elapsed ' "$name" "$pkgs" "$elapsed"
    elif (( elapsed / 30 != last_report )); then
      # Not a terminal (CI log): one line every 30 s.
      last_report=$((elapsed / 30))
      echo "  $name: $pkgs packages compiled, ${elapsed}s elapsed"
    fi
    sleep 1
  done
  if ! wait "$pid"; then
    [[ $tty == 1 ]] && echo
    echo "controlplane: building $name failed:" >&2
    grep -v '^[a-z0-9./_-]*$' "$log" | tail -n 40 >&2 || tail -n 40 "$log" >&2
    rm -f "$log" "$out/$name.tmp"
    return 1
  fi
  [[ $tty == 1 ]] && echo
  mv "$out/$name.tmp" "$out/$name"
  rm -f "$log"
  echo "controlplane: $name ready in $((SECONDS - start))s"
}

mkdir -p "$out"
for name in "${wanted[@]}"; do
  if [[ -x "$out/$name" ]]; then
    echo "controlplane: $name cached ($out/$name)"
    continue
  fi
  case "$name" in
    kube-apiserver|kube-controller-manager|kube-scheduler|kubectl|kubelet|kube-proxy)
      build "$name" "$k8s_mod" "k8s.io/kubernetes/cmd/$name" "$k8s_ldflags" ;;
    etcd)
      build etcd "$etcd_mod" go.etcd.io/etcd/server/v3 "-s -w" ;;
    kwok)
      build kwok "$kwok_mod" sigs.k8s.io/kwok/cmd/kwok "-s -w" ;;
    *)
      echo "controlplane: unknown binary $name (known: kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy etcd kwok)" >&2
      exit 2 ;;
  esac
done
