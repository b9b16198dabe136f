# The Helm chart (charts/mlflow-operator) and the helm binary that tests it.
# Included by the Makefile.

# helm, built from source by hack/helm.sh (version pinned there) into
# bin/tools/helm-<version>/helm.
HELM = $(shell hack/helm.sh --print-path)
CHART_DIR := charts/mlflow-operator

# make test builds helm first and hands test/chart its path.
TEST_DEPS += helm
TEST_ENV += HELM=$(HELM)

##@ Helm chart

.PHONY: helm
helm: ## Build helm from source into bin/tools (cached).
	hack/helm.sh

# The chart carries copies of files of config/: the CRDs (crds/, which helm
# installs before the templates), the operator's generated ClusterRole
# (files/manager-role.yaml, whose rules templates/rbac.yaml renders) and the
# rules in its own namespace (files/leader-election-role.yaml: leader
# election, the webhook relay) and the alerts (files/prometheus-rule.yaml,
# whose rules templates/prometheusrule.yaml renders). test/chart and
# hack/release.sh fail when they differ from config/.
.PHONY: chart-sync
chart-sync: manifests ## Copy the generated CRDs, the RBAC rules and the alerts from config/ into the Helm chart.
	rm -f $(CHART_DIR)/crds/*.yaml
	cp config/crd/bases/*.yaml $(CHART_DIR)/crds/
	cp config/rbac/role.yaml $(CHART_DIR)/files/manager-role.yaml
	cp config/rbac/leader_election_role.yaml $(CHART_DIR)/files/leader-election-role.yaml
	cp config/prometheus/alerts.yaml $(CHART_DIR)/files/prometheus-rule.yaml

# make verify regenerates the chart's copies too, so a stale copy shows up
# as a change.
verify: chart-sync

.PHONY: chart-lint
chart-lint: helm ## helm lint --strict the chart.
	$(HELM) lint --strict $(CHART_DIR)

.PHONY: chart-test
chart-test: helm $(KUSTOMIZE) ## Only the chart and release tests (lint, golden templates, dry-run apply on a real API server); regenerate the golden files with GOTESTFLAGS='-args -update'.
	hack/controlplane.sh
	KUBEBUILDER_ASSETS="$(CONTROLPLANE_DIR)" HELM="$(HELM)" KUSTOMIZE="$(KUSTOMIZE)" go test ./test/chart/... $(GOTESTFLAGS)
