package mlflow

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
	"github.com/mlflow-operator/mlflow-operator/internal/text"
)

// maxMessage bounds what an error keeps of one piece of server text (an
// answer's message or body, a version, a source, a URI, a path): it ends up
// in a condition, where a proxy's HTML page has no place. A message quotes a
// few such pieces at most, so it stays within about 1 KiB.
const maxMessage = 200

// maxErrorText bounds the text of a cause that may quote the server at
// length (a URL a redirect chose, a decoding error quoting the answer).
const maxErrorText = 1024

// quote is s, which the server may have written, shortened and quoted.
func quote(s string) string { return strconv.Quote(text.Shorten(s, maxMessage)) }

// shortErr is err with its text cut to maxErrorText; errors.Is and As still
// see err.
func shortErr(err error) error {
	if err == nil || len(err.Error()) <= maxErrorText {
		return err
	}
	return &shortError{err: err}
}

type shortError struct{ err error }

func (e *shortError) Error() string { return text.Shorten(e.err.Error(), maxErrorText) }
func (e *shortError) Unwrap() error { return e.err }

// httpStatusError is the detail of a non-2xx answer. It carries no kind:
// the kind lives on the *failure.Error around it. The package keeps it for
// its own logic, which needs the status (a missing alias is a 400).
type httpStatusError struct {
	status int
	// code is MLflow's error_code, e.g. RESOURCE_DOES_NOT_EXIST.
	code string
	// message is MLflow's message, or the body of a non-JSON answer, cut short.
	message string
}

func (e *httpStatusError) Error() string {
	if e.code != "" {
		return fmt.Sprintf("HTTP %d %s: %s", e.status, e.code, e.message)
	}
	return fmt.Sprintf("HTTP %d: %s", e.status, e.message)
}

// statusOf is the HTTP status of the answer err reports, 0 when err is not
// about an answer (a network error, a timeout).
func statusOf(err error) int {
	var he *httpStatusError
	if errors.As(err, &he) {
		return he.status
	}
	return 0
}

// apiError is MLflow's JSON error body.
type apiError struct {
	ErrorCode string `json:"error_code"`
	Message   string `json:"message"`
}

// errorFromResponse classifies a non-2xx answer to op. MLflow answers JSON
// {"error_code", "message"}; its basic-auth app and proxies answer text.
func errorFromResponse(op string, resp *http.Response, body []byte) *failure.Error {
	he := &httpStatusError{status: resp.StatusCode}
	var ae apiError
	if json.Unmarshal(body, &ae) == nil && (ae.ErrorCode != "" || ae.Message != "") {
		he.code, he.message = ae.ErrorCode, ae.Message
	} else {
		he.message = strings.TrimSpace(string(body))
		if he.message == "" {
			he.message = http.StatusText(resp.StatusCode)
		}
	}
	he.message = text.Shorten(he.message, maxMessage)
	return failure.New(classify(he.status, he.code), failure.MLflow, op, he)
}

// classify is the Kind of an answer with status and MLflow error code. A 400
// is Other, not Invalid: MLflow answers 400 for things that may change (a
// missing alias), and it says nothing about the user's spec being wrong.
func classify(status int, code string) failure.Kind {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden ||
		code == "UNAUTHENTICATED" || code == "PERMISSION_DENIED":
		return failure.Unauthorized
	case status == http.StatusNotFound || code == "RESOURCE_DOES_NOT_EXIST":
		return failure.NotFound
	case retryable(status):
		return failure.Unreachable
	default:
		return failure.Other
	}
}
