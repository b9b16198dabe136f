"""Logs a scikit-learn model the way the tests do, and downloads it.

    python log_model.py OUT

Trains a LogisticRegression on iris, logs it with an input example
(mlflow.sklearn.log_model, as test/harness/mlflowserver/fixture.py does
against a server) into a local MLflow store in a temporary folder (sqlite,
artifacts in files), downloads the logged model to OUT (MLmodel, the model
file, requirements.txt, serving_input_example.json, ...) and prints the
model's own predictions on the example as JSON, for the served answer to be
compared with.
"""

import json
import os
import sys
import tempfile
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

import mlflow  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402


def main(out):
    with tempfile.TemporaryDirectory(prefix="baseimage-store-") as store:
        mlflow.set_tracking_uri(f"sqlite:///{store}/mlflow.db")
        exp = mlflow.create_experiment("baseimage-verify", artifact_location=f"file://{store}/artifacts")
        X, y = load_iris(return_X_y=True, as_frame=True)
        example = X.head(3)
        model = LogisticRegression(max_iter=300).fit(X, y)
        with mlflow.start_run(experiment_id=exp):
            info = mlflow.sklearn.log_model(sk_model=model, name="model", input_example=example)
        path = mlflow.artifacts.download_artifacts(artifact_uri=info.model_uri, dst_path=out)
        if os.path.realpath(path) != os.path.realpath(out):
            sys.exit(f"downloaded to {path}, not {out}")
    print(json.dumps({"predictions": [int(p) for p in model.predict(example)]}))


if __name__ == "__main__":
    main(sys.argv[1])
