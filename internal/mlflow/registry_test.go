package mlflow

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

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
		"1": {"name": "iris", "version": "1", "status": "READY", "current_stage": "Staging", "run_id": "r1"},
		"2": {"name": "iris", "version": "2", "status": "PENDING_REGISTRATION", "status_message": "uploading", "current_stage": "Production"},
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
