package fetch

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestToFile(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("0123456789"))
	}))
	defer srv.Close()
	p := filepath.Join(t.TempDir(), "f")
	if err := ToFile(srv.URL+"/x", p, time.Minute, 4); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "0123" {
		t.Errorf("wrote %q, want the first 4 bytes", b)
	}
	if err := ToFile(srv.URL+"/missing", p, time.Minute, 4); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a 404 gave %v", err)
	}
}
