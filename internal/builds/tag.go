package builds

import (
	"regexp"
	"strings"
)

var (
	// nameUnsafe is what a model name loses: tags are case-sensitive, and
	// the lower-case name is the one people expect.
	nameUnsafe = regexp.MustCompile(`[^a-z0-9_.-]+`)
	// tagUnsafe is what no tag can hold, e.g. a brace of the template that
	// no placeholder used.
	tagUnsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)
)

// maxTagLen is the OCI distribution spec's limit.
const maxTagLen = 128

// Tag forms an image tag from a template: {name} is the model name made
// tag-safe (lower-case, other characters '-'), {version} the version; other
// characters a tag cannot hold become '-'. Tags are at most 128 characters
// and start with a letter, digit or '_'. A tag too long loses the end of the
// name, not the version: every version keeps its own tag.
func Tag(template, model, version string) string {
	name := strings.Trim(nameUnsafe.ReplaceAllString(strings.ToLower(model), "-"), "-.")
	form := func(name string) string {
		t := strings.NewReplacer("{name}", name, "{version}", version).Replace(template)
		return strings.TrimLeft(tagUnsafe.ReplaceAllString(t, "-"), "-.")
	}
	t := form(name)
	if n := strings.Count(template, "{name}"); len(t) > maxTagLen && n > 0 {
		keep := max(len(name)-(len(t)-maxTagLen+n-1)/n, 0)
		t = form(strings.TrimRight(name[:keep], "-."))
	}
	if len(t) > maxTagLen {
		// Only a template of many long versions gets here.
		t = t[:maxTagLen]
	}
	if t == "" {
		t = "v" + version
	}
	return t
}
