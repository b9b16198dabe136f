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
const serveInit = `import os, signal, subprocess, sys
child = subprocess.Popen(sys.argv[1:], start_new_session=True)
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
