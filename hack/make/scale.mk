# The scale benchmark (hack/bench-scale): one operator with N
# ModelDeployments on kwok nodes. Included by the Makefile.

##@ Scale

# Flags of hack/bench-scale, e.g. BENCH_SCALE_FLAGS='-objects 20 -models 5 -idle 1m'.
BENCH_SCALE_FLAGS ?=

# kwok nodes always (LOCAL_NODE=kwok): a thousand pods do not fit one real
# node, so neither the real node nor the serving base image is needed.
.PHONY: bench-scale
bench-scale: manifests controlplane pythonenv registry ## One operator, N ModelDeployments on 50 models (kwok): time to Ready, idle API requests/writes and MLflow requests, RSS, a new version reaching its objects, builds (BENCH_SCALE_FLAGS='-objects 100,1000 -models 50 -idle 1m').
	LOCAL_NODE=kwok MLFLOW_PYTHON_ENV="$(PYTHON_ENV)" go run ./hack/bench-scale $(BENCH_SCALE_FLAGS)
