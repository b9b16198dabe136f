"""Test fixture for a real MLflow tracking server.

Reads a JSON list of operations on stdin, runs them with the MLflow client
against MLFLOW_TRACKING_URI (credentials from the usual MLFLOW_TRACKING_*
variables) and prints a JSON list with one result per operation. One process
runs many operations, since importing MLflow takes seconds.

Operations:
  {"op": "register", "model": NAME, "kind": "iris"|"raises"|"sized"|"broken"|"dying", "seed": N,
   "size_bytes": N, "die_after": SECONDS, "alias": A, "stage": S}
      trains and logs a model with an input example, registers a new version,
      then sets the alias / stage when given. -> {version, run_id, source, model_id}
  {"op": "set_alias", "model": NAME, "alias": A, "version": V}
      (V "$prev": the version the operation before registered)
  {"op": "delete_alias", "model": NAME, "alias": A}
  {"op": "transition", "model": NAME, "version": V, "stage": S}
  {"op": "create_webhook", "name": N, "url": U, "secret": S, "events": [E, ...]}
      -> {webhook_id}
  {"op": "delete_webhook", "webhook_id": ID}
  {"op": "create_user", "username": U, "password": P}   (basic-auth servers)
  {"op": "register_foreign_source", "model": NAME, "artifact_root": URI, "via": "source"|"run"}
      registers a version whose files MLflow says are below URI (e.g.
      mlflow-artifacts://other-host:port/x), which nothing is uploaded to: an
      experiment with that artifact location, an empty run in it, and a
      version whose source is the run's artifact URI + /model ("source") or
      runs:/<run>/model ("run"). -> {version, run_id, source}
"""

import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
# MLflow loads a model while logging it (to check its input example):
# DyingModel must not kill this process then, only the scoring server.
os.environ["MLFLOW_OPERATOR_FIXTURE"] = "1"

import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow import MlflowClient  # noqa: E402


class RaisingModel(mlflow.pyfunc.PythonModel):
    """A model whose predict always fails, as a broken model version would."""

    def predict(self, context, model_input, params=None):
        raise RuntimeError("this model version is broken on purpose")


class ConstantModel(mlflow.pyfunc.PythonModel):
    """A model carrying a large artifact; predicts its size for every row."""

    def load_context(self, context):
        self.size = os.path.getsize(context.artifacts["blob"])

    def predict(self, context, model_input, params=None):
        return [self.size] * len(model_input)


class BrokenModel(mlflow.pyfunc.PythonModel):
    """A model that cannot load, as a version whose dependency is missing:
    its scoring server never starts, so its container crash-loops."""

    def load_context(self, context):
        raise ImportError("this model version cannot be loaded, on purpose")

    def predict(self, context, model_input, params=None):
        return [0] * len(model_input)


class DyingModel(mlflow.pyfunc.PythonModel):
    """A model that kills its server die_after seconds after it loaded, in
    production pods only (POD_ROLE, from the pod's role label through the
    downward API: "production", or BlueGreen's "blue" and "green"): a
    RollingUpdate candidate passes the smoke test, the production pods
    crash, as a version that fails under production conditions would."""

    def __init__(self, die_after):
        self.die_after = die_after

    def load_context(self, context):
        import threading
        import time

        if os.environ.get("MLFLOW_OPERATOR_FIXTURE") or os.environ.get("POD_ROLE") in (None, "candidate"):
            return

        def die():
            time.sleep(self.die_after)
            os._exit(1)

        threading.Thread(target=die, daemon=True).start()

    def predict(self, context, model_input, params=None):
        return [1] * len(model_input)


def iris_frame():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


def register(op, client):
    name = op["model"]
    kind = op.get("kind", "iris")
    seed = int(op.get("seed", 0))
    X, y = iris_frame()
    example = X.head(3)
    with mlflow.start_run() as run:
        if kind == "iris":
            from sklearn.linear_model import LogisticRegression

            model = LogisticRegression(max_iter=300, C=1.0 + seed).fit(X, y)
            info = mlflow.sklearn.log_model(
                sk_model=model, name="model", input_example=example, registered_model_name=name
            )
        elif kind == "raises":
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=RaisingModel(),
                input_example=example,
                registered_model_name=name,
            )
        elif kind in ("broken", "dying"):
            python_model = BrokenModel() if kind == "broken" else DyingModel(float(op.get("die_after", 20)))
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=python_model,
                input_example=example,
                registered_model_name=name,
            )
        elif kind == "sized":
            import tempfile

            size = int(op["size_bytes"])
            tmp = tempfile.mkdtemp()
            blob = os.path.join(tmp, "blob.bin")
            rng = np.random.default_rng(seed)
            with open(blob, "wb") as f:
                left = size
                while left > 0:
                    n = min(left, 8 << 20)
                    f.write(rng.bytes(n))
                    left -= n
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=ConstantModel(),
                artifacts={"blob": blob},
                input_example=example,
                registered_model_name=name,
            )
        else:
            raise ValueError(f"unknown model kind {kind}")
    version = str(info.registered_model_version)
    predictions = []
    if kind == "iris":
        predictions = [int(x) for x in model.predict(example)]
    if op.get("alias"):
        client.set_registered_model_alias(name, op["alias"], version)
    if op.get("stage"):
        client.transition_model_version_stage(name, version, op["stage"])
    mv = client.get_model_version(name, version)
    return {
        "version": version,
        "run_id": run.info.run_id,
        "source": mv.source,
        "model_id": getattr(info, "model_id", "") or "",
        "predictions": predictions,
    }


def register_run_artifacts(op, client):
    """Registers a version whose source is runs:/<run>/model, the way models
    registered from a run's artifacts (MLflow 2 and older clients) are."""
    import tempfile

    from sklearn.linear_model import LogisticRegression

    name = op["model"]
    X, y = iris_frame()
    model = LogisticRegression(max_iter=300).fit(X, y)
    tmp = os.path.join(tempfile.mkdtemp(), "model")
    mlflow.sklearn.save_model(model, tmp, input_example=X.head(3))
    with mlflow.start_run() as run:
        mlflow.log_artifacts(tmp, "model")
    try:
        client.create_registered_model(name)
    except mlflow.exceptions.MlflowException:
        pass
    mv = client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    return {"version": str(mv.version), "run_id": run.info.run_id, "source": mv.source, "model_id": ""}


def register_foreign_source(op, client):
    """A version whose artifacts MLflow places on another host, as an
    attacker's server (or a misconfigured one) would answer: nothing is
    logged, so the host is never contacted here."""
    import uuid

    name = op["model"]
    exp_id = client.create_experiment(
        f"foreign-{uuid.uuid4().hex}", artifact_location=op["artifact_root"]
    )
    run = client.create_run(exp_id)
    client.set_terminated(run.info.run_id)
    try:
        client.create_registered_model(name)
    except mlflow.exceptions.MlflowException:
        pass
    if op.get("via", "source") == "run":
        source = f"runs:/{run.info.run_id}/model"
    else:
        source = run.info.artifact_uri.rstrip("/") + "/model"
    mv = client.create_model_version(name, source, run_id=run.info.run_id)
    return {"version": str(mv.version), "run_id": run.info.run_id, "source": mv.source, "model_id": ""}


def run_op(op, client):
    kind = op["op"]
    if kind == "register":
        return register(op, client)
    if kind == "register_run_artifacts":
        return register_run_artifacts(op, client)
    if kind == "register_foreign_source":
        return register_foreign_source(op, client)
    if kind == "set_alias":
        client.set_registered_model_alias(op["model"], op["alias"], str(op["version"]))
        return {}
    if kind == "delete_alias":
        client.delete_registered_model_alias(op["model"], op["alias"])
        return {}
    if kind == "transition":
        client.transition_model_version_stage(op["model"], str(op["version"]), op["stage"])
        return {}
    if kind == "create_webhook":
        wh = client.create_webhook(
            name=op["name"], url=op["url"], events=op["events"], secret=op.get("secret")
        )
        return {"webhook_id": wh.webhook_id}
    if kind == "delete_webhook":
        client.delete_webhook(op["webhook_id"])
        return {}
    if kind == "create_user":
        from mlflow.server.auth.client import AuthServiceClient

        AuthServiceClient(os.environ["MLFLOW_TRACKING_URI"]).create_user(
            op["username"], op["password"]
        )
        return {}
    raise ValueError(f"unknown operation {kind}")


def main():
    # MLflow prints progress ("View run ...") to stdout: keep stdout for the
    # JSON answer alone.
    out = sys.stdout
    sys.stdout = sys.stderr
    ops = json.load(sys.stdin)
    client = MlflowClient()
    results = []
    import time

    for op in ops:
        # "$prev" stands for the version the previous operation registered.
        if op.get("version") == "$prev":
            op = dict(op, version=results[-1]["version"])
        result = run_op(op, client)
        # When the operation finished, for latency measurements.
        result["t"] = time.time()
        results.append(result)
    json.dump(results, out)
    out.flush()


if __name__ == "__main__":
    main()
