#!/usr/bin/env bash
# Runs the base image's scoring server the way a serving pod would, without
# a container runtime: the image's layers unpacked into a temporary folder,
# a real scikit-learn model at /opt/ml/model (root's, 0444/0555, as the
# operator's model layer has it), then in new mount, PID and network
# namespaces: the root read-only, /tmp a tmpfs, /dev a tmpfs with the usual
# nodes and /dev/shm, /proc and /sys (read-only), and the operator's command
# `mlflow models serve -m /opt/ml/model -h 0.0.0.0 -p 8080 --env-manager
# local` run as uid/gid 1000 (no passwd entry), no supplementary groups, no
# capabilities, no_new_privs, with exactly the image config's Env and
# WorkingDir plus the operator's MLFLOW_DISABLE_ENV_CREATION=true. Checks
# /ping and POST /invocations with the model's serving_input_example.json.
# Needs root (namespaces, mounts, chroot).
#
#   hack/baseimage/verify.sh [--layout DIR] [--model DIR] [--expect JSON] [--runs N] [--without-pyc] [--keep]
#                            [--workdir DIR] [--unset NAME]...
#
#   --layout DIR     the OCI layout (default: hack/baseimage.sh --print-layout, built if missing);
#                    an image that carries /opt/ml/model already (the operator's model image,
#                    see hack/baseimage/modelimage) is served as it is, with its Entrypoint
#   --model DIR      a model folder (default: one logged now with the tests' Python env)
#   --expect JSON    the answer /invocations must give (default: the logged model's own predictions)
#   --runs N         start the server N times (the first start reads the files cold)
#   --without-pyc    then remove every .pyc from the unpacked image and start it N times more
#   --keep           keep the temporary folder
#   --workdir DIR    start in DIR instead of the config's WorkingDir
#   --unset NAME     leave NAME out of the environment (e.g. HOME: see what breaks)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
layout=
model=
expected=
runs=1
without_pyc=false
keep=false
workdir_override=
unset_env=()
port=8080
while [[ $# -gt 0 ]]; do
  case "$1" in
    --layout) layout=$(realpath "$2"); shift 2 ;;
    --model) model=$(realpath "$2"); shift 2 ;;
    --expect) expected=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --without-pyc) without_pyc=true; shift ;;
    --keep) keep=true; shift ;;
    --workdir) workdir_override=$2; shift 2 ;;
    --unset) unset_env+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "verify: unknown argument $1" >&2; exit 2 ;;
  esac
done
log() { echo "verify: $*" >&2; }
[[ $(id -u) -eq 0 ]] || { log "needs root (namespaces, mounts, chroot)"; exit 1; }

layout=${layout:-$("$root/hack/baseimage.sh" --print-layout)}
tool="$root/bin/baseimage/baseimage-tool"
(cd "$root" && go build -o "$tool" ./hack/baseimage)

tmp=$(mktemp -d /tmp/baseimage-verify.XXXXXX)
cleanup() {
  # Nothing is mounted outside the namespaces, which ended with their PID 1.
  if [[ $keep == true ]]; then log "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
rootfs="$tmp/rootfs"

t=$(date +%s.%N)
"$tool" extract -layout "$layout" -dir "$rootfs"
log "unpacked $("$tool" digest -layout "$layout") into $rootfs in $(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')s"

carried=false
[[ -d $rootfs/opt/ml/model ]] && carried=true
if [[ $carried == true ]]; then
  log "the image carries /opt/ml/model: serving it as it is"
  model="$rootfs/opt/ml/model"
elif [[ -z $model ]]; then
  pyenv=$("$root/hack/python-env.sh" --print-dir)
  [[ -x $pyenv/bin/python ]] || "$root/hack/python-env.sh" >&2
  log "logging a scikit-learn model with $pyenv (mlflow.sklearn.log_model, input example)"
  expected=$("$pyenv/bin/python" "$root/hack/baseimage/log_model.py" "$tmp/model" 2>/dev/null)
  model="$tmp/model"
  log "the model itself predicts $expected"
fi
log "the operator's dependency check (internal/pydeps) on this base and model:"
(cd "$root" && go run ./hack/baseimage/depcheck -layout "$layout" -model "$model") | sed 's/^/  /' >&2

if [[ $carried == false ]]; then
  mkdir -p "$rootfs/opt/ml"
  cp -r "$model" "$rootfs/opt/ml/model"
  chown -R 0:0 "$rootfs/opt/ml/model"
  find "$rootfs/opt/ml/model" -type d -exec chmod 0555 {} +
  find "$rootfs/opt/ml/model" -type f -exec chmod 0444 {} +
fi

# The environment a runtime gives the process: the config's Env, then what
# the operator adds (internal/imagebuild configure).
"$tool" config -layout "$layout" >"$tmp/config"
grep -v -e '^WORKDIR=' -e '^USER=' "$tmp/config" >"$tmp/env"
sed -i "/^MLFLOW_DISABLE_ENV_CREATION=/d" "$tmp/env"
echo MLFLOW_DISABLE_ENV_CREATION=true >>"$tmp/env"
for name in "${unset_env[@]}"; do
  sed -i "/^$name=/d" "$tmp/env"
done
workdir=$(sed -n 's/^WORKDIR=//p' "$tmp/config")
workdir=${workdir_override:-${workdir:-/}}
# The command: the config's Entrypoint and Cmd when it has an Entrypoint
# (an operator-built image), else the operator's default command.
cfgblob() {
  local m
  m=$(jq -r '.manifests[0].digest' "$layout/index.json")
  jq -r '.config.digest' "$layout/blobs/${m/://}" | sed 's|:|/|'
}
jq -c 'select(.config.Entrypoint != null) | .config.Entrypoint + (.config.Cmd // [])' \
  "$layout/blobs/$(cfgblob)" >"$tmp/command.json" || true
if [[ ! -s $tmp/command.json ]]; then
  echo '["mlflow","models","serve","-m","/opt/ml/model","-h","0.0.0.0","-p","'"$port"'","--env-manager","local"]' >"$tmp/command.json"
fi
jq -r '.[]' "$tmp/command.json" >"$tmp/command"
# The port /ping is asked on: the command's -p (or --port).
port=$(jq -r 'to_entries | map(select(.value == "-p" or .value == "--port")) | .[0].key // empty' "$tmp/command.json" |
  { read -r i && jq -r ".[$((i + 1))]" "$tmp/command.json" || echo "$port"; })
log "command: $(tr '\n' ' ' <"$tmp/command")(port $port)"

# One start: everything below runs in new namespaces; when the inner shell
# (their PID 1) exits, the server and every mount go with it.
start_once() {
  local label=$1
  R="$rootfs" TMPD="$tmp" WORKDIR="$workdir" PORT=$port LABEL="$label" \
    unshare --mount --pid --net --fork --propagation private bash -euo pipefail -c '
    mount --bind "$R" "$R"
    mount -o remount,bind,ro,nosuid,nodev "$R"
    mount -t tmpfs -o mode=1777,size=1g,nosuid,nodev tmpfs "$R/tmp"
    mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
    mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
    mount -t tmpfs -o mode=755,nosuid,size=64k tmpfs "$R/dev"
    for n in null zero full random urandom tty; do touch "$R/dev/$n"; mount --bind "/dev/$n" "$R/dev/$n"; done
    mkdir "$R/dev/shm" && mount -t tmpfs -o mode=1777,size=64m,nosuid,nodev shm "$R/dev/shm"
    ln -s /proc/self/fd "$R/dev/fd"; ln -s fd/0 "$R/dev/stdin"; ln -s fd/1 "$R/dev/stdout"; ln -s fd/2 "$R/dev/stderr"
    ip link set lo up
    mapfile -t env <"$TMPD/env"
    mapfile -t command <"$TMPD/command"
    echo "verify[$LABEL]: root $(findmnt -n -o OPTIONS "$R" | cut -d, -f1), /tmp $(findmnt -n -o FSTYPE "$R/tmp"), cwd $WORKDIR; env: ${env[*]}" >&2
    t0=$(date +%s%N)
    chroot "$R" /usr/bin/setpriv --reuid=1000 --regid=1000 --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs -- \
      /usr/bin/env -i -C "$WORKDIR" "${env[@]}" \
      "${command[@]}" >"$TMPD/server-$LABEL.log" 2>&1 &
    pid=$!
    up=false
    for _ in $(seq 1200); do
      if curl -sf -o /dev/null "http://127.0.0.1:$PORT/ping"; then up=true; break; fi
      kill -0 $pid 2>/dev/null || break
      sleep 0.1
    done
    t1=$(date +%s%N)
    if [[ $up != true ]]; then
      echo "verify[$LABEL]: /ping never answered; the server log:" >&2; cat "$TMPD/server-$LABEL.log" >&2; exit 1
    fi
    echo "verify[$LABEL]: /ping answered $(( (t1 - t0) / 1000000 )) ms after the start" >&2
    answer=$(curl -sS -f -H "Content-Type: application/json" --data-binary @"$R/opt/ml/model/serving_input_example.json" "http://127.0.0.1:$PORT/invocations")
    echo "verify[$LABEL]: POST /invocations (serving_input_example.json) -> $answer" >&2
    echo "$answer" >"$TMPD/answer-$LABEL"
    # The processes of this PID namespace, as its own /proc shows them.
    for d in "$R"/proc/[0-9]*; do
      cmd=$(tr "\0" " " <"$d/cmdline" 2>/dev/null | cut -c1-90) || continue
      [[ $cmd == /opt/venv/* ]] || continue
      echo "verify[$LABEL]: pid ${d##*/} ($cmd): $(grep -E "^(Uid|Gid|Groups|CapEff|CapBnd|NoNewPrivs):" "$d/status" | tr -s "\t" " " | tr "\n" ";")" >&2
    done
    echo "verify[$LABEL]: written under /tmp: $(cd "$R/tmp" && find . -mindepth 1 -maxdepth 3 | sort | tr "\n" " ")" >&2
    kill $pid; wait $pid 2>/dev/null || true
  '
}

check_answer() {
  local label=$1
  if [[ -n $expected ]]; then
    python3 - "$tmp/answer-$label" "$expected" <<'EOF'
import json, sys
got, want = json.load(open(sys.argv[1])), json.loads(sys.argv[2])
if got != want:
    sys.exit(f"verify: the served answer {got} is not the model's own {want}")
print(f"verify: the served predictions equal the model's own: {got}", file=sys.stderr)
EOF
  fi
}

for i in $(seq "$runs"); do
  start_once "pyc-$i"
  check_answer "pyc-$i"
done
if [[ $without_pyc == true ]]; then
  n=$(find "$rootfs" -name '*.pyc' | wc -l)
  find "$rootfs" -name __pycache__ -type d -prune -exec rm -rf {} +
  log "removed $n .pyc files"
  for i in $(seq "$runs"); do
    start_once "nopyc-$i"
    check_answer "nopyc-$i"
  done
fi
log "OK"
