# The operator's image, for Docker users. `make image` builds the same image
# without Docker (hack/operator-image, docs/image.md); this file runs the same
# program for the files, so both ship the same /manager and /request-metrics
# (the model pods' request-metrics sidecar; same flags), the
# same /etc/passwd and /etc/group (nonroot 65532) and the same CA bundle
# (Debian's ca-certificates at the version pinned in hack/operator-image/ca.go,
# checked by its SHA-256), owned by root and read-only, on scratch, with the
# same config. test/image checks that this file and the builder agree.
#
#   docker buildx build --platform linux/amd64,linux/arm64 -t IMG \
#     --build-arg VERSION=v0.1.0 --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg CREATED=2026-01-01T00:00:00Z --build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) .
# or: make image-docker IMG=...   (BuildKit, the default builder since Docker 23)

# The builder runs on the build machine's platform and cross-compiles.
# Debian-based (dpkg-deb reads the .deb). Pinned by tag; pin it by digest
# (golang:1.26.8-bookworm@sha256:...) where your registry policy asks for it.
FROM --platform=$BUILDPLATFORM golang:1.26.8-bookworm AS builder
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=dev
ARG SOURCE_DATE_EPOCH=0
WORKDIR /workspace
COPY go.mod go.sum ./
RUN go mod download
COPY cmd/ cmd/
COPY api/ api/
COPY controllers/ controllers/
COPY internal/ internal/
COPY hack/operator-image/ hack/operator-image/
# Builds /manager and /request-metrics with the flags make image uses and
# writes the image's files into /rootfs: the ca-certificates .deb comes from
# deb.debian.org (apt-get download when the builder's sources have the
# version) and must have the pinned SHA-256.
RUN go run ./hack/operator-image rootfs -out /rootfs -platform "${TARGETOS}/${TARGETARCH}" \
      -version "${VERSION}" -epoch "${SOURCE_DATE_EPOCH}" -cache /tmp/ca

FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
ARG SOURCE=https://github.com/mlflow-operator/mlflow-operator
ARG LICENSES=NOASSERTION
COPY --from=builder /rootfs/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
USER 65532:65532
WORKDIR /
ENTRYPOINT ["/manager"]
LABEL org.opencontainers.image.title="mlflow-operator" \
      org.opencontainers.image.description="Kubernetes operator that serves MLflow models: builds, verifies and rolls out a serving image of the model version an alias, a stage or a pin names" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="${LICENSES}"
