# Monitoring: promtool, which test/monitoring runs on the operator's metrics
# exposition and on the alerts of config/prometheus (see docs/operations.md).
# Included by the Makefile.

# promtool, built from source by hack/promtool.sh (version pinned there) into
# bin/tools/promtool-<version>/promtool.
PROMTOOL = $(shell hack/promtool.sh --print-path)

# make test builds promtool first and hands test/monitoring its path.
TEST_DEPS += promtool
TEST_ENV += PROMTOOL=$(PROMTOOL)

##@ Monitoring

.PHONY: promtool
promtool: ## Build promtool (Prometheus' checker) from source into bin/tools (cached).
	hack/promtool.sh

.PHONY: monitoring-test
monitoring-test: promtool ## Only the monitoring tests: promtool on the metrics exposition, the alerts and their rule tests; the dashboard's and alerts' metric names.
	PROMTOOL="$(PROMTOOL)" go test ./test/monitoring/... $(GOTESTFLAGS)
