#!/usr/bin/env bash
# Builds Prometheus and promtool from source through the Go module proxy (no
# prebuilt release can be downloaded here) and caches them in bin/.
# test/monitoring runs `promtool check metrics`, `promtool check rules` and
# `promtool test rules`, and runs a real Prometheus for the Canary analysis
# client (internal/analysis); test/install runs a real Prometheus that
# scrapes the operator in the cluster and evaluates the shipped alerts.
#
#   hack/prometheus.sh                        build both when not cached yet
#   hack/prometheus.sh --print-path promtool  prints a binary's path and exits
#   hack/prometheus.sh --print-path prometheus
#
# The version is pinned below: Prometheus 3.16.0, whose Go module is
# github.com/prometheus/prometheus v0.316.0 (Prometheus 3 publishes release
# X.Y.Z as module version v0.X0Y.Z). `go install ...@<version>` builds them
# with exactly the dependencies Prometheus' own go.mod pins (checked against
# the Go checksum database); the module has no replace directives, so it
# needs no go.mod of ours. The -X flags are the ones Prometheus' .promu.yml
# sets, so `--version` tells the truth. The build tags keep one service
# discovery, Kubernetes' (remove_all_sd + enable_kubernetes_sd, which
# Prometheus' plugins/ honours): the cloud SDKs are most of a cold build.
# Without the builtinassets tag the web UI is not embedded; the HTTP API, which
# the tests use, is all there.
#
# The binaries land in bin/tools/prometheus-<version>/; when both are there
# they are not built again. A cold build downloads about 200 modules and
# takes a few minutes on 2 cores.
set -euo pipefail

PROMETHEUS_VERSION=3.16.0
MODULE_VERSION=v0.316.0

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/bin/tools/prometheus-v${PROMETHEUS_VERSION}"

if [[ "${1:-}" == "--print-path" && $# == 2 && ( "$2" == promtool || "$2" == prometheus ) ]]; then
  echo "$out/$2"
  exit 0
fi
if [[ $# -gt 0 ]]; then
  echo "usage: hack/prometheus.sh [--print-path promtool|prometheus]" >&2
  exit 2
fi
if [[ -x "$out/prometheus" && -x "$out/promtool" ]]; then
  echo "prometheus: v$PROMETHEUS_VERSION cached ($out)"
  exit 0
fi

pkgs=("github.com/prometheus/prometheus/cmd/prometheus@${MODULE_VERSION}" "github.com/prometheus/prometheus/cmd/promtool@${MODULE_VERSION}")
v=github.com/prometheus/common/version
ldflags="-s -w -X $v.Version=${PROMETHEUS_VERSION} -X $v.Branch=HEAD -X $v.BuildUser=mlflow-operator -X $v.Revision=${MODULE_VERSION}"

# go install into a folder of its own, then move the binaries into place, so
# an interrupted build never leaves a half-written binary that looks cached.
mkdir -p "$out"
tmp=$(mktemp -d "$out/.build.XXXXXX")
log="$tmp/build.log"
trap 'rm -rf "$tmp"' EXIT

echo "prometheus: building v$PROMETHEUS_VERSION (prometheus, promtool) from source (github.com/prometheus/prometheus@$MODULE_VERSION)"
start=$SECONDS
(cd "$tmp" && GOBIN="$tmp" CGO_ENABLED=0 go install -v -trimpath -tags remove_all_sd,enable_kubernetes_sd -ldflags "$ldflags" "${pkgs[@]}") >"$log" 2>&1 &
pid=$!
# A progress line (modules downloaded, packages compiled, elapsed seconds),
# as hack/helm.sh prints, so a cold build of minutes is never silent.
tty=0
[[ -t 1 ]] && tty=1
last_report=-1
while kill -0 "$pid" 2>/dev/null; do
  elapsed=$((SECONDS - start))
  mods=$(grep -c '^go: downloading' "$log" || true)
  pkgs=$(grep -cv -e '^#' -e '^go: ' "$log" || true)
  if [[ $tty == 1 ]]; then
    printf '\r  prometheus: %d modules downloaded, %d packages compiled, %ds elapsed ' "$mods" "$pkgs" "$elapsed"
  elif (( elapsed / 30 != last_report )); then
    # Not a terminal (CI log): one line every 30 s.
    last_report=$((elapsed / 30))
    echo "  prometheus: $mods modules downloaded, $pkgs packages compiled, ${elapsed}s elapsed"
  fi
  sleep 1
done
if ! wait "$pid"; then
  [[ $tty == 1 ]] && echo
  echo "prometheus: building v$PROMETHEUS_VERSION failed:" >&2
  grep -v '^[a-zA-Z0-9./_~-]*$' "$log" | grep -v '^go: downloading' | tail -n 40 >&2 || tail -n 40 "$log" >&2
  exit 1
fi
[[ $tty == 1 ]] && echo
mv "$tmp/prometheus" "$tmp/promtool" "$out/"
echo "prometheus: v$PROMETHEUS_VERSION ready in $((SECONDS - start))s ($out)"
