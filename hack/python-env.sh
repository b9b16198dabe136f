#!/usr/bin/env bash
# Creates the Python virtual environment the tests and the demo use: a real
# MLflow (server, client, basic-auth app) and scikit-learn, at the versions
# pinned in hack/python/requirements.lock, from PyPI. Cached: a second run
# only checks the stamp and returns.
#
#   hack/python-env.sh              create or reuse; prints nothing else when cached
#   hack/python-env.sh --print-dir  print the environment's folder
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
lock="$root/hack/python/requirements.lock"
mlflow_version=$(awk -F'==' '$1=="mlflow" {print $2}' "$lock")
# The folder is keyed by a hash of the lock file: changing a pin makes a new one.
key=$( (cat "$lock"; python3 --version) | sha256sum | cut -c1-12)
dir="$root/bin/python/mlflow-${mlflow_version}-${key}"

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$dir"
  exit 0
fi
if [[ -f "$dir/.complete" ]]; then
  echo "python-env: cached ($dir)"
  exit 0
fi

if ! python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
  echo "python-env: Python 3.10 or newer is needed (found $(python3 --version 2>&1))" >&2
  exit 1
fi
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  echo "python-env: python3 lacks venv/ensurepip; installing Debian's python3-venv" >&2
  apt-get update -qq && apt-get install -y -qq python3-venv
fi

echo "python-env: creating $dir (mlflow $mlflow_version; about 2 minutes the first time)"
start=$SECONDS
rm -rf "$dir"
python3 -m venv "$dir"
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip==26.3"
# One line per package, so the wait is never silent; a failure fails the script.
"$dir/bin/python" -m pip install --no-input --disable-pip-version-check -r "$lock" 2>&1 |
  { grep --line-buffered -E '^(Collecting|Successfully installed|ERROR)' | sed -u 's/^/  /' || true; }
"$dir/bin/python" -c 'import mlflow, sklearn; print("python-env: mlflow", mlflow.__version__, "scikit-learn", sklearn.__version__)'
touch "$dir/.complete"
echo "python-env: ready in $((SECONDS - start))s"
