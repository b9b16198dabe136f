package mlflow

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
)

// Unit tests of Resolve's verdicts against a fake registry that answers as
// MLflow does (404 RESOURCE_DOES_NOT_EXIST for a missing model or version,
// 400 INVALID_PARAMETER_VALUE for a missing alias). The real server is in
// test/integration/mlflowclient.

// fakeRegistry serves one model "iris": version 1 READY in Staging with
// alias champion, version 2 PENDING_REGISTRATION in Production with alias
// next. Models named "down" answer 503, "locked" 403.
func fakeRegistry(t *testing.T) *httptest.Server {
	t.Helper()
	versions := map[string]map[string]any{
		"1": {"name": "iris", "version": "1", "status": "READY", "current_stage": "Staging", "run_id": "r1", "source": "models:/m-1"},
		"2": {"name": "iris", "version": "2", "status": "PENDING_REGISTRATION", "status_message": "uploading", "current_stage": "Production", "source": "models:/m-2"},
	}
	aliases := map[string]string{"champion": "1", "next": "2"}
	answer := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	mlflowError := func(w http.ResponseWriter, status int, code, msg string) {
		answer(w, status, map[string]string{"error_code": code, "message": msg})
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		switch name := q.Get("name"); {
		case name == "down":
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		case name == "locked":
			mlflowError(w, http.StatusForbidden, "PERMISSION_DENIED", "no")
			return
		case name != "iris":
			mlflowError(w, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "Registered Model with name="+name+" not found")
			return
		}
		switch strings.TrimPrefix(r.URL.Path, apiPrefix) {
		case "registered-models/get":
			answer(w, http.StatusOK, map[string]any{"registered_model": map[string]any{"name": "iris"}})
		case "registered-models/alias":
			v, ok := aliases[q.Get("alias")]
			if !ok {
				mlflowError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Registered model alias "+q.Get("alias")+" not found.")
				return
			}
			answer(w, http.StatusOK, map[string]any{"model_version": versions[v]})
		case "registered-models/get-latest-versions":
			var out []map[string]any
			for _, v := range versions {
				if v["current_stage"] == q.Get("stages") {
					out = append(out, v)
				}
			}
			answer(w, http.StatusOK, map[string]any{"model_versions": out})
		case "model-versions/get":
			v, ok := versions[q.Get("version")]
			switch {
			case strings.Trim(q.Get("version"), "0123456789") != "":
				mlflowError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Parameter 'version' must be an integer")
			case !ok:
				mlflowError(w, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "Model Version (name=iris, version="+q.Get("version")+") not found")
			default:
				answer(w, http.StatusOK, map[string]any{"model_version": v})
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestResolveVerdicts(t *testing.T) {
	c, err := New(fakeRegistry(t).URL, WithRetries(1, time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		ref         Reference
		wantVersion string
		wantKind    failure.Kind
		wantSubject failure.Subject
		wantMsg     string
	}{
		{"alias", Reference{Name: "iris", Alias: "champion"}, "1", 0, "", ""},
		{"stage", Reference{Name: "iris", Stage: "Staging"}, "1", 0, "", ""},
		{"version", Reference{Name: "iris", Version: "1"}, "1", 0, "", ""},
		{"missing alias", Reference{Name: "iris", Alias: "nobody"}, "", failure.NotFound, failure.Alias,
			`alias "nobody" of model "iris" does not exist`},
		{"missing model by alias", Reference{Name: "ghost", Alias: "champion"}, "", failure.NotFound, failure.Model,
			`registered model "ghost" does not exist`},
		{"missing model by stage", Reference{Name: "ghost", Stage: "Staging"}, "", failure.NotFound, failure.Model,
			`registered model "ghost" does not exist`},
		{"missing version", Reference{Name: "iris", Version: "9"}, "", failure.NotFound, failure.Version,
			`version 9 of model "iris" does not exist`},
		{"stage without a READY version", Reference{Name: "iris", Stage: "Production"}, "", failure.NotFound, failure.Stage,
			`model "iris" has no READY version in stage Production`},
		{"version not ready", Reference{Name: "iris", Version: "2"}, "", failure.NotReady, failure.Version,
			`version 2 of model "iris" is PENDING_REGISTRATION, not READY (uploading)`},
		{"alias of a version not ready", Reference{Name: "iris", Alias: "next"}, "", failure.NotReady, failure.Version,
			`version 2 of model "iris" is PENDING_REGISTRATION, not READY (uploading)`},
		// A 400 for a version is not a missing version: MLflow's error, retried.
		{"version that is not a number", Reference{Name: "iris", Version: "x"}, "", failure.Other, failure.MLflow,
			`cannot resolve iris version x: GET model-versions/get: HTTP 400 INVALID_PARAMETER_VALUE: Parameter 'version' must be an integer`},
		{"server failing", Reference{Name: "down", Alias: "champion"}, "", failure.Unreachable, failure.MLflow,
			`cannot resolve down@champion: GET registered-models/alias: HTTP 503: Service Unavailable`},
		{"credentials refused", Reference{Name: "locked", Stage: "Production"}, "", failure.Unauthorized, failure.MLflow,
			`cannot resolve locked (stage Production): GET registered-models/get-latest-versions: HTTP 403 PERMISSION_DENIED: no`},
		{"reference naming nothing", Reference{Name: "iris"}, "", failure.Other, failure.MLflow,
			"the model reference names no alias, stage or version"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mv, err := c.Resolve(context.Background(), tc.ref)
			if tc.wantSubject == "" {
				if err != nil || mv.Version != tc.wantVersion {
					t.Fatalf("%+v %v, want version %s", mv, err, tc.wantVersion)
				}
				return
			}
			if _, ok := failure.As(err); !ok {
				t.Fatalf("err %v is not a *failure.Error", err)
			}
			if failure.KindOf(err) != tc.wantKind || failure.SubjectOf(err) != tc.wantSubject {
				t.Errorf("%v %s, want %v %s", failure.KindOf(err), failure.SubjectOf(err), tc.wantKind, tc.wantSubject)
			}
			if err.Error() != tc.wantMsg {
				t.Errorf("message %q, want %q", err.Error(), tc.wantMsg)
			}
		})
	}
}

// TestResolveLookupOfModelFails checks that when the alias is missing but
// the model cannot be looked up, MLflow's failure is reported, not a
// missing model or alias.
func TestResolveLookupOfModelFails(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "registered-models/alias") {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error_code":"INVALID_PARAMETER_VALUE","message":"Registered model alias x not found."}`))
			return
		}
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	c, _ := New(srv.URL, WithRetries(0, 0, 0))
	_, err := c.Resolve(context.Background(), Reference{Name: "iris", Alias: "x"})
	if failure.KindOf(err) != failure.Unreachable || failure.SubjectOf(err) != failure.MLflow ||
		!strings.HasPrefix(err.Error(), "cannot resolve iris@x: GET registered-models/get: ") {
		t.Errorf("err %v, want an Unreachable MLflow from the model's lookup", err)
	}
}

// answering is a server that answers every request with body.
func answering(t *testing.T, body string) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) }))
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, WithRetries(0, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestResolveRefusesInvalidAnswers checks that a model version MLflow
// answers is checked before it is used: its number goes into image tags and
// its source decides what is downloaded.
func TestResolveRefusesInvalidAnswers(t *testing.T) {
	mv := func(fields string) string { return `{"model_version":{"name":"iris"` + fields + `}}` }
	tests := []struct {
		name, body, want string
	}{
		{"empty answer", `{}`, `MLflow answered an invalid model version ""`},
		{"no version", mv(`,"status":"READY","source":"models:/m-1"`), `MLflow answered an invalid model version ""`},
		{"leading zero", mv(`,"version":"01","source":"models:/m-1"`), `MLflow answered an invalid model version "01"`},
		{"zero", mv(`,"version":"0","source":"models:/m-1"`), `MLflow answered an invalid model version "0"`},
		{"not a number", mv(`,"version":"1;rm -rf","source":"models:/m-1"`), `MLflow answered an invalid model version "1;rm -rf"`},
		{"newline", mv(`,"version":"1\n","source":"models:/m-1"`), `MLflow answered an invalid model version "1\n"`},
		{"too many digits", mv(`,"version":"123456789012345678901","source":"models:/m-1"`), `MLflow answered an invalid model version "123456789012345678901"`},
		{"no source", mv(`,"version":"3","status":"READY"`), `MLflow answered an invalid source for version 3 of model "iris": it is empty`},
		{"source too long", mv(`,"version":"3","source":"models:/` + strings.Repeat("a", 4<<10) + `"`),
			`MLflow answered an invalid source for version 3 of model "iris": it has 4104 bytes, more than 4096`},
		{"control character in the source", mv(`,"version":"3","source":"models:/m-1\u001b[2J"`),
			`MLflow answered an invalid source for version 3 of model "iris": "models:/m-1\x1b[2J" holds control characters or invalid UTF-8`},
		{"control character in the run ID", mv(`,"version":"3","source":"models:/m-1","run_id":"r\r\n1"`),
			`MLflow answered an invalid run ID for version 3 of model "iris": "r\r\n1" holds control characters or invalid UTF-8`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := answering(t, tc.body).Resolve(context.Background(), Reference{Name: "iris", Version: "3"})
			if failure.KindOf(err) != failure.Other || failure.SubjectOf(err) != failure.MLflow || err == nil || err.Error() != tc.want {
				t.Errorf("err %v, want an Other MLflow %q", err, tc.want)
			}
		})
	}
	// The same checks hold for an alias and a stage.
	for _, ref := range []Reference{{Name: "iris", Alias: "champion"}, {Name: "iris", Stage: "Production"}} {
		body := `{"model_version":{"name":"iris","version":"","current_stage":"Production"},"model_versions":[{"name":"iris","version":"x","current_stage":"Production"}]}`
		if _, err := answering(t, body).Resolve(context.Background(), ref); err == nil || !strings.HasPrefix(err.Error(), "MLflow answered an invalid model version") {
			t.Errorf("%s: %v, want an invalid version", ref, err)
		}
	}
}

// TestServerTextCut checks that messages quoting what the server wrote stay
// short and valid UTF-8 however long that was.
func TestServerTextCut(t *testing.T) {
	long := strings.Repeat("é", 1<<19) // 1 MiB, two bytes a character
	for name, body := range map[string]string{
		"status message":              `{"model_version":{"name":"iris","version":"3","status":"FAILED_REGISTRATION","status_message":"` + long + `"}}`,
		"status":                      `{"model_version":{"name":"iris","version":"3","status":"` + long + `"}}`,
		"version":                     `{"model_version":{"name":"iris","version":"` + long + `"}}`,
		"source":                      `{"model_version":{"name":"iris","version":"3","source":"` + long[:3000] + "\u0007" + `"}}`,
		"a number the decoder quotes": `{"model_version":{"name":"iris","version":"3","creation_timestamp":` + strings.Repeat("9", 1<<20) + `}}`,
	} {
		_, err := answering(t, body).Resolve(context.Background(), Reference{Name: "iris", Version: "3"})
		if err == nil || len(err.Error()) > 1500 || !utf8.ValidString(err.Error()) {
			t.Errorf("%s: message of %d bytes, valid UTF-8 %v", name, len(fmt.Sprint(err)), utf8.ValidString(fmt.Sprint(err)))
		}
	}
	// The status message is kept, cut, for the person reading the condition.
	_, err := answering(t, `{"model_version":{"name":"iris","version":"3","status":"FAILED_REGISTRATION","status_message":"upload failed: `+long+`"}}`).
		Resolve(context.Background(), Reference{Name: "iris", Version: "3"})
	if failure.KindOf(err) != failure.NotReady || !strings.Contains(err.Error(), "(upload failed: éé") || !strings.HasSuffix(err.Error(), "...)") {
		t.Errorf("err %v", err)
	}
	// So is an artifact URI MLflow answers.
	_, err = answering(t, `{"artifact_uri":"models:/`+long+`"}`).DownloadVersion(context.Background(), "iris", "3", t.TempDir())
	if err == nil || len(err.Error()) > 1500 || !utf8.ValidString(err.Error()) {
		t.Errorf("artifact URI: message of %d bytes", len(fmt.Sprint(err)))
	}
}
