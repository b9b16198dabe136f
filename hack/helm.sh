#!/usr/bin/env bash
# Builds helm from source through the Go module proxy (no prebuilt release can
# be downloaded here) and caches it in bin/.
#
#   hack/helm.sh               build helm when it is not cached yet
#   hack/helm.sh --print-path  prints the binary's path and exits
#
# The version is pinned below: v4.3.1, the newest release of Helm 4, the
# current major version (Helm 3's bug fixes ended in July 2026 and its
# security fixes in November 2026). Its client-go is v1.37, the Kubernetes
# version of the test control plane. The chart in charts/mlflow-operator is
# apiVersion v2, which Helm 3 reads as well.
# `go install helm.sh/helm/v4/cmd/helm@<version>` builds it with exactly the
# dependencies helm's own go.mod pins (checked against the Go checksum
# database); the module has no replace directives, so it needs no go.mod of
# ours. The -X flags are the ones helm's Makefile sets, so `helm version`
# tells the truth.
#
# The binary lands in bin/tools/helm-<version>/helm; when it is there it is
# not built again.
set -euo pipefail

HELM_VERSION=v4.3.1

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/bin/tools/helm-${HELM_VERSION}"
bin="$out/helm"

if [[ "${1:-}" == "--print-path" ]]; then
  echo "$bin"
  exit 0
fi
if [[ $# -gt 0 ]]; then
  echo "usage: hack/helm.sh [--print-path]" >&2
  exit 2
fi
if [[ -x "$bin" ]]; then
  echo "helm: $HELM_VERSION cached ($bin)"
  exit 0
fi

pkg="helm.sh/helm/v4/cmd/helm@${HELM_VERSION}"
ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=${HELM_VERSION} -X helm.sh/helm/v4/internal/version.gitTreeState=clean"

# go install into a folder of its own, then move the binary into place, so
# an interrupted build never leaves a half-written helm that looks cached.
mkdir -p "$out"
tmp=$(mktemp -d "$out/.build.XXXXXX")
log="$tmp/build.log"
trap 'rm -rf "$tmp"' EXIT

echo "helm: building $HELM_VERSION from source ($pkg)"
start=$SECONDS
(cd "$tmp" && GOBIN="$tmp" CGO_ENABLED=0 go install -v -trimpath -ldflags "$ldflags" "$pkg") >"$log" 2>&1 &
pid=$!
# A progress line (compiled packages, elapsed seconds), as
# hack/controlplane.sh prints, so a cold build of a few minutes is never silent.
tty=0
[[ -t 1 ]] && tty=1
last_report=-1
while kill -0 "$pid" 2>/dev/null; do
  elapsed=$((SECONDS - start))
  pkgs=$(grep -cv -e '^#' -e '^go: ' "$log" || true)
  if [[ $tty == 1 ]]; then
    printf '\r  helm: %d packages compiled, %ds elapsed ' "$pkgs" "$elapsed"
  elif (( elapsed / 30 != last_report )); then
    # Not a terminal (CI log): one line every 30 s.
    last_report=$((elapsed / 30))
    echo "  helm: $pkgs packages compiled, ${elapsed}s elapsed"
  fi
  sleep 1
done
if ! wait "$pid"; then
  [[ $tty == 1 ]] && echo
  echo "helm: building $HELM_VERSION failed:" >&2
  grep -v '^[a-zA-Z0-9./_~-]*$' "$log" | tail -n 40 >&2 || tail -n 40 "$log" >&2
  exit 1
fi
[[ $tty == 1 ]] && echo
mv "$tmp/helm" "$bin"
echo "helm: $HELM_VERSION ready in $((SECONDS - start))s ($bin)"
