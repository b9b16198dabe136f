#!/usr/bin/env bash
# Builds a serving base image without Docker: a minimal Debian rootfs from
# Debian's packages (mmdebstrap), a Python virtual environment at /opt/venv
# with the pinned MLflow and scikit-learn from PyPI, assembled into two
# reproducible layers with go-containerregistry (hack/baseimage/) and kept as
# an OCI layout in bin/baseimage/<key>/oci. The key is a hash of every input
# (see inputs.txt in that folder); a second run with the same inputs only
# checks the stamp. Needs root (mmdebstrap in root mode, chroot). See
# docs/base-images.md.
#
#   hack/baseimage.sh                      build if missing (progress on stderr)
#   hack/baseimage.sh --print-dir          print the cache folder (nothing is built)
#   hack/baseimage.sh --print-digest       build if missing, print the image digest
#   hack/baseimage.sh --print-layout       build if missing, print the OCI layout folder
#   hack/baseimage.sh --push REF           build if missing, push to REF (plain HTTP for
#                                          loopback registries, or with --insecure),
#                                          print REF's repository@digest
#   hack/baseimage.sh --rebuild            build again even when cached and compare
#                                          digests with the cached build (exit 1 if they differ)
#
# Inputs (each is part of the key):
#   --suite S             Debian suite (bookworm)
#   --mirror URL          Debian mirror (http://deb.debian.org/debian); the security
#                         suite comes from --security-mirror (http://deb.debian.org/debian-security)
#   --snapshot T          use snapshot.debian.org at time T (e.g. 20250520T000000Z) for
#                         both: the Debian side then is pinned too
#   --packages "a b"      Debian packages beyond minbase (python3 ca-certificates)
#   --requirements F      top-level Python requirements (hack/baseimage/requirements.txt)
#   --constraints F       the lock every version comes from (hack/python/requirements.lock)
#   --no-pyc              ship no .pyc files (default: compiled, unchecked-hash)
#   --keep-tests          keep the test suites of the installed distributions (default: dropped)
#   --tag T               the image's name in the layout (mlflow-serving:<mlflow version>)
#   SOURCE_DATE_EPOCH     time of every file and of the config (default 2026-01-01)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
suite=bookworm
mirror=http://deb.debian.org/debian
security_mirror=http://deb.debian.org/debian-security
snapshot=
packages="python3 ca-certificates"
requirements="$root/hack/baseimage/requirements.txt"
constraints="$root/hack/python/requirements.lock"
pyc=unchecked-hash
tests=drop
tag=
action=build
push_ref=
insecure=false
epoch=${SOURCE_DATE_EPOCH:-1767225600}
pip_version=26.3

while [[ $# -gt 0 ]]; do
  case "$1" in
    --suite) suite=$2; shift 2 ;;
    --mirror) mirror=$2; shift 2 ;;
    --security-mirror) security_mirror=$2; shift 2 ;;
    --snapshot) snapshot=$2; shift 2 ;;
    --packages) packages=$2; shift 2 ;;
    --requirements) requirements=$(realpath "$2"); shift 2 ;;
    --constraints) constraints=$(realpath "$2"); shift 2 ;;
    --no-pyc) pyc=none; shift ;;
    --keep-tests) tests=keep; shift ;;
    --tag) tag=$2; shift 2 ;;
    --print-dir) action=print-dir; shift ;;
    --print-digest) action=print-digest; shift ;;
    --print-layout) action=print-layout; shift ;;
    --push) action=push; push_ref=$2; shift 2 ;;
    --insecure) insecure=true; shift ;;
    --rebuild) action=rebuild; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "baseimage: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

log() { echo "baseimage: $*" >&2; }

# remove DIR...: like rm -rf, but never through a mount a failed mmdebstrap
# left behind (its /dev, /proc and /sys are the host's).
remove() {
  local d
  for d in "$@"; do
    [[ -e $d ]] || continue
    if findmnt -rn -o TARGET | grep -q "^$(realpath "$d")/"; then
      log "$d still has mounts in it (findmnt); unmount them, then remove it"
      exit 1
    fi
    rm -rf "$d"
  done
}

aptopts=()
if [[ -n "$snapshot" ]]; then
  mirror="http://snapshot.debian.org/archive/debian/$snapshot"
  security_mirror="http://snapshot.debian.org/archive/debian-security/$snapshot"
  # A snapshot's Release files are past their Valid-Until date.
  aptopts+=(--aptopt='Acquire::Check-Valid-Until "false"')
fi
sources=("deb $mirror $suite main" "deb $mirror $suite-updates main" "deb $security_mirror $suite-security main")
mlflow_version=$(awk -F'==' 'tolower($1)=="mlflow" {print $2}' "$constraints")
tag=${tag:-mlflow-serving:${mlflow_version:-unknown}}
arch=$(dpkg --print-architecture)

# The key: everything that decides the image's bytes. The program's version
# is the content of this script, the Go program and the customize hook (not
# verify.sh, log_model.py), plus the Go toolchain (its gzip writes the
# layers). The mirror's content is not in it: see --snapshot and --rebuild.
inputs=$(
  echo "suite: $suite"
  printf 'source: %s\n' "${sources[@]}"
  echo "packages: $packages"
  echo "architecture: $arch"
  echo "pyc: $pyc"
  echo "test suites: $tests"
  echo "pip: $pip_version"
  echo "tag: $tag"
  echo "SOURCE_DATE_EPOCH: $epoch"
  echo "requirements: $(sha256sum <"$requirements" | cut -c1-64)"
  echo "constraints: $(sha256sum <"$constraints" | cut -c1-64)"
  echo "program: $(cat "$0" "$root"/hack/baseimage/*.go "$root"/hack/baseimage/customize.sh | sha256sum | cut -c1-64)"
  echo "go: $(go env GOVERSION)"
)
key=$(sha256sum <<<"$inputs" | cut -c1-12)
cache="$root/bin/baseimage"
dir="$cache/mlflow-${mlflow_version:-unknown}-$key"

if [[ $action == print-dir ]]; then
  echo "$dir"
  exit 0
fi

mkdir -p "$cache"
tool="$cache/baseimage-tool"
(cd "$root" && go build -o "$tool" ./hack/baseimage)

# build OUT: the whole image into the folder OUT (which must not exist).
build() {
  local out=$1 start=$SECONDS t
  if [[ $(id -u) -ne 0 ]]; then
    log "building needs root (mmdebstrap --mode=root, chroot); run as root or use the cached image"
    exit 1
  fi
  if ! command -v mmdebstrap >/dev/null; then
    log "installing Debian's mmdebstrap (about 10 s)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
  fi
  mkdir -p "$out/work"
  echo "$inputs" >"$out/inputs.txt"
  cp "$requirements" "$out/work/requirements.txt"
  cp "$constraints" "$out/work/constraints.txt"

  # pip itself is run from its wheel (a wheel is a zip Python can run): the
  # venv gets no pip, no setuptools, and Debian's python3-venv is not needed.
  local wheels="$cache/wheels"
  mkdir -p "$wheels"
  if ! ls "$wheels"/pip-"$pip_version"-*.whl >/dev/null 2>&1; then
    log "downloading pip $pip_version's wheel from PyPI"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      --dest "$wheels" "pip==$pip_version" >&2
  fi
  cp "$wheels"/pip-"$pip_version"-*.whl "$out/work/pip.whl"

  log "step 1/3: Debian $suite rootfs with $packages, then the venv (mmdebstrap, pip; about 2 minutes)"
  t=$SECONDS
  local include=${packages// /,}
  # Root mode, into a folder: this script is root already; the rootfs keeps
  # the owners dpkg gave its files (unshare mode would shift them into a
  # subordinate range), and the venv step runs in a chroot of it with the
  # host's network. The merged-usr hook makes the /bin -> usr/bin links
  # itself and installs usr-is-merged: bookworm's usrmerge package would
  # bring perl (about 60 MB) for a one-time conversion.
  if ! BASEIMAGE_WORK="$out/work" BASEIMAGE_PYC="$pyc" BASEIMAGE_TESTS="$tests" SOURCE_DATE_EPOCH="$epoch" \
    mmdebstrap --mode=root --variant=minbase --format=directory --architectures="$arch" \
    --include="$include" \
    --aptopt='APT::Install-Recommends "false"' "${aptopts[@]}" \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --dpkgopt='path-exclude=/usr/share/linda/*' \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --customize-hook="$root/hack/baseimage/customize.sh \"\$1\"" \
    "$suite" "$out/work/rootfs" "${sources[@]}" 2>&1 |
    # mmdebstrap's steps, errors and warnings, and the hook's own lines;
    # not dpkg's and apt's chatter.
    grep --line-buffered -i -E '^(I|W|E): |^baseimage: |^  |error' |
    sed -u -e '/^I: \(running\|using\|automatically\|chroot architecture\|linux\|skipping\|cleaning\|success\|creating\|removing\)/d' -e 's/^/  /' >&2
  then
    log "mmdebstrap failed (the folder $out is left for a look; the next run removes it)"
    exit 1
  fi
  log "step 1/3 done in $((SECONDS - t))s"

  local pyver
  pyver=$(cat "$out/work/python-version")
  log "step 2/3: layers and OCI layout (go-containerregistry, gzip -6; about a minute)"
  t=$SECONDS
  local reqs
  reqs=$(grep -v '^\s*#' "$requirements" | grep -v '^\s*$' | tr '\n' ' ' | sed 's/ $//')
  "$tool" assemble -rootfs "$out/work/rootfs" -layout "$out/oci" -split /opt/venv -epoch "$epoch" -level 6 \
    -tag "$tag" -user 1000:1000 -workdir /tmp -cmd '["python3"]' \
    -env PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    -env VIRTUAL_ENV=/opt/venv \
    -env HOME=/tmp \
    -env LANG=C.UTF-8 \
    -env PYTHON_VERSION="$pyver" \
    -env PYTHONDONTWRITEBYTECODE=1 \
    -env PYTHONUNBUFFERED=1 \
    -env MLFLOW_DISABLE_ENV_CREATION=true \
    -env MLFLOW_DISABLE_TELEMETRY=true \
    -label org.opencontainers.image.title=mlflow-serving-base \
    -label "org.opencontainers.image.description=Debian $suite, Python $pyver, /opt/venv: $reqs (versions from the constraints)" \
    -label "org.opencontainers.image.version=$mlflow_version" \
    -label "org.opencontainers.image.created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)" \
    -history "mmdebstrap --variant=minbase $suite --include=$include (hack/baseimage.sh)" \
    -history "python3 -m venv /opt/venv; pip install $reqs -c $(basename "$constraints") (hack/baseimage.sh)" \
    2>&1 >"$out/digest" | tee "$out/assemble.log" >&2
  log "step 2/3 done in $((SECONDS - t))s"

  log "step 3/3: records and clean-up"
  cp "$out/work/packages.txt" "$out/work/python-packages.txt" "$out/work/python-version" "$out/"
  # What "$suite" meant at build time (not part of the key: see --snapshot).
  {
    echo "mmdebstrap: $(mmdebstrap --version)"
    echo "go: $(go env GOVERSION)"
    cat "$out/work/debian-release.txt"
  } >"$out/build-info.txt"
  [[ -f "$out/work/compileall.log" ]] && cp "$out/work/compileall.log" "$out/"
  sed -n 's/^baseimage: layer/layer/p; s/^baseimage: image sha256:[0-9a-f]*: \(.*\), in .*/image: \1/p' "$out/assemble.log" >"$out/size.txt"
  remove "$out/work"
  touch "$out/.complete"
  log "built $(cat "$out/digest") in $((SECONDS - start))s ($(tail -n1 "$out/size.txt"))"
}

exec 9>"$cache/.lock-$key"
flock 9
if [[ $action == rebuild ]]; then
  again="$dir.rebuild"
  remove "$again"
  log "rebuilding into $again"
  build "$again"
  if [[ -f "$dir/.complete" ]]; then
    if [[ $(cat "$dir/digest") == $(cat "$again/digest") ]]; then
      log "reproducible: the rebuild has the cached build's digest $(cat "$dir/digest")"
      remove "$again"
    else
      log "NOT reproducible: cached $(cat "$dir/digest"), rebuilt $(cat "$again/digest"); both kept ($dir, $again)"
      exit 1
    fi
  else
    remove "$dir"
    mv "$again" "$dir"
  fi
elif [[ -f "$dir/.complete" ]]; then
  log "cached ($dir, $(cat "$dir/digest"))"
else
  remove "$dir" "$dir.partial"
  log "building $dir"
  build "$dir.partial"
  mv "$dir.partial" "$dir"
fi

case $action in
  print-digest) cat "$dir/digest" ;;
  print-layout) echo "$dir/oci" ;;
  push)
    flags=()
    [[ $insecure == true ]] && flags+=(-insecure)
    "$tool" push -layout "$dir/oci" -ref "$push_ref" "${flags[@]}"
    ;;
esac
