#!/usr/bin/env bash
# Writes the release bundle of one version (make release VERSION=vX.Y.Z IMG=<repo>):
#
#   install.yaml                   the CRD, namespace, RBAC, Services, NetworkPolicy and
#                                  the Deployment, from config/default, with the image
#                                  pinned as <repo>@sha256:...
#   mlflow-operator-X.Y.Z.tgz      the Helm chart, version and appVersion X.Y.Z, the
#                                  same image digest in its values
#   SHA256SUMS                     sha256sum of both
#
# Environment:
#   VERSION          required; semver with a leading v: v1.2.3, v1.3.0-rc.1
#   IMG              required; the image repository, without tag or digest
#   RELEASE_DIGEST   sha256:<64 hex> of the image; when unset, `make image-push
#                    IMG=$IMG:$VERSION` pushes the image and writes dist/image.digest
#   RELEASE_OUT_DIR  where the bundle goes (default: dist/)
#   HELM, KUSTOMIZE  the binaries; when unset they are built from source
#                    (hack/helm.sh, make kustomize)
#
# Files tracked in git are never edited: the image goes in through a
# temporary kustomize overlay and a temporary copy of the chart.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
chart_src="$root/charts/mlflow-operator"

die() {
  echo "release: $*" >&2
  exit 1
}

# 1. What to release.
VERSION=${VERSION:-}
IMG=${IMG:-}
semver='^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)(\.(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*)?$'
[[ -n "$VERSION" ]] || die "VERSION is not set: make release VERSION=v1.2.3 IMG=registry.example.com/mlflow-operator"
if [[ "$VERSION" == *+* ]]; then
  die "VERSION=$VERSION has build metadata (+...), which cannot be an image tag; use a pre-release such as v1.2.3-rc.1"
fi
if ! [[ "$VERSION" =~ $semver ]]; then
  die "VERSION=$VERSION is not a semantic version with a leading v (v<major>.<minor>.<patch>[-<pre-release>], e.g. v1.2.3 or v1.3.0-rc.1)"
fi
version=${VERSION#v}
[[ -n "$IMG" ]] || die "IMG is not set: the image repository without tag, e.g. IMG=ghcr.io/mlflow-operator/mlflow-operator"
last=${IMG##*/}
if [[ "$IMG" == *@* || "$last" == *:* || "$IMG" != */* || "$IMG" =~ [[:space:]] ]]; then
  die "IMG=$IMG must be a repository without tag or digest, e.g. ghcr.io/mlflow-operator/mlflow-operator (the tag is VERSION, the digest is pinned by the release)"
fi

out=${RELEASE_OUT_DIR:-$root/dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# 2. The image digest: given, or from pushing the image.
digest=${RELEASE_DIGEST:-}
if [[ -z "$digest" ]]; then
  echo "release: pushing $IMG:$VERSION (make image-push)"
  rm -f "$root/dist/image.digest"
  make -C "$root" --no-print-directory image-push IMG="$IMG:$VERSION"
  [[ -s "$root/dist/image.digest" ]] || die "make image-push wrote no dist/image.digest"
  digest=$(tr -d '[:space:]' <"$root/dist/image.digest")
fi
[[ "$digest" =~ ^sha256:[a-f0-9]{64}$ ]] || die "image digest '$digest' is not sha256:<64 lowercase hex>"
image="$IMG@$digest"
echo "release: $VERSION with image $image into $out"

# 3. The tools.
HELM=${HELM:-}
if [[ -z "$HELM" ]]; then
  "$root/hack/helm.sh"
  HELM=$("$root/hack/helm.sh" --print-path)
fi
KUSTOMIZE=${KUSTOMIZE:-}
if [[ -z "$KUSTOMIZE" ]]; then
  make -C "$root" --no-print-directory kustomize
  KUSTOMIZE=$(make -C "$root" --no-print-directory -s print-kustomize)
fi
[[ -x "$HELM" ]] || die "helm not found at $HELM"
[[ -x "$KUSTOMIZE" ]] || die "kustomize not found at $KUSTOMIZE"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# helm keeps its cache and configuration here, not in $HOME.
export HELM_CACHE_HOME="$tmp/helm/cache" HELM_CONFIG_HOME="$tmp/helm/config" HELM_DATA_HOME="$tmp/helm/data"

# 4. The chart must carry the CRDs, RBAC rules and alerts config/ has.
diff -r -q "$root/config/crd/bases" "$chart_src/crds" >/dev/null ||
  die "charts/mlflow-operator/crds differs from config/crd/bases: run make chart-sync and commit"
for pair in role.yaml:manager-role.yaml leader_election_role.yaml:leader-election-role.yaml; do
  cmp -s "$root/config/rbac/${pair%%:*}" "$chart_src/files/${pair##*:}" ||
    die "charts/mlflow-operator/files/${pair##*:} differs from config/rbac/${pair%%:*}: run make chart-sync and commit"
done
cmp -s "$root/config/prometheus/alerts.yaml" "$chart_src/files/prometheus-rule.yaml" ||
  die "charts/mlflow-operator/files/prometheus-rule.yaml differs from config/prometheus/alerts.yaml: run make chart-sync and commit"

# 5. install.yaml: config/default through an overlay that pins the image and
# labels every object with the version. The JSON patch checks that container
# 0 is the manager before replacing its image; the replacement (run after
# the patch) copies it into MLFLOW_OPERATOR_IMAGE, the request-metrics
# sidecar's image, as config/manager does.
mkdir -p "$tmp/overlay"
# kustomize takes relative paths only.
base=$(realpath --relative-to="$tmp/overlay" "$root/config/default")
cat >"$tmp/overlay/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $base
labels:
  - pairs:
      app.kubernetes.io/version: "$version"
patches:
  - target:
      group: apps
      version: v1
      kind: Deployment
      name: mlflow-operator-controller-manager
    patch: |-
      - op: test
        path: /spec/template/spec/containers/0/name
        value: manager
      - op: replace
        path: /spec/template/spec/containers/0/image
        value: $image
replacements:
  - source:
      kind: Deployment
      name: mlflow-operator-controller-manager
      fieldPath: spec.template.spec.containers.[name=manager].image
    targets:
      - select:
          kind: Deployment
          name: mlflow-operator-controller-manager
        fieldPaths:
          - spec.template.spec.containers.[name=manager].env.[name=MLFLOW_OPERATOR_IMAGE].value
EOF
{
  echo "# mlflow-operator $VERSION: kubectl apply --server-side -f install.yaml"
  "$KUSTOMIZE" build "$tmp/overlay"
} >"$tmp/install.yaml"
n=$(grep -c "image: $image\$" "$tmp/install.yaml" || true)
[[ "$n" == 1 ]] || die "install.yaml: expected the image $image once, found it $n times"
n=$(grep -c "value: $image\$" "$tmp/install.yaml" || true)
[[ "$n" == 1 ]] || die "install.yaml: expected the image $image once in MLFLOW_OPERATOR_IMAGE, found it $n times"
mv "$tmp/install.yaml" "$out/install.yaml"

# 6. The chart: a copy with the repository and digest in values.yaml (only
# the image block's keys are rewritten), linted, then packaged.
cp -r "$chart_src" "$tmp/mlflow-operator"
awk -v repo="$IMG" -v digest="$digest" '
  /^[^ #]/ { in_image = ($0 ~ /^image:/) }
  in_image && /^  repository:/ { print "  repository: " repo; seen_repo = 1; next }
  in_image && /^  digest:/ { print "  digest: \"" digest "\""; seen_digest = 1; next }
  { print }
  END { if (!seen_repo || !seen_digest) exit 1 }
' "$chart_src/values.yaml" >"$tmp/mlflow-operator/values.yaml" ||
  die "charts/mlflow-operator/values.yaml: image.repository or image.digest not found"
"$HELM" lint --strict "$tmp/mlflow-operator" >"$tmp/lint.log" 2>&1 || {
  cat "$tmp/lint.log" >&2
  die "helm lint of the release chart failed"
}
rm -f "$out/mlflow-operator-$version.tgz"
"$HELM" package "$tmp/mlflow-operator" --version "$version" --app-version "$version" --destination "$out" >/dev/null
[[ -s "$out/mlflow-operator-$version.tgz" ]] || die "helm package wrote no $out/mlflow-operator-$version.tgz"

# 7. Checksums.
(cd "$out" && sha256sum install.yaml "mlflow-operator-$version.tgz" >SHA256SUMS)
echo "release: wrote $out/install.yaml, $out/mlflow-operator-$version.tgz, $out/SHA256SUMS"
