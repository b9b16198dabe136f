package builds

import (
	"strings"
	"testing"
)

func TestTag(t *testing.T) {
	tests := []struct {
		template, model, version, want string
	}{
		{"{name}-v{version}", "iris", "3", "iris-v3"},
		{"{name}-v{version}", "Fraud Detector/EU", "12", "fraud-detector-eu-v12"},
		{"{name}-{version}", "..hidden__model", "1", "hidden__model-1"},
		{"v{version}", "x", "7", "v7"},
		{"{name}-v{version}", "___", "2", "___-v2"},
		{"{name}-v{version}", "ünïcode", "5", "n-code-v5"},
	}
	for _, tc := range tests {
		if got := Tag(tc.template, tc.model, tc.version); got != tc.want {
			t.Errorf("Tag(%q, %q, %q) = %q, want %q", tc.template, tc.model, tc.version, got, tc.want)
		}
	}
	long := Tag("{name}-v{version}", strings.Repeat("a", 300), "1")
	if len(long) > 128 {
		t.Errorf("tag of %d characters; registries accept at most 128", len(long))
	}
}

// TestTagDefectsFoundByFuzzing: a brace no placeholder used becomes '-',
// and a tag too long loses the end of the name, never the version.
func TestTagDefectsFoundByFuzzing(t *testing.T) {
	if got := Tag("{version}}", "iris", "1"); got != "1-" {
		t.Errorf("Tag({version}}) = %q, want %q", got, "1-")
	}
	long := strings.Repeat("a", 200)
	v1, v12 := Tag("{name}-v{version}", long, "1"), Tag("{name}-v{version}", long, "12")
	if len(v1) > 128 || len(v12) > 128 || v1 == v12 || !strings.HasSuffix(v12, "-v12") {
		t.Errorf("long names: %q and %q", v1, v12)
	}
}
