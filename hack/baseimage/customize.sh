#!/usr/bin/env bash
# mmdebstrap's customize hook of hack/baseimage.sh: runs once the Debian
# packages are installed, with the rootfs folder as $1 (root mode: /dev,
# /proc and /sys are mounted in it, apt works, the host's network is there).
# Makes the venv, installs the Python distributions, compiles or drops the
# .pyc files and removes what would make two builds differ.
#
# Environment: BASEIMAGE_WORK (folder with requirements.txt, constraints.txt
# and pip.whl; receives python-version, packages.txt, python-packages.txt),
# BASEIMAGE_PYC (unchecked-hash or none), BASEIMAGE_TESTS (drop or keep).
set -euo pipefail

rootfs=$1
work=$BASEIMAGE_WORK
log() { echo "baseimage: $*" >&2; }
in_root() { chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

pyver=$(in_root python3 -c 'import platform; print(platform.python_version())')
pymm=${pyver%.*}
echo "$pyver" >"$work/python-version"

log "venv /opt/venv (Python $pyver, no pip in it)"
in_root python3 -m venv --without-pip /opt/venv

mkdir -p "$rootfs/tmp/baseimage"
cp "$work/requirements.txt" "$work/constraints.txt" "$work/pip.whl" "$rootfs/tmp/baseimage/"
# pip inside the chroot trusts the host's CA bundle for this download (a
# host may reach PyPI through a proxy with its own CA); the image keeps
# Debian's ca-certificates only. The host's pip settings for the index
# (PIP_INDEX_URL and the like) pass through.
pipenv=()
host_ca=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
if [[ -f $host_ca ]]; then
  cp "$host_ca" "$rootfs/tmp/baseimage/host-ca.crt"
  pipenv+=(PIP_CERT=/tmp/baseimage/host-ca.crt)
fi
for v in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST PIP_DEFAULT_TIMEOUT; do
  if [[ -n ${!v:-} ]]; then
    pipenv+=("$v=${!v}")
  fi
done
log "pip install -r requirements.txt -c constraints.txt (wheels only, from PyPI)"
# Wheels only: no build step runs code from a source distribution, and a
# wheel installs the same files every time. --no-compile: the .pyc files are
# made below, all in one way.
if ! in_root "${pipenv[@]}" /opt/venv/bin/python /tmp/baseimage/pip.whl/pip install \
  --no-input --disable-pip-version-check --no-cache-dir --no-compile --only-binary=:all: \
  -r /tmp/baseimage/requirements.txt -c /tmp/baseimage/constraints.txt 2>&1 |
  { grep --line-buffered -E '^(Collecting|Successfully installed|ERROR|WARNING)' | sed -u -e 's/ (from .*//' -e 's/^/  /' >&2 || true; }
then
  log "pip install failed"
  exit 1
fi

# Every installed distribution must be pinned, at that version, by the
# constraints: then the lock alone says what the venv holds.
in_root /opt/venv/bin/python - <<'EOF' >"$work/python-packages.txt"
import importlib.metadata as md
for d in sorted(md.distributions(), key=lambda d: d.metadata["Name"].lower()):
    print(f'{d.metadata["Name"]}=={d.version}')
EOF
python3 - "$work/python-packages.txt" "$work/constraints.txt" <<'EOF'
import re, sys
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
def pins(path):
    out = {}
    for line in open(path):
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, ver = line.split("==", 1)
            out[norm(name.split("[", 1)[0])] = ver.split(";", 1)[0].strip()
    return out
installed, locked = pins(sys.argv[1]), pins(sys.argv[2])
bad = [f"{n}=={v} (constraints: {locked.get(n, 'not pinned')})" for n, v in installed.items() if locked.get(n) != v]
if bad:
    sys.exit("baseimage: installed but not pinned by the constraints: " + ", ".join(bad))
print(f"baseimage: {len(installed)} distributions, every one pinned by the constraints", file=sys.stderr)
EOF
in_root dpkg-query -W -f='${Package}=${Version}\n' >"$work/packages.txt"
# What the suites meant at build time: the Date of each Release file apt
# used (the lists are removed by mmdebstrap's clean-up).
for f in "$rootfs"/var/lib/apt/lists/*_InRelease; do
  echo "${f##*/}: $(sed -n 's/^Date: //p' "$f" | head -n1)"
done >"$work/debian-release.txt"

# The installed distributions' own test suites (sklearn/*/tests, pandas/tests,
# scipy/*/tests...: folders named tests or test that hold test_*.py or
# conftest.py) are not needed to serve and are over a tenth of the venv.
if [[ $BASEIMAGE_TESTS == drop ]]; then
  n=0
  while IFS= read -r -d '' d; do
    if compgen -G "$d/test_*.py" >/dev/null || [[ -f $d/conftest.py ]]; then
      rm -rf "$d"
      n=$((n + 1))
    fi
  done < <(find "$rootfs/opt/venv/lib" -type d \( -name tests -o -name test \) -prune -print0)
  log "removed $n test-suite folders from the venv"
fi

# .pyc files: Debian's postinst scripts compiled its modules with
# timestamp-checked .pyc, which name the source's mtime; the layers set every
# mtime to SOURCE_DATE_EPOCH, so those would be stale. Remove them all and
# compile again with unchecked-hash .pyc (PEP 552): no mtime inside, never
# checked against the source (the image is immutable), never rewritten.
log "removing .pyc files; compiling: $BASEIMAGE_PYC"
find "$rootfs/usr/lib" "$rootfs/opt/venv" -name __pycache__ -type d -prune -exec rm -rf {} +
if [[ $BASEIMAGE_PYC == unchecked-hash ]]; then
  # Some sources are not meant to compile (templates, test data): compileall
  # reports them and goes on; they have no .pyc, as with pip's own compile.
  in_root python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash \
    "/usr/lib/python$pymm" /usr/lib/python3/dist-packages "/opt/venv/lib/python$pymm/site-packages" \
    >"$work/compileall.log" 2>&1 || log "compileall: $(grep -c '^\*\*\*' "$work/compileall.log" || true) files did not compile (kept as sources)"
fi

# What makes two builds differ, or is only a cache. mmdebstrap removes the
# apt lists and archives, the dpkg and apt logs, ldconfig's aux-cache and
# empties /etc/machine-id (with SOURCE_DATE_EPOCH), /tmp and /run.
rm -rf "$rootfs/tmp/baseimage"
rm -f "$rootfs/etc/resolv.conf" "$rootfs/etc/hostname"
rm -f "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old "$rootfs"/var/cache/apt/*.bin
find "$rootfs/var/log" -type f -delete
