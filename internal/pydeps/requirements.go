package pydeps

// This file reads what a model needs: requirements.txt and python_env.yaml.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"
)

// Requirement is one requirement of the model.
type Requirement struct {
	Name      string // as written, e.g. "scikit-learn"
	Specifier string // e.g. "==1.9.1", ">=1.20,<3", "" for any version
	// Marker is the PEP 508 environment marker as written after ';', e.g.
	// `sys_platform == "win32"`; "" when the requirement always applies. It
	// is kept unparsed so that a malformed marker is reported by Check
	// rather than failing the whole file.
	Marker string
}

// ModelEnvironment is what a model needs.
type ModelEnvironment struct {
	Python       string        // from python_env.yaml, e.g. "3.11.7"; "" when unknown
	Requirements []Requirement // from requirements.txt
}

const (
	// requirementsFile and pythonEnvFile are the files MLflow writes next to a model.
	requirementsFile = "requirements.txt"
	pythonEnvFile    = "python_env.yaml"
)

// ReadModelEnvironment reads requirements.txt and python_env.yaml of a model
// directory. Either may be missing: then the matching field is empty. A
// malformed file is an error.
func ReadModelEnvironment(modelDir string) (*ModelEnvironment, error) {
	env := &ModelEnvironment{}

	reqPath := filepath.Join(modelDir, requirementsFile)
	data, err := os.ReadFile(reqPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", reqPath, err)
	default:
		reqs, err := parseRequirements(string(data))
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", reqPath, err)
		}
		env.Requirements = reqs
	}

	envPath := filepath.Join(modelDir, pythonEnvFile)
	data, err = os.ReadFile(envPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", envPath, err)
	default:
		py, err := parsePythonEnv(data)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", envPath, err)
		}
		env.Python = py
	}
	return env, nil
}

// pythonEnvDoc is the part of MLflow's python_env.yaml the check uses; the
// other fields are declared so that a wrongly typed file is reported.
type pythonEnvDoc struct {
	Python            string   `json:"python"`
	BuildDependencies []string `json:"build_dependencies"`
	Dependencies      []string `json:"dependencies"`
}

// pythonEnvLiteral finds an unquoted numeric top-level "python:" value.
// YAML reads "python: 3.10" as the float 3.1, so the literal is taken from
// the text instead.
var pythonEnvLiteral = regexp.MustCompile(`(?m)^python:[ \t]*([0-9][0-9.]*)[ \t]*(?:#.*)?\r?$`)

// parsePythonEnv returns the python version of a python_env.yaml document.
func parsePythonEnv(data []byte) (string, error) {
	var doc pythonEnvDoc
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return "", fmt.Errorf("decode yaml: %w", err)
	}
	py := strings.TrimSpace(doc.Python)
	if m := pythonEnvLiteral.FindSubmatch(data); m != nil {
		py = string(m[1])
	}
	return py, nil
}

// reqComment matches a pip comment: '#' at the start of a line or after whitespace.
var reqComment = regexp.MustCompile(`(^|\s)#.*$`)

// namePattern is a PEP 508 distribution name.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$`)

// parseRequirements parses the lines of a pip requirements file. Options
// (lines starting with '-', and per-requirement options such as --hash),
// comments, blank lines and extras are dropped; environment markers are kept
// as written. A wheel file name becomes an exact pin; other bare paths or
// URLs, whose name is unknown, are skipped.
func parseRequirements(text string) ([]Requirement, error) {
	var reqs []Requirement
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := lines[i]
		// A trailing backslash continues the line.
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, `\`) + lines[i]
		}
		line = strings.TrimSuffix(line, `\`)
		line = strings.TrimSpace(reqComment.ReplaceAllString(line, ""))
		if line == "" || strings.HasPrefix(line, "-") {
			continue
		}
		// Per-requirement options, e.g. "foo==1.0 --hash=sha256:...".
		if idx := strings.Index(line, " --"); idx >= 0 {
			line = strings.TrimSpace(line[:idx])
		}
		req, ok, err := parseRequirementLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d %q: %w", lineNo, line, err)
		}
		if ok {
			reqs = append(reqs, req)
		}
	}
	return reqs, nil
}

// splitMarker splits a requirement line at the ';' that starts its
// environment marker. A URL requirement needs "; " before its markers, so a
// ';' inside a URL does not count there.
func splitMarker(line string) (req, marker string) {
	cut := -1
	if at := strings.Index(line, "@"); at >= 0 && strings.Contains(line[at:], "://") {
		if idx := strings.Index(line, "; "); idx >= 0 {
			cut = idx
		}
	} else {
		cut = strings.Index(line, ";")
	}
	if cut < 0 {
		return line, ""
	}
	return line[:cut], strings.TrimSpace(line[cut+1:])
}

// parseRequirementLine parses one PEP 508 requirement without comments or
// options. ok is false for a line that names no distribution (a path or URL).
func parseRequirementLine(line string) (req Requirement, ok bool, err error) {
	line, marker := splitMarker(line)
	line = strings.TrimSpace(line)
	if line == "" {
		return Requirement{}, false, errors.New("no requirement before the environment marker")
	}

	if name, ver, isWheel := wheelNameVersion(line); isWheel {
		return Requirement{Name: name, Specifier: "==" + ver, Marker: marker}, true, nil
	}

	end := strings.IndexFunc(line, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_')
	})
	if end < 0 {
		end = len(line)
	}
	name := line[:end]
	rest := strings.TrimSpace(line[end:])

	// Extras: name[extra1,extra2].
	if strings.HasPrefix(rest, "[") {
		closeIdx := strings.Index(rest, "]")
		if closeIdx < 0 {
			return Requirement{}, false, errors.New("unclosed extras bracket")
		}
		rest = strings.TrimSpace(rest[closeIdx+1:])
	}
	if !strings.HasPrefix(rest, "@") && isPathOrURL(line, rest) {
		// A bare URL, a local folder or an archive: the name is not written.
		return Requirement{}, false, nil
	}
	if !namePattern.MatchString(name) {
		return Requirement{}, false, fmt.Errorf("invalid distribution name %q", name)
	}

	switch {
	case rest == "":
		return Requirement{Name: name, Marker: marker}, true, nil
	case strings.HasPrefix(rest, "@"):
		// A direct reference: any installed version is accepted.
		return Requirement{Name: name, Marker: marker}, true, nil
	case strings.HasPrefix(rest, "("):
		if !strings.HasSuffix(rest, ")") {
			return Requirement{}, false, errors.New("unclosed parenthesis around the version specifier")
		}
		rest = strings.TrimSpace(rest[1 : len(rest)-1])
	}
	if rest != "" && !strings.ContainsRune("<>=!~", rune(rest[0])) {
		return Requirement{}, false, fmt.Errorf("unexpected %q after the name", rest)
	}
	spec := strings.Join(strings.Fields(rest), "")
	return Requirement{Name: name, Specifier: spec, Marker: marker}, true, nil
}

// isPathOrURL reports whether a requirement line is a path or URL rather
// than a name: rest is what follows the leading name-like run.
func isPathOrURL(line, rest string) bool {
	lower := strings.ToLower(line)
	for _, ext := range []string{".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip"} {
		if strings.HasSuffix(lower, ext) {
			return true
		}
	}
	return strings.Contains(line, "://") || strings.ContainsAny(line[:1], `./~\`) ||
		strings.HasPrefix(rest, "/") || strings.HasPrefix(rest, `\`) || strings.HasPrefix(rest, ":")
}

// wheelNameVersion reads the name and version from a wheel file name
// ({name}-{version}(-{build})?-{python}-{abi}-{platform}.whl) at the end of a
// path or URL.
func wheelNameVersion(ref string) (name, ver string, ok bool) {
	if at := strings.Index(ref, "@"); at >= 0 {
		ref = strings.TrimSpace(ref[at+1:])
	}
	if i := strings.IndexAny(ref, "#?"); i >= 0 {
		ref = ref[:i]
	}
	if !strings.HasSuffix(strings.ToLower(ref), ".whl") {
		return "", "", false
	}
	base := ref[strings.LastIndexAny(ref, `/\`)+1:]
	parts := strings.Split(base[:len(base)-len(".whl")], "-")
	if len(parts) < 5 || !namePattern.MatchString(parts[0]) || parts[1] == "" {
		return "", "", false
	}
	return parts[0], parts[1], true
}
