# mlflow-operator. `make help` lists the targets.

# Image of the operator itself, for docker-build and deploy.
IMG ?= ghcr.io/mlflow-operator/mlflow-operator:dev

# Tools, pinned and built from source into bin/ (nothing is downloaded prebuilt).
CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.8.1

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

ROOT := $(abspath .)
LOCALBIN := $(ROOT)/bin
TOOLBIN := $(LOCALBIN)/tools
CONTROLLER_GEN := $(TOOLBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)/controller-gen
KUSTOMIZE := $(TOOLBIN)/kustomize-$(KUSTOMIZE_VERSION)/kustomize
# The folder holding kube-apiserver, etcd and kubectl built by hack/controlplane.sh.
CONTROLPLANE_DIR = $(shell hack/controlplane.sh --print-dir)
KUBECTL = $(CONTROLPLANE_DIR)/kubectl
# The Python environment with MLflow and scikit-learn made by hack/python-env.sh.
PYTHON_ENV = $(shell hack/python-env.sh --print-dir)

# go test flags; e.g. make test GOTESTFLAGS='-run TestBuilders -v'
GOTESTFLAGS ?=

# Targets of one area each (packaging, release...) live in hack/make/*.mk.
# Each may add to TEST_DEPS (what make test builds first) and TEST_ENV
# (variables the suites get, e.g. HELM=path).
TEST_DEPS :=
TEST_ENV :=
include $(wildcard hack/make/*.mk)

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code from the API types.
	$(CONTROLLER_GEN) object paths="./api/..."

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate the CRD and RBAC from kubebuilder markers.
	$(CONTROLLER_GEN) crd rbac:roleName=manager-role paths="./..." \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac

.PHONY: docs
docs: manifests ## Generate docs/reference.md from the CRD.
	go run ./hack/crd-reference config/crd/bases/serving.mlflow-operator.io_modeldeployments.yaml > docs/reference.md

.PHONY: fmt
fmt: ## go fmt.
	go fmt ./...

.PHONY: vet
vet: ## go vet.
	go vet ./...

.PHONY: controlplane
controlplane: ## Build kube-apiserver, etcd, kubectl, kube-controller-manager, kube-scheduler and kwok from source into bin/ (cached).
	hack/controlplane.sh kube-apiserver etcd kubectl kube-controller-manager kube-scheduler kwok

.PHONY: pythonenv
pythonenv: ## Create the pinned Python environment with MLflow and scikit-learn (cached).
	hack/python-env.sh

.PHONY: registry
registry: ## Install Debian's docker-registry (the CNCF distribution server) when missing.
	hack/registry.sh

.PHONY: baseimage
baseimage: ## Build the serving base image (Debian rootfs + pinned MLflow and scikit-learn) without Docker, reproducibly, into bin/baseimage (cached; needs root).
	hack/baseimage.sh

.PHONY: realnode
realnode: controlplane registry ## Build kubelet, kube-proxy, containerd, its runc shim and pause from source; install runc, CNI plugins, iptables, nftables, conntrack from Debian (cached).
	hack/realnode.sh

# The real node (kubelet, containerd, runc in namespaces of their own) and
# the serving base image need root: as root, make test requires them and the
# end-to-end suite runs on the real node; otherwise (or with LOCAL_NODE=kwok)
# it runs on kwok nodes.
ifeq ($(shell id -u),0)
ifneq ($(LOCAL_NODE),kwok)
REAL_NODE_DEPS = realnode baseimage
REQUIRE_REAL_NODE = 1
endif
endif

# Unit tests: every package's own tests; they need nothing built and run
# with the race detector. The other packages are suites on real parts.
UNIT_PKGS = ./api/... ./internal/... ./test/config/argocd/... ./test/architecture/...
SUITE_PKGS = $$(go list ./... | grep -v -e /test/e2e -e /test/install -e /internal/ -e /api/ -e /test/config/argocd -e /test/architecture)

.PHONY: test
test: manifests generate fmt vet controlplane pythonenv registry $(REAL_NODE_DEPS) $(TEST_DEPS) ## Run every test: unit, integration (real kube-apiserver + etcd, MLflow server, registry), then the end-to-end suite on a local cluster.
	go test -race $(UNIT_PKGS) $(GOTESTFLAGS)
	KUBEBUILDER_ASSETS="$(CONTROLPLANE_DIR)" KUBECTL="$(KUBECTL)" MLFLOW_PYTHON_ENV="$(PYTHON_ENV)" $(TEST_ENV) go test $(SUITE_PKGS) $(GOTESTFLAGS)
	$(E2E_TEST)

# The end-to-end suite runs on its own after the others: it starts a whole
# cluster, MLflow, a registry and the operator binary, and should not share
# the two cores with the envtest suites. -count=1: its results depend on
# processes and binaries go test cannot see.
# test/install then installs the operator's own image as a pod, from the
# release bundle and the Helm chart (the real node only). -p 1: one cluster
# at a time.
E2E_TEST = MLFLOW_PYTHON_ENV="$(PYTHON_ENV)" E2E_REQUIRE_REAL_NODE=$(REQUIRE_REAL_NODE) $(TEST_ENV) go test -p 1 ./test/e2e/ ./test/install/ -count=1 -timeout 50m -v $(GOTESTFLAGS)

.PHONY: test-e2e
test-e2e: manifests controlplane pythonenv registry $(REAL_NODE_DEPS) $(TEST_DEPS) ## Only the end-to-end suite (operator binary on a local cluster with a real node, real MLflow, registry).
	$(E2E_TEST)

.PHONY: test-unit
test-unit: ## Run every package's unit tests with the race detector (no control plane, no MLflow server, nothing built).
	go test -race $(UNIT_PKGS) $(GOTESTFLAGS)

.PHONY: verify
verify: generate manifests docs fmt ## Regenerate everything and fail when the tree changes.
	go mod tidy
	@if [ -n "$$(git status --porcelain)" ]; then \
		echo "verify: generated files, go.mod or formatting are not current; run 'make generate manifests docs fmt' and 'go mod tidy', then commit:"; \
		git status --porcelain; \
		git --no-pager diff --stat; exit 1; \
	fi
	@echo "verify: generated code, manifests and formatting are current"

##@ Demo

.PHONY: demo
demo: manifests controlplane pythonenv registry $(REAL_NODE_DEPS) ## The whole flow locally: cluster, MLflow, registry, operator, a real model promoted twice. Ctrl-C stops it (DEMO_EXIT=1: exit at once).
	go run ./hack/demo

.PHONY: local-cluster
local-cluster: controlplane ## Only the local cluster (source-built control plane, kwok nodes) until Ctrl-C; prints its KUBECONFIG.
	go run ./hack/local-cluster

.PHONY: demo-down
demo-down: ## Stop what a demo left running and remove .demo/.
	hack/demo-down.sh

##@ Benchmarks

CRANE := $(TOOLBIN)/crane-v0.22.1/crane

$(CRANE):
	@echo "building crane v0.22.1 from source (the same go-containerregistry the operator uses)"
	GOBIN=$(dir $@) go install github.com/google/go-containerregistry/cmd/crane@v0.22.1

.PHONY: bench-build
bench-build: pythonenv registry $(CRANE) ## Time and peak RSS of image builds (10 MiB, 100 MiB, 1 GiB models) vs a scripted crane pipeline.
	go build -o $(LOCALBIN)/bench-build ./hack/bench-build
	MLFLOW_PYTHON_ENV="$(PYTHON_ENV)" $(LOCALBIN)/bench-build -crane $(CRANE) $(BENCH_BUILD_FLAGS)

##@ Build

.PHONY: bench-e2e
bench-e2e: manifests controlplane pythonenv registry $(REAL_NODE_DEPS) ## Promotion (step by step) and rollback latency and failed requests per rollout strategy, on the real node or kwok (BENCH_RUNS, BENCH_ROLLBACK_RUNS, BENCH_STRATEGIES, BENCH_POLLING=1, BENCH_POLL_INTERVAL; LOCAL_NODE=kwok).
	MLFLOW_PYTHON_ENV="$(PYTHON_ENV)" BENCH_REQUIRE_REAL_NODE=$(REQUIRE_REAL_NODE) go run ./hack/bench-e2e

.PHONY: build
build: generate fmt vet ## Build the manager binary into bin/manager.
	go build -o $(LOCALBIN)/manager ./cmd

.PHONY: run
run: manifests generate ## Run the manager against the cluster of the current kubeconfig.
	go run ./cmd --leader-elect=false

.PHONY: docker-build
docker-build: ## Build the operator image (needs a Docker engine).
	docker build -t $(IMG) .

##@ Deployment

.PHONY: install
install: manifests $(KUSTOMIZE) ## Install the CRD into the cluster of the current kubeconfig.
	$(KUSTOMIZE) build config/crd | kubectl apply --server-side -f -

.PHONY: uninstall
uninstall: manifests $(KUSTOMIZE) ## Remove the CRD (and every ModelDeployment) from the cluster.
	$(KUSTOMIZE) build config/crd | kubectl delete --ignore-not-found -f -

.PHONY: deploy
deploy: manifests $(KUSTOMIZE) ## Deploy the operator (IMG) into the cluster of the current kubeconfig.
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/default | kubectl apply --server-side -f -

.PHONY: undeploy
undeploy: $(KUSTOMIZE) ## Remove the operator from the cluster.
	$(KUSTOMIZE) build config/default | kubectl delete --ignore-not-found -f -

##@ Tools

$(CONTROLLER_GEN):
	@echo "building controller-gen $(CONTROLLER_TOOLS_VERSION) from source"
	GOBIN=$(dir $@) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)

$(KUSTOMIZE):
	@echo "building kustomize $(KUSTOMIZE_VERSION) from source"
	GOBIN=$(dir $@) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

.PHONY: kustomize controller-gen
kustomize: $(KUSTOMIZE) ## Build kustomize from source into bin/tools.
controller-gen: $(CONTROLLER_GEN) ## Build controller-gen from source into bin/tools.
