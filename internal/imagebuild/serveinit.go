package imagebuild

import "strconv"

// serveInit is the image's process 1, run by the base image's python3: it
// starts the serving command in a process group of its own, passes every
// stop signal on to that group and exits, with the command's status, once
// the last process of it has ended.
//
// Without it `mlflow models serve` is process 1 of its container, and the
// kernel gives process 1 no signal it has no handler for: MLflow installs
// none for SIGTERM, so the kubelet's SIGTERM was ignored, the scoring
// server killed by SIGKILL when the grace period ended, and every
// connection a client still held to it reset mid-request (measured by
// `make bench-e2e` on the real node: old pods lived 30 s after Ready, and
// one prediction in a few thousand failed with "connection reset by
// peer"). With it the scoring server (uvicorn) hears SIGTERM after the
// preStop sleep, stops accepting, closes its idle keep-alive connections
// and finishes the requests under way before it exits; process 1 waits
// for it (and reaps what else ends under it) before it exits itself, as
// the kernel kills whatever is left in the container when it does.
//
// It also spares each pod a second Python. `mlflow models serve` imports
// MLflow's whole command line (3 s of CPU, 240 MB) only to start uvicorn
// with MLflow's scoring app and wait for it, for the life of the pod. When
// it is given exactly the serve command DefaultCommand writes, and the
// MLflow this interpreter would import ships that app reading the model's
// path from the variable its command line sets, serveInit starts uvicorn
// with that app itself, as the command line would (its host and port, the
// model as a file URI). Anything else (another command, another MLflow,
// no uvicorn) runs the command as given.
const serveInit = `import os, signal, subprocess, sys
def direct(argv):
    if argv[:3] != ["mlflow", "models", "serve"] or len(argv) != 11:
        return None
    opts = dict(zip(argv[3::2], argv[4::2]))
    if sorted(opts) != ["--env-manager", "-h", "-m", "-p"] or opts["--env-manager"] != "local":
        return None
    import importlib.util
    try:
        spec = importlib.util.find_spec("mlflow")
        if spec is None or not spec.origin or importlib.util.find_spec("uvicorn") is None:
            return None
        base = os.path.join(os.path.dirname(spec.origin), "pyfunc", "scoring_server")
        with open(os.path.join(base, "__init__.py")) as f:
            init = f.read()
        with open(os.path.join(base, "app.py")) as f:
            app = f.read()
    except (ImportError, ValueError, OSError):
        return None
    if '_SERVER_MODEL_PATH = "__pyfunc_model_path__"' not in init or "scoring_server._SERVER_MODEL_PATH" not in app:
        return None
    os.environ["__pyfunc_model_path__"] = "file://" + os.path.abspath(opts["-m"])
    return [sys.executable, "-m", "uvicorn", "--host", opts["-h"], "--port", opts["-p"], "mlflow.pyfunc.scoring_server.app:app"]
child = subprocess.Popen(direct(sys.argv[1:]) or sys.argv[1:], start_new_session=True)
def forward(sig, frame):
    try:
        os.killpg(child.pid, sig)
    except ProcessLookupError:
        pass
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
    signal.signal(s, forward)
code = 1
while True:
    try:
        pid, status = os.wait()
    except ChildProcessError:
        break
    if pid == child.pid:
        code = os.waitstatus_to_exitcode(status)
        code = code if code >= 0 else 128 - code
sys.exit(code)
`

// DefaultCommand is the serving command of an image listening on port:
// MLflow's scoring server under serveInit.
func DefaultCommand(port int32) []string {
	return append([]string{"python3", "-c", serveInit},
		"mlflow", "models", "serve", "-m", ModelPath, "-h", "0.0.0.0", "-p", strconv.Itoa(int(port)), "--env-manager", "local")
}
