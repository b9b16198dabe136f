#!/usr/bin/env bash
# Builds promtool (Prometheus' rule and metrics checker) from source through
# the Go module proxy (no prebuilt release can be downloaded here) and caches
# it in bin/. test/monitoring runs `promtool check metrics`, `promtool check
# rules` and `promtool test rules` with it.
#
#   hack/promtool.sh               build promtool when it is not cached yet
#   hack/promtool.sh --print-path  prints the binary's path and exits
#
# The version is pinned below: Prometheus 3.16.0, whose Go module is
# github.com/prometheus/prometheus v0.316.0 (Prometheus 3 publishes release
# X.Y.Z as module version v0.X0Y.Z). `go install ...cmd/promtool@<version>`
# builds it with exactly the dependencies Prometheus' own go.mod pins
# (checked against the Go checksum database); the module has no replace
# directives, so it needs no go.mod of ours. The -X flags are the ones
# Prometheus' .promu.yml sets, so `promtool --version` tells the truth.
#
# The binary lands in bin/tools/promtool-<version>/promtool; when it is there
# it is not built again. A cold build downloads a few hundred modules (the
# service discovery SDKs) and takes about 6 minutes on 2 cores.
set -euo pipefail

PROMETHEUS_VERSION=3.16.0
MODULE_VERSION=v0.316.0

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/bin/tools/promtool-v${PROMETHEUS_VERSION}"
bin="$out/promtool"

if [[ "${1:-}" == "--print-path" ]]; then
  echo "$bin"
  exit 0
fi
if [[ $# -gt 0 ]]; then
  echo "usage: hack/promtool.sh [--print-path]" >&2
  exit 2
fi
if [[ -x "$bin" ]]; then
  echo "promtool: v$PROMETHEUS_VERSION cached ($bin)"
  exit 0
fi

pkg="github.com/prometheus/prometheus/cmd/promtool@${MODULE_VERSION}"
v=github.com/prometheus/common/version
ldflags="-s -w -X $v.Version=${PROMETHEUS_VERSION} -X $v.Branch=HEAD -X $v.BuildUser=mlflow-operator -X $v.Revision=${MODULE_VERSION}"

# go install into a folder of its own, then move the binary into place, so
# an interrupted build never leaves a half-written promtool that looks cached.
mkdir -p "$out"
tmp=$(mktemp -d "$out/.build.XXXXXX")
log="$tmp/build.log"
trap 'rm -rf "$tmp"' EXIT

echo "promtool: building v$PROMETHEUS_VERSION from source ($pkg)"
start=$SECONDS
(cd "$tmp" && GOBIN="$tmp" CGO_ENABLED=0 go install -v -trimpath -ldflags "$ldflags" "$pkg") >"$log" 2>&1 &
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
    printf '\r  promtool: %d modules downloaded, %d packages compiled, %ds elapsed ' "$mods" "$pkgs" "$elapsed"
  elif (( elapsed / 30 != last_report )); then
    # Not a terminal (CI log): one line every 30 s.
    last_report=$((elapsed / 30))
    echo "  promtool: $mods modules downloaded, $pkgs packages compiled, ${elapsed}s elapsed"
  fi
  sleep 1
done
if ! wait "$pid"; then
  [[ $tty == 1 ]] && echo
  echo "promtool: building v$PROMETHEUS_VERSION failed:" >&2
  grep -v '^[a-zA-Z0-9./_~-]*$' "$log" | grep -v '^go: downloading' | tail -n 40 >&2 || tail -n 40 "$log" >&2
  exit 1
fi
[[ $tty == 1 ]] && echo
mv "$tmp/promtool" "$bin"
echo "promtool: v$PROMETHEUS_VERSION ready in $((SECONDS - start))s ($bin)"
