module github.com/mlflow-operator/mlflow-operator/hack/realnode/pause

go 1.26.0
