package mlflowclient

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
	"github.com/mlflow-operator/mlflow-operator/internal/mlflow"
	"github.com/mlflow-operator/mlflow-operator/test/harness/mlflowserver"
)

func TestResolve(t *testing.T) {
	c := newClient(t)
	// A failure is told by its Subject: every one here is NotFound, and
	// what is missing (the model, the alias, ...) is what the user must fix.
	tests := []struct {
		name        string
		ref         mlflow.Reference
		wantVersion string
		wantRun     string
		wantMissing failure.Subject
		wantMsg     string
	}{
		{"alias", mlflow.Reference{Name: "iris", Alias: "champion"}, "1", iris[0].RunID, "", ""},
		{"other alias", mlflow.Reference{Name: "iris", Alias: "challenger"}, "2", iris[1].RunID, "", ""},
		{"stage", mlflow.Reference{Name: "iris", Stage: "Production"}, "2", iris[1].RunID, "", ""},
		{"stage staging", mlflow.Reference{Name: "iris", Stage: "Staging"}, "1", iris[0].RunID, "", ""},
		{"pinned version", mlflow.Reference{Name: "iris", Version: "1"}, "1", iris[0].RunID, "", ""},
		{"missing alias", mlflow.Reference{Name: "iris", Alias: "nobody"}, "", "", failure.Alias, `alias "nobody" of model "iris" does not exist`},
		{"missing model by alias", mlflow.Reference{Name: "ghost", Alias: "champion"}, "", "", failure.Model, `registered model "ghost" does not exist`},
		{"missing model by stage", mlflow.Reference{Name: "ghost", Stage: "Production"}, "", "", failure.Model, ""},
		{"missing model by version", mlflow.Reference{Name: "ghost", Version: "1"}, "", "", failure.Model, ""},
		{"missing version", mlflow.Reference{Name: "iris", Version: "99"}, "", "", failure.Version, `version 99 of model "iris" does not exist`},
		{"empty stage", mlflow.Reference{Name: "runs-iris", Stage: "Production"}, "", "", failure.Stage, `model "runs-iris" has no READY version in stage Production`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mv, err := c.Resolve(context.Background(), tc.ref)
			if tc.wantMissing != "" {
				if !failure.IsNotFound(err) || failure.SubjectOf(err) != tc.wantMissing {
					t.Fatalf("err %v (%v %q), want NotFound %s", err, failure.KindOf(err), failure.SubjectOf(err), tc.wantMissing)
				}
				if tc.wantMsg != "" && err.Error() != tc.wantMsg {
					t.Errorf("message %q, want %q", err.Error(), tc.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if mv.Version != tc.wantVersion || mv.RunID != tc.wantRun || mv.Status != mlflow.StatusReady || mv.Source == "" {
				t.Errorf("got version %s run %s status %s source %q, want %s %s READY", mv.Version, mv.RunID, mv.Status, mv.Source, tc.wantVersion, tc.wantRun)
			}
		})
	}
}

func TestAliasMoved(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	res, err := server.Fixture(ctx, mlflowserver.Op{"op": "register", "model": "moving", "seed": 3, "alias": "prod"},
		mlflowserver.Op{"op": "register", "model": "moving", "seed": 4})
	if err != nil {
		t.Fatal(err)
	}
	mv, err := c.Resolve(ctx, mlflow.Reference{Name: "moving", Alias: "prod"})
	if err != nil || mv.Version != res[0].Version {
		t.Fatalf("before: %v %v", mv, err)
	}
	if _, err := server.Fixture(ctx, mlflowserver.Op{"op": "set_alias", "model": "moving", "alias": "prod", "version": res[1].Version}); err != nil {
		t.Fatal(err)
	}
	mv, err = c.Resolve(ctx, mlflow.Reference{Name: "moving", Alias: "prod"})
	if err != nil || mv.Version != res[1].Version {
		t.Fatalf("after the move: %+v %v, want version %s", mv, err, res[1].Version)
	}
	if _, err := server.Fixture(ctx, mlflowserver.Op{"op": "delete_alias", "model": "moving", "alias": "prod"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Resolve(ctx, mlflow.Reference{Name: "moving", Alias: "prod"})
	if !failure.IsNotFound(err) || failure.SubjectOf(err) != failure.Alias {
		t.Fatalf("after delete: %v, want a NotFound Alias", err)
	}
}

func TestServerStoppedThenBack(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, mlflow.WithTimeout(2*time.Second))
	ref := mlflow.Reference{Name: "iris", Alias: "champion"}
	if _, err := c.Resolve(ctx, ref); err != nil {
		t.Fatal(err)
	}
	server.Stop()
	restarted := false
	defer func() {
		if !restarted {
			_ = server.Restart()
		}
	}()
	_, err := c.Resolve(ctx, ref)
	if failure.KindOf(err) != failure.Unreachable || failure.SubjectOf(err) != failure.MLflow ||
		!strings.HasPrefix(err.Error(), "cannot resolve iris@champion: ") {
		t.Fatalf("with the server stopped: %v, want an Unreachable MLflow", err)
	}
	if err := server.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	mv, err := c.Resolve(ctx, ref)
	if err != nil || mv.Version != "1" {
		t.Fatalf("after restart: %v %v", mv, err)
	}
}

func TestContextCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := newClient(t).Resolve(ctx, mlflow.Reference{Name: "iris", Alias: "champion"})
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

func TestBasicAuthServer(t *testing.T) {
	ctx := context.Background()
	s, err := mlflowserver.Start(mlflowserver.Options{BasicAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Fixture(ctx,
		mlflowserver.Op{"op": "register", "model": "secured", "alias": "champion"},
		mlflowserver.Op{"op": "create_user", "username": "deployer", "password": "deployer-pw-12345"},
	); err != nil {
		t.Fatal(err)
	}
	ref := mlflow.Reference{Name: "secured", Alias: "champion"}
	tests := []struct {
		name    string
		auth    mlflow.Auth
		refused bool
	}{
		{"good credentials", mlflow.Auth{Username: "deployer", Password: "deployer-pw-12345"}, false},
		{"basic wins over a token", mlflow.Auth{Username: "deployer", Password: "deployer-pw-12345", Token: "garbage"}, false},
		{"wrong password", mlflow.Auth{Username: "deployer", Password: "nope"}, true},
		{"unknown user", mlflow.Auth{Username: "mallory", Password: "x"}, true},
		{"no credentials", mlflow.Auth{}, true},
		{"bearer token the server does not know", mlflow.Auth{Token: "abc"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := mlflow.New(s.URL, mlflow.WithAuth(tc.auth), mlflow.WithRetries(0, 0, 0))
			if err != nil {
				t.Fatal(err)
			}
			mv, err := c.Resolve(ctx, ref)
			if !tc.refused {
				if err != nil || mv.Version != "1" {
					t.Fatalf("%v %v", mv, err)
				}
				// Artifacts come through with the same credentials.
				if _, err := c.DownloadVersion(ctx, "secured", "1", t.TempDir()); err != nil {
					t.Fatalf("download: %v", err)
				}
				return
			}
			if failure.KindOf(err) != failure.Unauthorized || failure.SubjectOf(err) != failure.MLflow {
				t.Fatalf("err %v, want an Unauthorized MLflow", err)
			}
			if strings.Contains(err.Error(), "deployer-pw") {
				t.Error("the error shows the password")
			}
		})
	}
}
