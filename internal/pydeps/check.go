package pydeps

// This file compares what a model needs with what an image holds, and says
// the outcome in one line.

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/mlflow-operator/mlflow-operator/internal/text"
)

// Mismatch is a requirement the image does not satisfy.
type Mismatch struct {
	Name string // the requirement's name as written
	// Want is the specifier as written ("" for any version); it notes
	// "(invalid specifier)" when the specifier cannot be parsed, and is
	// "<specifier>; <marker> (invalid marker)" when the marker cannot be
	// parsed or evaluated.
	Want string
	Have string // the installed version, "" means missing; notes "(invalid version)" when it cannot be parsed
}

// Report compares a model's environment with an image.
type Report struct {
	Missing    []Mismatch    // not installed at all
	Mismatched []Mismatch    // installed at a version the specifier refuses, or with an invalid marker
	Skipped    []Requirement // not checked: their environment marker is false on the image, as written
	PythonWant string        // major.minor the model wants, "" when unknown
	PythonHave string        // major.minor the image has, "" when unknown
	Checked    int           // number of distinct requirements compared
}

const (
	// summaryMaxNames is how many names Summary lists per group before "and N more".
	summaryMaxNames = 8
	// summaryMaxField caps each name, specifier or version quoted in Summary.
	summaryMaxField = 48
	// summaryMaxLen is the length Summary stays under, for a Kubernetes condition message.
	summaryMaxLen = 1000
)

// Check compares a model's environment with what an image holds. A nil env
// needs nothing; a nil in holds nothing. Requirements repeated with the same
// name, specifier and marker are checked once. A requirement whose
// environment marker is false on the image (pywin32 on Linux) is skipped; one
// whose marker depends on something the image does not tell is checked.
func Check(env *ModelEnvironment, in *Installed) *Report {
	r := &Report{}
	if env == nil {
		env = &ModelEnvironment{}
	}
	if in == nil {
		in = &Installed{}
	}
	r.PythonWant = pythonMajorMinor(env.Python)
	r.PythonHave = pythonMajorMinor(in.Python)
	markerEnv := NewEnvironment(in)

	installed := make(map[string]string, len(in.Packages))
	for name, ver := range in.Packages {
		installed[normalizeName(name)] = ver
	}
	seen := map[Requirement]bool{}
	for _, req := range env.Requirements {
		key := Requirement{
			Name:      normalizeName(req.Name),
			Specifier: strings.Join(strings.Fields(req.Specifier), ""),
			Marker:    strings.TrimSpace(req.Marker),
		}
		if seen[key] {
			continue
		}
		seen[key] = true

		have, ok := installed[key.Name]
		if key.Marker != "" {
			applies, err := markerApplies(key.Marker, markerEnv)
			if err != nil {
				r.Checked++
				r.Mismatched = append(r.Mismatched, Mismatch{Name: req.Name, Want: withMarker(req.Specifier, key.Marker) + " (invalid marker)", Have: have})
				continue
			}
			if !applies {
				r.Skipped = append(r.Skipped, req)
				continue
			}
		}
		r.Checked++

		if !ok {
			r.Missing = append(r.Missing, Mismatch{Name: req.Name, Want: req.Specifier})
			continue
		}
		spec, err := parseSpecifier(key.Specifier)
		if err != nil {
			r.Mismatched = append(r.Mismatched, Mismatch{Name: req.Name, Want: req.Specifier + " (invalid specifier)", Have: have})
			continue
		}
		allowed, err := spec.allows(have)
		if err != nil {
			r.Mismatched = append(r.Mismatched, Mismatch{Name: req.Name, Want: req.Specifier, Have: have + " (invalid version)"})
			continue
		}
		if !allowed {
			r.Mismatched = append(r.Mismatched, Mismatch{Name: req.Name, Want: req.Specifier, Have: have})
		}
	}
	return r
}

// markerApplies parses and evaluates one marker.
func markerApplies(marker string, env *Environment) (bool, error) {
	m, err := ParseMarker(marker)
	if err != nil {
		return false, err
	}
	return m.Applies(env)
}

// withMarker writes a specifier and its marker as a requirement line does.
func withMarker(spec, marker string) string {
	if spec == "" {
		return "; " + marker
	}
	return spec + "; " + marker
}

// pythonMajorMinor returns "3.11" for "3.11.7", "3.11" or "python3.11"; ""
// when v does not start with major.minor.
func pythonMajorMinor(v string) string {
	v = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(v)), "python")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return ""
	}
	major, err1 := strconv.Atoi(parts[0])
	minorDigits := parts[1]
	if i := strings.IndexFunc(minorDigits, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minorDigits = minorDigits[:i] // "3.13t", "3.12rc1"
	}
	minor, err2 := strconv.Atoi(minorDigits)
	if err1 != nil || err2 != nil || major < 0 || minor < 0 {
		return ""
	}
	return strconv.Itoa(major) + "." + strconv.Itoa(minor)
}

// Satisfied reports whether nothing is missing or mismatched and the python
// versions are equal when both are known. Skipped requirements do not count.
func (r *Report) Satisfied() bool {
	return len(r.Missing) == 0 && len(r.Mismatched) == 0 && !r.pythonDiffers()
}

// pythonDiffers reports whether both python versions are known and differ.
func (r *Report) pythonDiffers() bool {
	return r.PythonWant != "" && r.PythonHave != "" && r.PythonWant != r.PythonHave
}

// Summary returns one line for a person, e.g. "2 missing (foo, bar), 1
// mismatched (numpy wants <2, has 2.4.6), python 3.11 wanted, image has
// 3.12", or "all 6 requirements satisfied, 1 skipped by markers, python
// 3.11". It lists at most eight names per group and stays under 1000 bytes.
func (r *Report) Summary() string {
	var parts []string
	if len(r.Missing) > 0 {
		names := make([]string, len(r.Missing))
		for i, m := range r.Missing {
			names[i] = summaryField(m.Name)
		}
		parts = append(parts, fmt.Sprintf("%d missing (%s)", len(r.Missing), summaryList(names, ", ")))
	}
	if len(r.Mismatched) > 0 {
		items := make([]string, len(r.Mismatched))
		for i, m := range r.Mismatched {
			want := m.Want
			if want == "" {
				want = "any version"
			}
			have := "has " + summaryField(m.Have)
			if m.Have == "" { // an invalid marker on a distribution that is not installed
				have = "not installed"
			}
			items[i] = fmt.Sprintf("%s wants %s, %s", summaryField(m.Name), summaryField(want), have)
		}
		parts = append(parts, fmt.Sprintf("%d mismatched (%s)", len(r.Mismatched), summaryList(items, "; ")))
	}
	if len(parts) == 0 {
		switch r.Checked {
		case 0:
			parts = append(parts, "no requirements to check")
		case 1:
			parts = append(parts, "1 requirement satisfied")
		default:
			parts = append(parts, fmt.Sprintf("all %d requirements satisfied", r.Checked))
		}
	}
	if len(r.Skipped) > 0 {
		parts = append(parts, fmt.Sprintf("%d skipped by markers", len(r.Skipped)))
	}
	switch {
	case r.pythonDiffers():
		parts = append(parts, fmt.Sprintf("python %s wanted, image has %s", summaryField(r.PythonWant), summaryField(r.PythonHave)))
	case r.PythonWant != "" && r.PythonHave != "":
		parts = append(parts, "python "+summaryField(r.PythonHave))
	case r.PythonHave != "":
		parts = append(parts, "image has python "+summaryField(r.PythonHave))
	case r.PythonWant != "":
		parts = append(parts, fmt.Sprintf("python %s wanted, image python unknown", summaryField(r.PythonWant)))
	}
	return text.Shorten(strings.Join(parts, ", "), summaryMaxLen-1)
}

// summaryList joins at most summaryMaxNames items, then "and N more".
func summaryList(items []string, sep string) string {
	if len(items) <= summaryMaxNames {
		return strings.Join(items, sep)
	}
	return strings.Join(items[:summaryMaxNames], sep) + fmt.Sprintf("%sand %d more", sep, len(items)-summaryMaxNames)
}

// fieldNotes are the notes Check appends to a Want or Have; a shortened
// field keeps its note, which says more than the cut-off tail.
var fieldNotes = []string{" (invalid specifier)", " (invalid version)", " (invalid marker)"}

// summaryField shortens one name, specifier or version for Summary.
func summaryField(s string) string {
	if len(s) <= summaryMaxField {
		return s
	}
	for _, note := range fieldNotes {
		if head, ok := strings.CutSuffix(s, note); ok {
			return text.Shorten(head, summaryMaxField-len(note)) + note
		}
	}
	return text.Shorten(s, summaryMaxField)
}
