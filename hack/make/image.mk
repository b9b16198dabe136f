# The operator's own image, built without Docker (hack/operator-image, see
# docs/image.md), and the lint of the GitHub Actions workflows. Included by
# the Makefile.

##@ Operator image

# The OCI layout make image writes, and the digest file make image-push
# writes (make release reads it).
IMAGE_LAYOUT := dist/image
IMAGE_DIGEST_FILE := dist/image.digest
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64
# What the labels say. The version is VERSION when given (make release
# passes it), else `git describe --tags --always`. The time of every file
# and of the config is the commit's (SOURCE_DATE_EPOCH when set), so that
# two builds of one commit give one digest.
IMAGE_VERSION ?= $(or $(VERSION),$(shell git describe --tags --always 2>/dev/null),dev)
IMAGE_REVISION ?= $(or $(shell git rev-parse HEAD 2>/dev/null),unknown)
IMAGE_EPOCH ?= $(or $(SOURCE_DATE_EPOCH),$(shell git log -1 --format=%ct 2>/dev/null),0)
IMAGE_SOURCE ?= https://github.com/mlflow-operator/mlflow-operator
# An SPDX expression. The repository has no LICENSE file yet, so the label
# says NOASSERTION (SPDX for "not stated"); set it with the license.
IMAGE_LICENSES ?= NOASSERTION
# IMAGE_INSECURE=1: push over plain HTTP to a registry that is not on
# loopback (localhost and 127.0.0.1 always are).
IMAGE_INSECURE ?=

OPERATOR_IMAGE_TOOL := $(LOCALBIN)/operator-image/operator-image

.PHONY: operator-image-tool
operator-image-tool:
	@mkdir -p $(dir $(OPERATOR_IMAGE_TOOL))
	go build -o $(OPERATOR_IMAGE_TOOL) ./hack/operator-image

.PHONY: image
image: operator-image-tool ## Build the operator image (linux/amd64 + linux/arm64) without Docker, reproducibly, into dist/image (an OCI layout); print the index digest.
	@if [ -n "$$(git status --porcelain -- go.mod go.sum cmd api controllers internal 2>/dev/null)" ]; then \
		echo "image: the working tree has changes under go.mod, cmd, api, controllers or internal: the image is not commit $(IMAGE_REVISION)'s" >&2; fi
	$(OPERATOR_IMAGE_TOOL) build -out $(IMAGE_LAYOUT) -platforms $(IMAGE_PLATFORMS) \
		-epoch "$(IMAGE_EPOCH)" -version "$(IMAGE_VERSION)" -revision "$(IMAGE_REVISION)" \
		-source "$(IMAGE_SOURCE)" -licenses "$(IMAGE_LICENSES)" -cache $(LOCALBIN)/operator-image

.PHONY: image-push
image-push: image ## Push the operator image's index to IMG (docker config credentials; plain HTTP for localhost); print IMG's repository@sha256:..., write dist/image.digest.
	$(OPERATOR_IMAGE_TOOL) push -layout $(IMAGE_LAYOUT) -ref "$(IMG)" -default-tag "$(IMAGE_VERSION)" \
		-digest-file $(IMAGE_DIGEST_FILE) $(if $(IMAGE_INSECURE),-insecure)

# The same image with a Docker engine and buildx (not used by make image;
# see docs/image.md): both platforms, pushed to IMG.
.PHONY: image-docker
image-docker: ## Build and push the operator image with docker buildx instead (needs a Docker engine with buildx).
	docker buildx build --platform $(IMAGE_PLATFORMS) --push -t $(IMG) \
		--build-arg VERSION="$(IMAGE_VERSION)" --build-arg REVISION="$(IMAGE_REVISION)" \
		--build-arg CREATED="$$(date -u -d @$(IMAGE_EPOCH) +%Y-%m-%dT%H:%M:%SZ)" \
		--build-arg SOURCE="$(IMAGE_SOURCE)" --build-arg LICENSES="$(IMAGE_LICENSES)" \
		--build-arg SOURCE_DATE_EPOCH="$(IMAGE_EPOCH)" .

##@ Workflows

ACTIONLINT_VERSION ?= v1.7.12
ACTIONLINT := $(TOOLBIN)/actionlint-$(ACTIONLINT_VERSION)/actionlint

$(ACTIONLINT):
	@echo "building actionlint $(ACTIONLINT_VERSION) from source"
	GOBIN=$(dir $@) go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

# actionlint runs shellcheck on every run: step when it finds it. As root,
# Debian's shellcheck is installed when missing (like hack/registry.sh does
# with docker-registry); otherwise the run: steps go unchecked, and it says so.
.PHONY: lint-workflows
lint-workflows: $(ACTIONLINT) ## Lint .github/workflows with actionlint (and shellcheck on the run: steps when installed).
	@if ! command -v shellcheck >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "lint-workflows: installing Debian's shellcheck"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck >/dev/null 2>&1 || echo "lint-workflows: could not install shellcheck"; fi
	@if command -v shellcheck >/dev/null; then \
		echo "lint-workflows: actionlint $(ACTIONLINT_VERSION) with $$(shellcheck --version | sed -n 's/^version: /shellcheck /p')"; \
	else echo "lint-workflows: actionlint $(ACTIONLINT_VERSION) without shellcheck (not installed): run: steps are not checked"; fi
	$(ACTIONLINT) -shellcheck="$$(command -v shellcheck || true)" -pyflakes=

# make test lints the workflows, and builds the image first: test/image then
# finds the go build cache warm for both platforms (a cold one takes minutes).
TEST_DEPS += lint-workflows image
