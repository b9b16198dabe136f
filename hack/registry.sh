#!/usr/bin/env bash
# Makes sure Debian's build of the CNCF distribution registry server
# (package docker-registry) is installed: the tests push built images to a
# real registry on loopback. Installs it with apt-get when missing.
#
#   hack/registry.sh             install if missing
#   hack/registry.sh --print-bin print the binary's path
set -euo pipefail

bin=$(command -v docker-registry || true)
if [[ "${1:-}" == "--print-bin" ]]; then
  echo "${bin:-/usr/bin/docker-registry}"
  exit 0
fi
if [[ -n "$bin" ]]; then
  echo "registry: $($bin --version 2>/dev/null | head -n1 || echo installed) ($bin)"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "registry: docker-registry is missing; install it with: sudo apt-get install docker-registry" >&2
  exit 1
fi
echo "registry: installing Debian's docker-registry package (about 20 s)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends docker-registry >/dev/null
# The package starts a system service where systemd runs; the tests start
# their own servers on free ports, so stop it if it is running.
if command -v systemctl >/dev/null && systemctl is-active --quiet docker-registry 2>/dev/null; then
  systemctl stop docker-registry || true
fi
echo "registry: installed $(command -v docker-registry)"
