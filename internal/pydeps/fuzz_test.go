package pydeps

// Fuzz targets for what a model's files control: requirements.txt, PEP 440
// versions and specifiers, PEP 508 markers. The files come from an MLflow
// server that may be hostile. Run one with
//
//	go test -run '^$' -fuzz '^FuzzVersionCompare$' -fuzztime 60s ./internal/pydeps/
//
// The seeds (f.Add and testdata/fuzz/) run with the unit tests.

import (
	"slices"
	"strings"
	"testing"
)

func FuzzParseRequirements(f *testing.F) {
	f.Add("mlflow==3.17.2\nscikit-learn>=1.2,<2 ; python_version >= \"3.9\"\n# comment\n-r other.txt\n")
	f.Add("torch @ https://download.pytorch.org/whl/cpu/torch-2.3.0%2Bcpu-cp311-cp311-linux_x86_64.whl ; sys_platform == 'linux'")
	f.Add("./local/pkg\nfoo[bar,baz] (>=1.0)\nfoo==1.0 --hash=sha256:abc\nlong \\\n==1.0")
	f.Add("pkg-1.0-py3-none-any.whl\n;\n[extra]\nfoo[\nfoo (>=1\n--index-url x")
	f.Add("a;b\nc @ file:///x;y ; z\nname ~= 1.0.* \r\n")
	f.Fuzz(func(t *testing.T, text string) {
		reqs, err := parseRequirements(text)
		if err != nil {
			return
		}
		for _, r := range reqs {
			if !namePattern.MatchString(r.Name) {
				t.Fatalf("requirement %+v: invalid name", r)
			}
			if strings.ContainsAny(r.Specifier, " \t\r\n") || strings.TrimSpace(r.Marker) != r.Marker {
				t.Fatalf("requirement %+v: untrimmed specifier or marker", r)
			}
		}
		// Whatever the requirements say, checking them does not fail.
		installed := &Installed{Python: "3.11", PythonFull: "3.11.7", OS: "linux", Architecture: "amd64", Packages: map[string]string{}}
		for _, r := range reqs {
			installed.Packages[normalizeName(r.Name)] = "1.0"
		}
		Check(&ModelEnvironment{Python: "3.11", Requirements: reqs}, installed)
		// A single line reads the same through the line parser, once the
		// file parser's steps (comments, options, continuations) are out of
		// the way.
		if strings.ContainsAny(text, "\n\r\\#") || strings.HasPrefix(strings.TrimSpace(text), "-") || strings.Contains(text, " --") {
			return
		}
		line := strings.TrimSpace(text)
		if line == "" {
			return
		}
		r, ok, lerr := parseRequirementLine(line)
		if lerr != nil || ok != (len(reqs) == 1) || (ok && r != reqs[0]) {
			t.Fatalf("line %q: %+v %v %v, the file parser %+v", line, r, ok, lerr, reqs)
		}
	})
}

func FuzzVersionCompare(f *testing.F) {
	f.Add("1.0", "1.0.0", "1.0+local")
	f.Add("1.0.dev0", "1.0a1", "1.0rc1.post1.dev2")
	f.Add("1!0.1", "2.0.post1", "2.0-1")
	f.Add("v1.0_ALPHA-2", "1.0a2", "1.0.0a2.dev")
	f.Add("1.0.post1.dev0", "1.0.post1", "1.0.post0")
	f.Add("0", "0.0", "00.000")
	f.Add("99999999999999999999", "1", "1.2.3.4.5.6.7.8.9")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		var vs []version
		for _, s := range []string{a, b, c} {
			v, err := parseVersion(s)
			if err != nil {
				continue
			}
			vs = append(vs, v)
			if v.compare(v) != 0 {
				t.Fatalf("%q is not equal to itself", s)
			}
		}
		for _, x := range vs {
			for _, y := range vs {
				xy, yx := x.compare(y), y.compare(x)
				if xy != -yx {
					t.Fatalf("compare(%+v, %+v) = %d, reversed %d", x, y, xy, yx)
				}
				// Equal exactly when every part but the local version is.
				same := x.epoch == y.epoch && slices.Equal(x.release, y.release) && x.preKind == y.preKind &&
					x.preNum == y.preNum && x.post == y.post && x.dev == y.dev
				if (xy == 0) != same {
					t.Fatalf("compare(%+v, %+v) = %d, but the parts are equal: %v", x, y, xy, same)
				}
				for _, z := range vs {
					if xy <= 0 && y.compare(z) <= 0 && x.compare(z) > 0 {
						t.Fatalf("not transitive: %+v <= %+v <= %+v, but the first is greater than the last", x, y, z)
					}
				}
			}
		}
	})
}

func FuzzSpecifier(f *testing.F) {
	f.Add(">=1.20,<3", "1.9.1", "2.0")
	f.Add("==1.0.*", "1.0", "1.0.5+cpu")
	f.Add("~=2.2.post3", "2.2.post3", "2.3.dev1")
	f.Add("===foobar", "1.0+local", "FOOBAR")
	f.Add("!=1.0+abc", "1.0+abc", "1.0+ABC")
	f.Add("<1.0.post1", "1.0rc1", "1.0.post1.dev0")
	f.Add(">1.0a1", "1.0a1.post1", "1.0.post1")
	f.Add(", ,", "", "1.0")
	f.Fuzz(func(t *testing.T, spec, ver, have string) {
		if s, err := parseSpecifier(spec); err == nil {
			s.allows(have) // does not panic, whatever it says
		}
		clause := func(op string) (specifier, bool) {
			s, err := parseSpecifier(op + ver)
			return s, err == nil
		}
		allows := func(op, v string) (bool, bool) {
			s, ok := clause(op)
			if !ok {
				return false, false
			}
			got, err := s.allows(v)
			return got, err == nil
		}
		// Properties of one version ver against have, where both parse.
		if _, err := parseVersion(have); err != nil {
			return
		}
		eq, okEq := allows("==", have)
		ne, okNe := allows("!=", have)
		if okEq && okNe && eq == ne {
			t.Fatalf("==%s and !=%s both say %v for %s", ver, ver, eq, have)
		}
		if compat, ok := allows("~=", have); ok && compat {
			if ge, ok := allows(">=", have); ok && !ge {
				t.Fatalf("~=%s allows %s, >=%s does not", ver, have, ver)
			}
		}
		if _, err := parseVersion(ver); err != nil || strings.HasSuffix(strings.TrimSpace(ver), ".*") {
			return
		}
		// ver against itself.
		for op, want := range map[string]bool{"==": true, ">=": true, "<=": true, "!=": false, "<": false, ">": false} {
			if got, ok := allows(op, ver); ok && got != want {
				t.Fatalf("%s%s says %v for %s itself", op, ver, got, ver)
			}
		}
		if got, ok := allows("===", ver); ok && !got {
			t.Fatalf("===%s refuses %s itself", ver, ver)
		}
	})
}

func FuzzParseMarker(f *testing.F) {
	f.Add(`python_version >= "3.8" and platform_machine == "x86_64"`)
	f.Add(`(sys_platform == 'win32' or os_name == "nt") and extra == "gpu"`)
	f.Add(`"3.10" > python_full_version`)
	f.Add(`platform_release ~= "5.4"`)
	f.Add(`implementation_name not in 'pypy jython'`)
	f.Add(`python_version ~= "x"`)
	f.Add(`os.name == "posix"`)
	f.Add(`((((python_version<"4"))))`)
	f.Add(`python_version == "3.11" and`)
	envs := []*Environment{
		nil,
		NewEnvironment(nil),
		NewEnvironment(&Installed{Python: "3.11", PythonFull: "3.11.7", OS: "linux", Architecture: "amd64"}),
		NewEnvironment(&Installed{Python: "3.8", PythonFull: "3.8.10", OS: "windows", Architecture: "arm64", Variant: "v8"}),
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMarker(s)
		if err != nil {
			return
		}
		again, err := ParseMarker(m.String())
		if err != nil {
			t.Fatalf("%q parses, its String() %q does not: %v", s, m.String(), err)
		}
		// The same marker, in parentheses and with itself (Kleene logic's
		// and and or are idempotent), says the same everywhere.
		forms := []*Marker{again}
		for _, form := range []string{"(" + s + ")", "(" + s + ") and (" + s + ")", "(" + s + ") or (" + s + ")"} {
			fm, err := ParseMarker(form)
			if err != nil {
				t.Fatalf("%q parses, %q does not: %v", s, form, err)
			}
			forms = append(forms, fm)
		}
		for _, env := range envs {
			want, werr := m.Applies(env)
			for _, fm := range forms {
				got, gerr := fm.Applies(env)
				if got != want || (gerr == nil) != (werr == nil) {
					t.Fatalf("%q applies %v (%v), %q %v (%v) in %+v", s, want, werr, fm.String(), got, gerr, env)
				}
			}
		}
	})
}
