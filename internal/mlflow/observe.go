package mlflow

import (
	"net/http"
	"strings"
	"time"
)

// RequestObserver is told of every HTTP request the client sends, every try
// and every redirect: the operation (one of Operations), the HTTP status (0
// when no answer came) and the time until the answer's headers (a
// download's body is not included). The operator counts them in its
// metrics; the client itself knows nothing of metrics.
type RequestObserver func(operation string, status int, d time.Duration)

// WithRequestObserver sets the observer of every request.
func WithRequestObserver(o RequestObserver) Option { return func(c *Client) { c.observer = o } }

// Operations are the names a RequestObserver is given: the API endpoints
// the client calls, and "other" for anything else (a redirect elsewhere).
var Operations = []string{
	"registered-models/get", "registered-models/alias", "registered-models/get-latest-versions",
	"model-versions/get", "model-versions/get-download-uri", "model-versions/get-artifact",
	"runs/get", "logged-models/get", "artifacts/list", "artifacts/download", "other",
}

// operation names the endpoint of a request URL path: a fixed set, never
// a name or a path from the request, so that it may be a metric's label.
func operation(path string) string {
	if i := strings.Index(path, artifactsPrefix); i >= 0 {
		if rest := path[i+len(artifactsPrefix):]; rest == "" || rest == "/" {
			return "artifacts/list"
		}
		return "artifacts/download"
	}
	if i := strings.Index(path, apiPrefix); i >= 0 {
		rest := strings.TrimSuffix(path[i+len(apiPrefix):], "/")
		if strings.HasPrefix(rest, "logged-models/") {
			return "logged-models/get"
		}
		for _, op := range Operations {
			if rest == op {
				return op
			}
		}
		return "other"
	}
	if strings.HasSuffix(path, "/model-versions/get-artifact") {
		return "model-versions/get-artifact"
	}
	return "other"
}

// observed tells the observer of every round trip.
type observed struct {
	next     http.RoundTripper
	observer RequestObserver
}

func (o observed) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := o.next.RoundTrip(r)
	status := 0
	if err == nil {
		status = resp.StatusCode
	}
	o.observer(operation(r.URL.Path), status, time.Since(start))
	return resp, err
}
