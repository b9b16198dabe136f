package chart

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
)

// TestValuesDocumented: every value of values.schema.json (a leaf: a
// property without properties of its own) has a row in the table under
// "### Values" in docs/install.md, and the table names no value the schema
// does not know.
func TestValuesDocumented(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	type node struct {
		Properties map[string]*node `json:"properties"`
	}
	var schema node
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	var leaves []string
	var walk func(prefix string, n *node)
	walk = func(prefix string, n *node) {
		for k, child := range n.Properties {
			if prefix == "" && k == "global" {
				continue
			}
			if len(child.Properties) > 0 {
				walk(prefix+k+".", child)
			} else {
				leaves = append(leaves, prefix+k)
			}
		}
	}
	walk("", &schema)
	slices.Sort(leaves)

	doc, err := os.ReadFile(filepath.Join(procs.RepoRoot(), "docs", "install.md"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	inTable := false
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "#") {
			inTable = line == "### Values"
		}
		if rest, ok := strings.CutPrefix(line, "| `"); ok && inTable {
			if name, _, ok := strings.Cut(rest, "` |"); ok {
				rows = append(rows, name)
			}
		}
	}
	if len(rows) < 20 {
		t.Fatalf("found %d rows under \"### Values\" in docs/install.md", len(rows))
	}
	for _, leaf := range leaves {
		if !slices.Contains(rows, leaf) {
			t.Errorf("value %s has no row in docs/install.md's values table", leaf)
		}
	}
	for _, row := range rows {
		if !slices.Contains(leaves, row) {
			t.Errorf("docs/install.md documents %s, which values.schema.json does not know", row)
		}
	}
}
