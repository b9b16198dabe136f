package builds

// Fuzz target for Tag: the model name is anyone's who can register a model
// in MLflow, the template the ModelDeployment's. Run it with
//
//	go test -run '^$' -fuzz '^FuzzTag$' -fuzztime 60s ./internal/builds/
//
// The seeds (f.Add and testdata/fuzz/) run with the unit tests.

import (
	"regexp"
	"strings"
	"testing"
)

var (
	// ociTag is the OCI distribution spec's tag grammar.
	ociTag = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	// tagTemplatePattern is the CRD's pattern for spec.image.tagTemplate
	// (api/v1alpha1/spec_types.go), which also requires {version} and at
	// most 100 characters.
	tagTemplatePattern = regexp.MustCompile(`^[A-Za-z0-9_.{}-]+$`)
	// modelVersion is what MLflow's version numbers look like.
	modelVersion = regexp.MustCompile(`^[1-9][0-9]*$`)
)

func FuzzTag(f *testing.F) {
	f.Add("{name}-v{version}", "iris", "3")
	f.Add("{name}-v{version}", "Fraud Detector/EU", "12")
	f.Add("{name}-{version}", "..hidden__model", "1")
	f.Add("-.{name}{version}", "---", "7")
	f.Add("{name}-v{version}", "ünïcode", "5")
	f.Add("{name}-v{version}", strings.Repeat("a", 300), "1")
	f.Add("{version}", "", "99999999999999999999")
	f.Add("release_{version}.{name}", "{version}", "2")
	f.Fuzz(func(t *testing.T, template, model, version string) {
		if !modelVersion.MatchString(version) || len(template) > 100 || !tagTemplatePattern.MatchString(template) ||
			!strings.Contains(template, "{version}") {
			return // the API server refuses the template, or MLflow never gives the version
		}
		tag := Tag(template, model, version)
		// Another version, to check every version gets its own tag (the
		// CRD's reason for requiring {version}).
		other := version + "1"
		otherTag := Tag(template, model, other)
		if !ociTag.MatchString(tag) {
			t.Fatalf("Tag(%q, %q, %q) = %q, not a valid tag", template, model, version, tag)
		}
		if otherTag == tag {
			t.Fatalf("versions %s and %s of %q both get the tag %q", version, other, model, tag)
		}
		if Tag(template, model, version) != tag {
			t.Fatalf("Tag(%q, %q, %q) is not deterministic", template, model, version)
		}
	})
}
