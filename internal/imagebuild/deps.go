package imagebuild

// This file holds the dependency check: it reads what an MLflow model needs
// (requirements.txt and python_env.yaml), what a base image holds (the
// .dist-info metadata of its installed Python distributions and its
// lib/pythonX.Y folder), and compares the two with PEP 440 version rules.

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"sigs.k8s.io/yaml"
)

// Requirement is one requirement of the model.
type Requirement struct {
	Name      string // as written, e.g. "scikit-learn"
	Specifier string // e.g. "==1.9.1", ">=1.20,<3", "" for any version
}

// ModelEnvironment is what a model needs.
type ModelEnvironment struct {
	Python       string        // from python_env.yaml, e.g. "3.11.7"; "" when unknown
	Requirements []Requirement // from requirements.txt
}

// Installed is what an image holds.
type Installed struct {
	Python   string            // "3.11" (major.minor) or "" when no python folder was found
	Packages map[string]string // normalized name (PEP 503: lower-case, runs of -_. become -) -> version
}

// Mismatch is a requirement the image does not satisfy.
type Mismatch struct {
	Name string // the requirement's name as written
	Want string // the specifier as written ("" for any version); notes "(invalid specifier)" when it cannot be parsed
	Have string // the installed version, "" means missing; notes "(invalid version)" when it cannot be parsed
}

// DependencyReport compares a model's environment with an image.
type DependencyReport struct {
	Missing    []Mismatch // not installed at all
	Mismatched []Mismatch // installed at a version the specifier refuses
	PythonWant string     // major.minor the model wants, "" when unknown
	PythonHave string     // major.minor the image has, "" when unknown
	Checked    int        // number of distinct requirements compared
}

const (
	// depRequirementsFile and depPythonEnvFile are the files MLflow writes next to a model.
	depRequirementsFile = "requirements.txt"
	depPythonEnvFile    = "python_env.yaml"

	// depSummaryMaxNames is how many names Summary lists per group before "and N more".
	depSummaryMaxNames = 8
	// depSummaryMaxField caps each name, specifier or version quoted in Summary.
	depSummaryMaxField = 48
	// depSummaryMaxLen is the length Summary stays under, for a Kubernetes condition message.
	depSummaryMaxLen = 1000
	// depMetadataLineBuf is the read buffer for METADATA headers; longer
	// lines are read in pieces.
	depMetadataLineBuf = 4096
)

// ---------------------------------------------------------------------------
// Model side: requirements.txt and python_env.yaml
// ---------------------------------------------------------------------------

// ReadModelEnvironment reads requirements.txt and python_env.yaml of a model
// directory. Either may be missing: then the matching field is empty. A
// malformed file is an error.
func ReadModelEnvironment(modelDir string) (*ModelEnvironment, error) {
	env := &ModelEnvironment{}

	reqPath := filepath.Join(modelDir, depRequirementsFile)
	data, err := os.ReadFile(reqPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", reqPath, err)
	default:
		reqs, err := depParseRequirements(string(data))
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", reqPath, err)
		}
		env.Requirements = reqs
	}

	envPath := filepath.Join(modelDir, depPythonEnvFile)
	data, err = os.ReadFile(envPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", envPath, err)
	default:
		py, err := depParsePythonEnv(data)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", envPath, err)
		}
		env.Python = py
	}
	return env, nil
}

// depPythonEnvDoc is the part of MLflow's python_env.yaml the check uses; the
// other fields are declared so that a wrongly typed file is reported.
type depPythonEnvDoc struct {
	Python            string   `json:"python"`
	BuildDependencies []string `json:"build_dependencies"`
	Dependencies      []string `json:"dependencies"`
}

// depPythonEnvLiteral finds an unquoted numeric top-level "python:" value.
// YAML reads "python: 3.10" as the float 3.1, so the literal is taken from
// the text instead.
var depPythonEnvLiteral = regexp.MustCompile(`(?m)^python:[ \t]*([0-9][0-9.]*)[ \t]*(?:#.*)?\r?$`)

// depParsePythonEnv returns the python version of a python_env.yaml document.
func depParsePythonEnv(data []byte) (string, error) {
	var doc depPythonEnvDoc
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return "", fmt.Errorf("decode yaml: %w", err)
	}
	py := strings.TrimSpace(doc.Python)
	if m := depPythonEnvLiteral.FindSubmatch(data); m != nil {
		py = string(m[1])
	}
	return py, nil
}

// depReqComment matches a pip comment: '#' at the start of a line or after whitespace.
var depReqComment = regexp.MustCompile(`(^|\s)#.*$`)

// depNamePattern is a PEP 508 distribution name.
var depNamePattern = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$`)

// depParseRequirements parses the lines of a pip requirements file. Options
// (lines starting with '-', and per-requirement options such as --hash),
// comments, blank lines, environment markers and extras are dropped. A wheel
// file name becomes an exact pin; other bare paths or URLs, whose name is
// unknown, are skipped.
func depParseRequirements(text string) ([]Requirement, error) {
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
		line = strings.TrimSpace(depReqComment.ReplaceAllString(line, ""))
		if line == "" || strings.HasPrefix(line, "-") {
			continue
		}
		// Per-requirement options, e.g. "foo==1.0 --hash=sha256:...".
		if idx := strings.Index(line, " --"); idx >= 0 {
			line = strings.TrimSpace(line[:idx])
		}
		req, ok, err := depParseRequirementLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d %q: %w", lineNo, line, err)
		}
		if ok {
			reqs = append(reqs, req)
		}
	}
	return reqs, nil
}

// depParseRequirementLine parses one PEP 508 requirement without comments or
// options. ok is false for a line that names no distribution (a path or URL).
func depParseRequirementLine(line string) (req Requirement, ok bool, err error) {
	// Environment markers follow ';' ("foo>=1; python_version < '3.12'").
	// A URL requirement needs "; " before its markers, so a ';' inside a URL
	// does not count there.
	if at := strings.Index(line, "@"); at >= 0 && strings.Contains(line[at:], "://") {
		if idx := strings.Index(line, "; "); idx >= 0 {
			line = line[:idx]
		}
	} else if idx := strings.Index(line, ";"); idx >= 0 {
		line = line[:idx]
	}
	line = strings.TrimSpace(line)
	if line == "" {
		return Requirement{}, false, errors.New("no requirement before the environment marker")
	}

	if name, ver, isWheel := depWheelNameVersion(line); isWheel {
		return Requirement{Name: name, Specifier: "==" + ver}, true, nil
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
	if !strings.HasPrefix(rest, "@") && depIsPathOrURL(line, rest) {
		// A bare URL, a local folder or an archive: the name is not written.
		return Requirement{}, false, nil
	}
	if !depNamePattern.MatchString(name) {
		return Requirement{}, false, fmt.Errorf("invalid distribution name %q", name)
	}

	switch {
	case rest == "":
		return Requirement{Name: name}, true, nil
	case strings.HasPrefix(rest, "@"):
		// A direct reference: any installed version is accepted.
		return Requirement{Name: name}, true, nil
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
	return Requirement{Name: name, Specifier: spec}, true, nil
}

// depIsPathOrURL reports whether a requirement line is a path or URL rather
// than a name: rest is what follows the leading name-like run.
func depIsPathOrURL(line, rest string) bool {
	lower := strings.ToLower(line)
	for _, ext := range []string{".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip"} {
		if strings.HasSuffix(lower, ext) {
			return true
		}
	}
	return strings.Contains(line, "://") || strings.ContainsAny(line[:1], `./~\`) ||
		strings.HasPrefix(rest, "/") || strings.HasPrefix(rest, `\`) || strings.HasPrefix(rest, ":")
}

// depWheelNameVersion reads the name and version from a wheel file name
// ({name}-{version}(-{build})?-{python}-{abi}-{platform}.whl) at the end of a
// path or URL.
func depWheelNameVersion(ref string) (name, ver string, ok bool) {
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
	if len(parts) < 5 || !depNamePattern.MatchString(parts[0]) || parts[1] == "" {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// ---------------------------------------------------------------------------
// Image side: dist-info metadata and python folders, layer by layer
// ---------------------------------------------------------------------------

// depMetadataPath matches the metadata file of an installed distribution;
// group 1 is the folder name without its .dist-info / .egg-info suffix.
var depMetadataPath = regexp.MustCompile(`(?:^|/)(?:site|dist)-packages/([^/]+)\.(?:dist-info/METADATA|egg-info/PKG-INFO)$`)

// depPythonFolderPath matches a lib/pythonX.Y folder; group 1 is the folder's
// path, group 2 the version.
var depPythonFolderPath = regexp.MustCompile(`^((?:.*/)?lib/python([0-9]+\.[0-9]+))(?:/|$)`)

// depDist is one installed distribution found in a layer.
type depDist struct {
	name    string
	version string
	python  string // major.minor of the lib/pythonX.Y folder holding it, "" if none
	layer   int
}

// depLayerChanges is what one layer does: its whiteouts (applied to lower
// layers only) and the entries it adds.
type depLayerChanges struct {
	whiteouts []string           // paths deleted, with everything under them
	opaques   []string           // folders whose lower content is hidden
	dists     map[string]depDist // metadata path -> distribution
	pythons   map[string]string  // python folder path -> major.minor
}

// InspectImage reads the image's layers in order, streaming (never holding a
// layer in memory), and collects dist-info METADATA names/versions and the
// python major.minor. Later layers win; OCI whiteout files (".wh.<name>"
// deletes <name>, ".wh..wh..opq" makes a directory opaque) remove what lower
// layers installed.
func InspectImage(img v1.Image) (*Installed, error) {
	if img == nil {
		return nil, errors.New("inspect image: no image")
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("list image layers: %w", err)
	}
	dists := map[string]depDist{}
	pythons := map[string]string{}
	for i, layer := range layers {
		ch, err := depInspectLayer(layer, i)
		if err != nil {
			return nil, fmt.Errorf("inspect layer %d: %w", i, err)
		}
		for _, p := range ch.whiteouts {
			depDeleteTree(dists, p, true)
			depDeleteTree(pythons, p, true)
		}
		for _, dir := range ch.opaques {
			depDeleteTree(dists, dir, false)
			depDeleteTree(pythons, dir, false)
		}
		for p, d := range ch.dists {
			dists[p] = d
		}
		for p, v := range ch.pythons {
			pythons[p] = v
		}
	}
	return depSummarizeInstalled(dists, pythons), nil
}

// depInspectLayer streams one layer's uncompressed tar and records its changes.
func depInspectLayer(layer v1.Layer, index int) (ch *depLayerChanges, err error) {
	rc, err := layer.Uncompressed()
	if err != nil {
		return nil, fmt.Errorf("open layer: %w", err)
	}
	defer func() {
		if cerr := rc.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close layer: %w", cerr)
		}
	}()

	ch = &depLayerChanges{
		dists:   map[string]depDist{},
		pythons: map[string]string{},
	}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read tar: %w", err)
		}
		name := depCleanPath(hdr.Name)
		if name == "" {
			continue
		}
		dir, base := path.Split(name)
		dir = strings.TrimSuffix(dir, "/")
		if strings.HasPrefix(base, ".wh.") {
			switch {
			case base == ".wh..wh..opq":
				ch.opaques = append(ch.opaques, dir)
			case strings.HasPrefix(base, ".wh..wh."):
				// Other AUFS bookkeeping entries mean nothing here.
			default:
				ch.whiteouts = append(ch.whiteouts, path.Join(dir, strings.TrimPrefix(base, ".wh.")))
			}
			continue
		}
		if strings.Contains(name, "lib/python") {
			if m := depPythonFolderPath.FindStringSubmatch(name); m != nil {
				ch.pythons[m[1]] = m[2]
			}
		}
		if !strings.HasSuffix(name, "/METADATA") && !strings.HasSuffix(name, "/PKG-INFO") {
			continue
		}
		m := depMetadataPath.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA {
			continue // links and folders named METADATA are not read
		}
		d, ok, err := depReadMetadata(tr, m[1])
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		if ok {
			d.python = depPythonOfPath(name)
			d.layer = index
			ch.dists[name] = d
		}
	}
	return ch, nil
}

// depCleanPath turns a tar entry name into a slash path relative to the
// root ("./usr/lib/" -> "usr/lib"); "" for the root itself.
func depCleanPath(name string) string {
	p := path.Clean("/" + name)
	return strings.TrimPrefix(p, "/")
}

// depDeleteTree removes the key p (when self is true) and every key under p/.
// An empty p is the root: everything goes.
func depDeleteTree[V any](m map[string]V, p string, self bool) {
	for k := range m {
		if p == "" || strings.HasPrefix(k, p+"/") || self && k == p {
			delete(m, k)
		}
	}
}

// depPythonOfPath returns the major.minor of the lib/pythonX.Y folder in p, or "".
func depPythonOfPath(p string) string {
	if m := depPythonFolderPath.FindStringSubmatch(p); m != nil {
		return m[2]
	}
	return ""
}

// depReadMetadata reads the Name and Version headers of a METADATA (or
// PKG-INFO) file, stopping at the end of the headers or as soon as both are
// known. folder ("name-version") is the fallback for a missing header.
func depReadMetadata(r io.Reader, folder string) (depDist, bool, error) {
	var d depDist
	br := bufio.NewReaderSize(r, depMetadataLineBuf)
	continued := false // the previous fragment did not end its line
	for d.name == "" || d.version == "" {
		frag, isPrefix, err := br.ReadLine()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return depDist{}, false, err
		}
		// Only the first fragment of an over-long line is looked at: the
		// header name is at its start.
		first := !continued
		continued = isPrefix
		if !first {
			continue
		}
		line := string(frag)
		if strings.TrimSpace(line) == "" {
			break // end of the headers; the description follows
		}
		key, value, found := strings.Cut(line, ":")
		if !found || strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(key)) {
		case "name":
			if d.name == "" {
				d.name = strings.TrimSpace(value)
			}
		case "version":
			if d.version == "" {
				d.version = strings.TrimSpace(value)
			}
		}
	}
	if d.name == "" || d.version == "" {
		// Folder names are "<name>-<version>" with '-' in the name escaped.
		if name, ver, ok := strings.Cut(folder, "-"); ok {
			if d.name == "" {
				d.name = name
			}
			if d.version == "" {
				d.version = strings.SplitN(ver, "-", 2)[0] // egg-info: name-ver-pyX.Y
			}
		}
	}
	return d, d.name != "" && d.version != "", nil
}

// depSummarizeInstalled turns the surviving entries into an Installed. Of two
// entries for one distribution the later layer wins, then the higher version.
// The python version is the one whose lib/pythonX.Y folder holds the most
// distributions, else the highest python folder present.
func depSummarizeInstalled(dists map[string]depDist, pythons map[string]string) *Installed {
	in := &Installed{Packages: map[string]string{}}
	best := map[string]depDist{}
	paths := make([]string, 0, len(dists))
	for p := range dists {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	perPython := map[string]int{}
	for _, p := range paths {
		d := dists[p]
		if d.python != "" {
			perPython[d.python]++
		}
		key := depNormalizeName(d.name)
		cur, ok := best[key]
		if !ok || d.layer > cur.layer || d.layer == cur.layer && pep440Less(cur.version, d.version) {
			best[key] = d
		}
	}
	for key, d := range best {
		in.Packages[key] = d.version
	}

	for py, n := range perPython {
		if n > perPython[in.Python] || n == perPython[in.Python] && depPythonNewer(py, in.Python) {
			in.Python = py
		}
	}
	if in.Python == "" {
		for _, py := range pythons {
			if depPythonNewer(py, in.Python) {
				in.Python = py
			}
		}
	}
	return in
}

// depPythonNewer reports whether major.minor a is newer than b ("" is oldest).
func depPythonNewer(a, b string) bool {
	if b == "" {
		return a != ""
	}
	va, erra := parsePEP440(a)
	vb, errb := parsePEP440(b)
	if erra != nil || errb != nil {
		return a > b
	}
	return va.compare(vb) > 0
}

// pep440Less reports whether version a sorts before b, falling back to
// string order when either does not parse.
func pep440Less(a, b string) bool {
	va, erra := parsePEP440(a)
	vb, errb := parsePEP440(b)
	if erra != nil || errb != nil {
		return a < b
	}
	return va.compare(vb) < 0
}

// depNameSeparators are the runs PEP 503 folds into one '-'.
var depNameSeparators = regexp.MustCompile(`[-_.]+`)

// depNormalizeName returns the PEP 503 normalized form of a distribution name:
// lower-case, with runs of '-', '_' and '.' replaced by one '-'.
func depNormalizeName(name string) string {
	return strings.ToLower(depNameSeparators.ReplaceAllString(strings.TrimSpace(name), "-"))
}

// ---------------------------------------------------------------------------
// The comparison
// ---------------------------------------------------------------------------

// CheckDependencies compares a model's environment with what an image holds.
// A nil env needs nothing; a nil in holds nothing. Requirements repeated with
// the same name and specifier are checked once.
func CheckDependencies(env *ModelEnvironment, in *Installed) *DependencyReport {
	r := &DependencyReport{}
	if env == nil {
		env = &ModelEnvironment{}
	}
	if in == nil {
		in = &Installed{}
	}
	r.PythonWant = depPythonMajorMinor(env.Python)
	r.PythonHave = depPythonMajorMinor(in.Python)

	installed := make(map[string]string, len(in.Packages))
	for name, ver := range in.Packages {
		installed[depNormalizeName(name)] = ver
	}
	seen := map[Requirement]bool{}
	for _, req := range env.Requirements {
		key := Requirement{Name: depNormalizeName(req.Name), Specifier: strings.Join(strings.Fields(req.Specifier), "")}
		if seen[key] {
			continue
		}
		seen[key] = true
		r.Checked++

		have, ok := installed[key.Name]
		if !ok {
			r.Missing = append(r.Missing, Mismatch{Name: req.Name, Want: req.Specifier})
			continue
		}
		spec, err := parsePEP440Specifier(key.Specifier)
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

// depPythonMajorMinor returns "3.11" for "3.11.7", "3.11" or "python3.11"; ""
// when v does not start with major.minor.
func depPythonMajorMinor(v string) string {
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
// versions are equal when both are known.
func (r *DependencyReport) Satisfied() bool {
	return len(r.Missing) == 0 && len(r.Mismatched) == 0 && !r.pythonDiffers()
}

// pythonDiffers reports whether both python versions are known and differ.
func (r *DependencyReport) pythonDiffers() bool {
	return r.PythonWant != "" && r.PythonHave != "" && r.PythonWant != r.PythonHave
}

// Summary returns one line for a person, e.g. "2 missing (foo, bar), 1
// mismatched (numpy wants <2, has 2.4.6), python 3.11 wanted, image has
// 3.12", or "all 6 requirements satisfied, python 3.11". It lists at most
// eight names per group and stays under 1000 characters.
func (r *DependencyReport) Summary() string {
	var parts []string
	if len(r.Missing) > 0 {
		names := make([]string, len(r.Missing))
		for i, m := range r.Missing {
			names[i] = depSummaryField(m.Name)
		}
		parts = append(parts, fmt.Sprintf("%d missing (%s)", len(r.Missing), depSummaryList(names, ", ")))
	}
	if len(r.Mismatched) > 0 {
		items := make([]string, len(r.Mismatched))
		for i, m := range r.Mismatched {
			want := m.Want
			if want == "" {
				want = "any version"
			}
			items[i] = fmt.Sprintf("%s wants %s, has %s", depSummaryField(m.Name), depSummaryField(want), depSummaryField(m.Have))
		}
		parts = append(parts, fmt.Sprintf("%d mismatched (%s)", len(r.Mismatched), depSummaryList(items, "; ")))
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
	switch {
	case r.pythonDiffers():
		parts = append(parts, fmt.Sprintf("python %s wanted, image has %s", depSummaryField(r.PythonWant), depSummaryField(r.PythonHave)))
	case r.PythonWant != "" && r.PythonHave != "":
		parts = append(parts, "python "+depSummaryField(r.PythonHave))
	case r.PythonHave != "":
		parts = append(parts, "image has python "+depSummaryField(r.PythonHave))
	case r.PythonWant != "":
		parts = append(parts, fmt.Sprintf("python %s wanted, image python unknown", depSummaryField(r.PythonWant)))
	}
	s := strings.Join(parts, ", ")
	if len(s) >= depSummaryMaxLen {
		s = depTruncate(s, depSummaryMaxLen-4) + "..."
	}
	return s
}

// depSummaryList joins at most depSummaryMaxNames items, then "and N more".
func depSummaryList(items []string, sep string) string {
	if len(items) <= depSummaryMaxNames {
		return strings.Join(items, sep)
	}
	return strings.Join(items[:depSummaryMaxNames], sep) + fmt.Sprintf("%sand %d more", sep, len(items)-depSummaryMaxNames)
}

// depSummaryField shortens one name, specifier or version for Summary.
func depSummaryField(s string) string {
	if len(s) <= depSummaryMaxField {
		return s
	}
	return depTruncate(s, depSummaryMaxField-3) + "..."
}

// depTruncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func depTruncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// ---------------------------------------------------------------------------
// PEP 440 versions and specifiers
// ---------------------------------------------------------------------------

// pep440Pattern is the PEP 440 version grammar, with its permitted spellings
// (v prefix, alpha/beta/c/pre/preview, rev/r, "-N" post releases, separators).
var pep440Pattern = regexp.MustCompile(`(?i)^v?` +
	`(?:([0-9]+)!)?` + // epoch
	`([0-9]+(?:\.[0-9]+)*)` + // release
	`(?:[-_.]?(alpha|a|beta|b|preview|pre|c|rc)[-_.]?([0-9]+)?)?` + // pre-release
	`(?:-([0-9]+)|[-_.]?(post|rev|r)[-_.]?([0-9]+)?)?` + // post-release
	`(?:[-_.]?(dev)[-_.]?([0-9]+)?)?` + // development release
	`(?:\+([a-z0-9]+(?:[-_.][a-z0-9]+)*))?$`) // local version

// Pre-release kinds, in sort order.
const (
	pep440Alpha = iota
	pep440Beta
	pep440RC
)

// pep440Version is a parsed PEP 440 version. Absent parts are -1.
type pep440Version struct {
	epoch   int
	release []int // trailing zeros removed, so 1.0 and 1.0.0 are equal
	preKind int   // pep440Alpha, pep440Beta, pep440RC or -1
	preNum  int
	post    int
	dev     int
	local   string // normalized (lower-case, '.' separators), "" if none
}

// parsePEP440 parses a version string.
func parsePEP440(s string) (pep440Version, error) {
	m := pep440Pattern.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return pep440Version{}, fmt.Errorf("invalid version %q", s)
	}
	v := pep440Version{preKind: -1, preNum: -1, post: -1, dev: -1}
	var err error
	num := func(text string, absent int) int {
		if text == "" {
			return absent
		}
		n, perr := strconv.Atoi(text)
		if perr != nil && err == nil {
			err = fmt.Errorf("invalid version %q: %w", s, perr)
		}
		return n
	}
	v.epoch = num(m[1], 0)
	for _, part := range strings.Split(m[2], ".") {
		v.release = append(v.release, num(part, 0))
	}
	for len(v.release) > 1 && v.release[len(v.release)-1] == 0 {
		v.release = v.release[:len(v.release)-1]
	}
	if m[3] != "" {
		switch strings.ToLower(m[3]) {
		case "a", "alpha":
			v.preKind = pep440Alpha
		case "b", "beta":
			v.preKind = pep440Beta
		default:
			v.preKind = pep440RC
		}
		v.preNum = num(m[4], 0)
	}
	switch {
	case m[5] != "":
		v.post = num(m[5], 0)
	case m[6] != "":
		v.post = num(m[7], 0)
	}
	if m[8] != "" {
		v.dev = num(m[9], 0)
	}
	v.local = strings.ToLower(depNameSeparators.ReplaceAllString(m[10], "."))
	if err != nil {
		return pep440Version{}, err
	}
	return v, nil
}

// isPre reports whether v is a pre-release or a development release.
func (v pep440Version) isPre() bool { return v.preKind >= 0 || v.dev >= 0 }

// isPost reports whether v is a post-release.
func (v pep440Version) isPost() bool { return v.post >= 0 }

// compare orders two versions by PEP 440, ignoring local versions: -1, 0 or 1.
func (v pep440Version) compare(o pep440Version) int {
	if c := pep440CmpInt(v.epoch, o.epoch); c != 0 {
		return c
	}
	if c := pep440CompareRelease(v.release, o.release); c != 0 {
		return c
	}
	vk, vn := v.preKey()
	ok, on := o.preKey()
	if c := pep440CmpInt(vk, ok); c != 0 {
		return c
	}
	if c := pep440CmpInt(vn, on); c != 0 {
		return c
	}
	if c := pep440CmpInt(v.post, o.post); c != 0 { // no post release (-1) sorts first
		return c
	}
	return pep440CmpInt(v.devKey(), o.devKey())
}

// preKey orders the pre-release part: a bare development release
// (1.0.dev0) before any pre-release, and a final or post release after.
func (v pep440Version) preKey() (int, int) {
	switch {
	case v.preKind >= 0:
		return v.preKind, v.preNum
	case v.post < 0 && v.dev >= 0:
		return -1, 0
	default:
		return pep440RC + 1, 0
	}
}

// devKey orders the development part: no development release sorts last.
func (v pep440Version) devKey() int {
	if v.dev < 0 {
		return math.MaxInt
	}
	return v.dev
}

// pep440CompareRelease compares release segments numerically, padding with zeros.
func pep440CompareRelease(a, b []int) int {
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if c := pep440CmpInt(x, y); c != 0 {
			return c
		}
	}
	return 0
}

// pep440CmpInt compares two ints: -1, 0 or 1.
func pep440CmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// pep440Clause is one comma-separated part of a specifier.
type pep440Clause struct {
	op       string        // "===", "~=", "==", "!=", "<=", ">=", "<" or ">"
	text     string        // the version as written
	ver      pep440Version // parsed version (not for "===" or wildcards)
	wildcard bool          // "==1.9.*" or "!=1.9.*"
	prefix   pep440Version // for wildcards and "~=": the release prefix to match
}

// pep440Specifier is a list of clauses that must all hold.
type pep440Specifier []pep440Clause

// pep440Operators are the specifier operators, longest first.
var pep440Operators = []string{"===", "~=", "==", "!=", "<=", ">=", "<", ">"}

// parsePEP440Specifier parses a specifier such as ">=1.20,<3"; "" allows any version.
func parsePEP440Specifier(s string) (pep440Specifier, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var spec pep440Specifier
	for _, raw := range strings.Split(s, ",") {
		c, err := parsePEP440Clause(strings.TrimSpace(raw))
		if err != nil {
			return nil, fmt.Errorf("invalid specifier %q: %w", s, err)
		}
		spec = append(spec, c)
	}
	return spec, nil
}

// parsePEP440Clause parses one operator and version.
func parsePEP440Clause(s string) (pep440Clause, error) {
	var c pep440Clause
	for _, op := range pep440Operators {
		if strings.HasPrefix(s, op) {
			c.op = op
			break
		}
	}
	if c.op == "" {
		return c, fmt.Errorf("clause %q has no comparison operator", s)
	}
	c.text = strings.TrimSpace(s[len(c.op):])
	if c.text == "" {
		return c, fmt.Errorf("clause %q has no version", s)
	}
	if c.op == "===" {
		return c, nil
	}
	text := c.text
	if strings.HasSuffix(text, ".*") {
		if c.op != "==" && c.op != "!=" {
			return c, fmt.Errorf("clause %q: a wildcard needs == or !=", s)
		}
		c.wildcard = true
		text = strings.TrimSuffix(text, ".*")
	}
	v, err := parsePEP440(text)
	if err != nil {
		return c, err
	}
	if c.wildcard {
		if v.preKind >= 0 || v.post >= 0 || v.dev >= 0 || v.local != "" {
			return c, fmt.Errorf("clause %q: a wildcard prefix must be a release", s)
		}
		// Keep the written length: "==1.0.*" must not match 1.1 once zeros are trimmed.
		v.release = pep440ReleaseAsWritten(text)
		c.prefix = v
		return c, nil
	}
	if v.local != "" && c.op != "==" && c.op != "!=" {
		return c, fmt.Errorf("clause %q: a local version needs == or !=", s)
	}
	c.ver = v
	if c.op == "~=" {
		rel := pep440ReleaseAsWritten(text)
		if len(rel) < 2 {
			return c, fmt.Errorf("clause %q: ~= needs at least two release segments", s)
		}
		c.prefix = pep440Version{epoch: v.epoch, release: rel[:len(rel)-1]}
	}
	return c, nil
}

// pep440ReleaseAsWritten returns the release segments of a valid version without
// removing trailing zeros.
func pep440ReleaseAsWritten(text string) []int {
	m := pep440Pattern.FindStringSubmatch(strings.TrimSpace(text))
	var rel []int
	for _, part := range strings.Split(m[2], ".") {
		n, _ := strconv.Atoi(part) // validated by parsePEP440
		rel = append(rel, n)
	}
	return rel
}

// allows reports whether the installed version satisfies every clause.
// Pre-releases are allowed: the check is about what is installed, not about
// which release pip would pick. An unparseable version is an error unless
// only "===" clauses are present.
func (s pep440Specifier) allows(have string) (bool, error) {
	var v pep440Version
	parsed := false
	for _, c := range s {
		if c.op == "===" {
			if !strings.EqualFold(strings.TrimSpace(have), c.text) {
				return false, nil
			}
			continue
		}
		if !parsed {
			var err error
			if v, err = parsePEP440(have); err != nil {
				return false, err
			}
			parsed = true
		}
		if !c.allows(v) {
			return false, nil
		}
	}
	return true, nil
}

// allows reports whether v satisfies one (non "===") clause.
func (c pep440Clause) allows(v pep440Version) bool {
	if c.wildcard {
		match := pep440HasPrefix(v, c.prefix)
		return match == (c.op == "==")
	}
	cmp := v.compare(c.ver)
	switch c.op {
	case "==":
		return cmp == 0 && (c.ver.local == "" || c.ver.local == v.local)
	case "!=":
		return cmp != 0 || c.ver.local != "" && c.ver.local != v.local
	case "<=":
		return cmp <= 0
	case ">=":
		return cmp >= 0
	case "<":
		// "<V" does not allow a pre-release of V unless V is one itself.
		return cmp < 0 && !(v.isPre() && !c.ver.isPre() && pep440SameRelease(v, c.ver))
	case ">":
		// ">V" does not allow a post-release of V unless V is one itself.
		return cmp > 0 && !(v.isPost() && !c.ver.isPost() && pep440SameRelease(v, c.ver))
	case "~=":
		return cmp >= 0 && pep440HasPrefix(v, c.prefix)
	}
	return false
}

// pep440HasPrefix reports whether v's epoch equals prefix's and v's release,
// padded with zeros, starts with prefix's release segments.
func pep440HasPrefix(v, prefix pep440Version) bool {
	if v.epoch != prefix.epoch {
		return false
	}
	for i, want := range prefix.release {
		have := 0
		if i < len(v.release) {
			have = v.release[i]
		}
		if have != want {
			return false
		}
	}
	return true
}

// pep440SameRelease reports whether two versions share epoch and release.
func pep440SameRelease(a, b pep440Version) bool {
	return a.epoch == b.epoch && pep440CompareRelease(a.release, b.release) == 0
}
