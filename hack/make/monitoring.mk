# Monitoring: Prometheus and promtool. test/monitoring runs promtool on the
# operator's metrics exposition and on the alerts of config/prometheus, and
# asks a real Prometheus through the Canary analysis client; test/install
# runs a real Prometheus against the operator in the cluster (see
# docs/operations.md). Included by the Makefile.

# Both built from source by hack/prometheus.sh (version pinned there) into
# bin/tools/prometheus-<version>/.
PROMTOOL = $(shell hack/prometheus.sh --print-path promtool)
PROMETHEUS = $(shell hack/prometheus.sh --print-path prometheus)

# make test builds them first and hands the tests their paths.
TEST_DEPS += prometheus
TEST_ENV += PROMTOOL=$(PROMTOOL) PROMETHEUS=$(PROMETHEUS)

##@ Monitoring

.PHONY: prometheus promtool
prometheus promtool: ## Build Prometheus and promtool from source into bin/tools (cached).
	hack/prometheus.sh

.PHONY: monitoring-test
monitoring-test: prometheus ## Only the monitoring tests: promtool on the metrics exposition, the alerts and their rule tests; the dashboard's and alerts' metric names; the Canary analysis client against a real Prometheus.
	PROMTOOL="$(PROMTOOL)" PROMETHEUS="$(PROMETHEUS)" go test ./test/monitoring/... $(GOTESTFLAGS)
