package pydeps

// This file holds PEP 440 versions and specifiers: enough to decide whether
// an installed version satisfies a requirement, and to compare the versions
// that environment markers name.

import (
	"cmp"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// versionPattern is the PEP 440 version grammar, with its permitted spellings
// (v prefix, alpha/beta/c/pre/preview, rev/r, "-N" post releases, separators).
var versionPattern = regexp.MustCompile(`(?i)^v?` +
	`(?:([0-9]+)!)?` + // epoch
	`([0-9]+(?:\.[0-9]+)*)` + // release
	`(?:[-_.]?(alpha|a|beta|b|preview|pre|c|rc)[-_.]?([0-9]+)?)?` + // pre-release
	`(?:-([0-9]+)|[-_.]?(post|rev|r)[-_.]?([0-9]+)?)?` + // post-release
	`(?:[-_.]?(dev)[-_.]?([0-9]+)?)?` + // development release
	`(?:\+([a-z0-9]+(?:[-_.][a-z0-9]+)*))?$`) // local version

// Pre-release kinds, in sort order.
const (
	preAlpha = iota
	preBeta
	preRC
)

// version is a parsed PEP 440 version. Absent parts are -1.
type version struct {
	epoch   int
	release []int // trailing zeros removed, so 1.0 and 1.0.0 are equal
	preKind int   // preAlpha, preBeta, preRC or -1
	preNum  int
	post    int
	dev     int
	local   string // normalized (lower-case, '.' separators), "" if none
}

// parseVersion parses a version string.
func parseVersion(s string) (version, error) {
	m := versionPattern.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return version{}, fmt.Errorf("invalid version %q", s)
	}
	v := version{preKind: -1, preNum: -1, post: -1, dev: -1}
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
			v.preKind = preAlpha
		case "b", "beta":
			v.preKind = preBeta
		default:
			v.preKind = preRC
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
	v.local = strings.ToLower(nameSeparators.ReplaceAllString(m[10], "."))
	if err != nil {
		return version{}, err
	}
	return v, nil
}

// isPre reports whether v is a pre-release or a development release.
func (v version) isPre() bool { return v.preKind >= 0 || v.dev >= 0 }

// compare orders two versions by PEP 440, ignoring local versions: -1, 0 or
// 1. Local versions are left out because specifiers without one match every
// local variant ("==2.1.0" allows "2.1.0+cpu"); the clauses that name one
// compare it themselves.
func (v version) compare(o version) int {
	if c := cmp.Compare(v.epoch, o.epoch); c != 0 {
		return c
	}
	if c := compareRelease(v.release, o.release); c != 0 {
		return c
	}
	vk, vn := v.preKey()
	ok, on := o.preKey()
	if c := cmp.Compare(vk, ok); c != 0 {
		return c
	}
	if c := cmp.Compare(vn, on); c != 0 {
		return c
	}
	if c := cmp.Compare(v.post, o.post); c != 0 { // no post release (-1) sorts first
		return c
	}
	return cmp.Compare(v.devKey(), o.devKey())
}

// preKey orders the pre-release part: a bare development release
// (1.0.dev0) before any pre-release, and a final or post release after.
func (v version) preKey() (int, int) {
	switch {
	case v.preKind >= 0:
		return v.preKind, v.preNum
	case v.post < 0 && v.dev >= 0:
		return -1, 0
	default:
		return preRC + 1, 0
	}
}

// devKey orders the development part: no development release sorts last.
func (v version) devKey() int {
	if v.dev < 0 {
		return math.MaxInt
	}
	return v.dev
}

// compareRelease compares release segments numerically, padding with zeros.
func compareRelease(a, b []int) int {
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	return 0
}

// versionLess reports whether version a sorts before b, falling back to
// string order when either does not parse.
func versionLess(a, b string) bool {
	va, erra := parseVersion(a)
	vb, errb := parseVersion(b)
	if erra != nil || errb != nil {
		return a < b
	}
	return va.compare(vb) < 0
}

// clause is one comma-separated part of a specifier.
type clause struct {
	op       string  // "===", "~=", "==", "!=", "<=", ">=", "<" or ">"
	text     string  // the version as written
	ver      version // parsed version (not for "===" or wildcards)
	wildcard bool    // "==1.9.*" or "!=1.9.*"
	prefix   version // for wildcards and "~=": the release prefix to match
}

// specifier is a list of clauses that must all hold.
type specifier []clause

// operators are the specifier operators, longest first.
var operators = []string{"===", "~=", "==", "!=", "<=", ">=", "<", ">"}

// parseSpecifier parses a specifier such as ">=1.20,<3"; "" allows any version.
func parseSpecifier(s string) (specifier, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var spec specifier
	for _, raw := range strings.Split(s, ",") {
		c, err := parseClause(strings.TrimSpace(raw))
		if err != nil {
			return nil, fmt.Errorf("invalid specifier %q: %w", s, err)
		}
		spec = append(spec, c)
	}
	return spec, nil
}

// parseClause parses one operator and version.
func parseClause(s string) (clause, error) {
	var c clause
	for _, op := range operators {
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
	v, err := parseVersion(text)
	if err != nil {
		return c, err
	}
	if c.wildcard {
		if v.preKind >= 0 || v.post >= 0 || v.dev >= 0 || v.local != "" {
			return c, fmt.Errorf("clause %q: a wildcard prefix must be a release", s)
		}
		// Keep the written length: "==1.0.*" must not match 1.1 once zeros are trimmed.
		v.release = releaseAsWritten(text)
		c.prefix = v
		return c, nil
	}
	if v.local != "" && c.op != "==" && c.op != "!=" {
		return c, fmt.Errorf("clause %q: a local version needs == or !=", s)
	}
	c.ver = v
	if c.op == "~=" {
		rel := releaseAsWritten(text)
		if len(rel) < 2 {
			return c, fmt.Errorf("clause %q: ~= needs at least two release segments", s)
		}
		c.prefix = version{epoch: v.epoch, release: rel[:len(rel)-1]}
	}
	return c, nil
}

// releaseAsWritten returns the release segments of a valid version without
// removing trailing zeros.
func releaseAsWritten(text string) []int {
	m := versionPattern.FindStringSubmatch(strings.TrimSpace(text))
	var rel []int
	for _, part := range strings.Split(m[2], ".") {
		n, _ := strconv.Atoi(part) // validated by parseVersion
		rel = append(rel, n)
	}
	return rel
}

// allows reports whether the installed version satisfies every clause.
// Pre-releases are allowed: the check is about what is installed, not about
// which release pip would pick. An unparseable version is an error unless
// only "===" clauses are present.
func (s specifier) allows(have string) (bool, error) {
	var v version
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
			if v, err = parseVersion(have); err != nil {
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
func (c clause) allows(v version) bool {
	if c.wildcard {
		match := releaseHasPrefix(v, c.prefix)
		return match == (c.op == "==")
	}
	order := v.compare(c.ver)
	switch c.op {
	case "==":
		return order == 0 && (c.ver.local == "" || c.ver.local == v.local)
	case "!=":
		return order != 0 || c.ver.local != "" && c.ver.local != v.local
	case "<=":
		return order <= 0
	case ">=":
		return order >= 0
	case "<":
		// "<V" does not allow a pre-release of V unless V is one itself: it
		// means "<V.dev0", which leaves out 1.0rc1 for <1.0 and
		// 1.0.post1.dev0 for <1.0.post1, but not 1.0rc1 for <1.0.post1.
		if c.ver.isPre() {
			return order < 0
		}
		bound := c.ver
		bound.dev = 0
		return v.compare(bound) < 0
	case ">":
		// ">V" does not allow a post-release of V unless V is one itself (or
		// a development release): 1.0.post1 for >1.0, 1.0a1.post1 for
		// >1.0a1, but 1.0.post1 is allowed by >1.0a1.
		if c.ver.post >= 0 || c.ver.dev >= 0 {
			return order > 0
		}
		return order > 0 && !(sameRelease(v, c.ver) && v.preKind == c.ver.preKind && v.preNum == c.ver.preNum)
	case "~=":
		return order >= 0 && releaseHasPrefix(v, c.prefix)
	}
	return false
}

// releaseHasPrefix reports whether v's epoch equals prefix's and v's release,
// padded with zeros, starts with prefix's release segments.
func releaseHasPrefix(v, prefix version) bool {
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

// sameRelease reports whether two versions share epoch and release.
func sameRelease(a, b version) bool {
	return a.epoch == b.epoch && compareRelease(a.release, b.release) == 0
}
