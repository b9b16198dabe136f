package builds

import (
	"regexp"
	"strings"
)

var tagUnsafe = regexp.MustCompile(`[^a-z0-9_.-]+`)

// Tag forms an image tag from a template: {name} is the model name made
// tag-safe (lower-case, other characters '-'), {version} the version. Tags
// are at most 128 characters and start with a letter or digit.
func Tag(template, model, version string) string {
	safeName := strings.Trim(tagUnsafe.ReplaceAllString(strings.ToLower(model), "-"), "-.")
	t := strings.NewReplacer("{name}", safeName, "{version}", version).Replace(template)
	t = strings.TrimLeft(t, "-.")
	if len(t) > 128 {
		t = t[:128]
	}
	if t == "" {
		t = "v" + version
	}
	return t
}
