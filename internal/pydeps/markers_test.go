package pydeps

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseMarkerInvalid(t *testing.T) {
	tests := []struct {
		marker  string
		wantErr string // part of the error
	}{
		{``, "expected a variable or a quoted string at the end"},
		{`os_name = "nt"`, `unexpected '='`},
		{`os_name =! "nt"`, `unexpected '='`},
		{`python_version >= 3.8`, `unknown variable "3.8"`},
		{`python_version`, "expected a comparison operator at the end"},
		{`python_version >=`, "expected a variable or a quoted string at the end"},
		{`os_name == "nt`, "unterminated string"},
		{`os_name == 'nt"`, "unterminated string"},
		{`(os_name == "nt"`, "expected ')' at the end"},
		{`os_name == "nt")`, `expected 'and', 'or' or the end at offset 15, found ")"`},
		{`os_name == "nt" and`, "expected a variable or a quoted string at the end"},
		{`os_name == "nt" or or os_name == "posix"`, `found "or"`},
		{`os_name == "nt" xor os_name == "posix"`, `found "xor"`},
		{`os.name == "nt"`, `unknown variable "os.name"`},
		{`python_implementation == "CPython"`, `unknown variable "python_implementation"`},
		{`foo == "bar"`, `unknown variable "foo"`},
		{`os_name notin "posix nt"`, `expected a comparison operator at offset 8, found "notin"`},
		{`and == "x"`, `expected a variable or a quoted string at offset 0, found "and"`},
		{`os_name not "nt"`, "expected 'in' after 'not'"},
		{`os_name <> "nt"`, `found ">"`},
		{`"a" "b"`, "expected a comparison operator"},
		{`os_name == "nt" ; extra == "x"`, `unexpected ';'`},
		{`()`, `found ")"`},
		{`os_name == "nt" ∧ os_name == "posix"`, `unexpected '∧' at offset 16`},
	}
	for _, tt := range tests {
		t.Run(tt.marker, func(t *testing.T) {
			m, err := ParseMarker(tt.marker)
			if err == nil {
				t.Fatalf("ParseMarker(%q) = %+v, want an error containing %q", tt.marker, m, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseMarker(%q) error %q does not contain %q", tt.marker, err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "parse marker ") {
				t.Errorf("error %q does not say it is a marker", err)
			}
		})
	}
}

// Environments the marker tests evaluate against.
var (
	linuxAMD64 = NewEnvironment(&Installed{Python: "3.11", PythonFull: "3.11.7", OS: "linux", Architecture: "amd64"})
	linuxARM64 = NewEnvironment(&Installed{Python: "3.11", PythonFull: "3.11.7", OS: "linux", Architecture: "arm64"})
	// The python folder was found, PYTHON_VERSION was not: no full version.
	linuxNoFull = NewEnvironment(&Installed{Python: "3.11", PythonFull: "3.11", OS: "linux", Architecture: "amd64"})
	// No python found at all.
	linuxNoPython = NewEnvironment(&Installed{OS: "linux", Architecture: "amd64"})
	nothingKnown  = &Environment{}
)

func TestMarkerEvaluate(t *testing.T) {
	tests := []struct {
		marker string
		env    *Environment
		want   truth
	}{
		// Platform.
		{`sys_platform == "win32"`, linuxAMD64, isFalse},
		{`sys_platform == "linux"`, linuxAMD64, isTrue},
		{`sys_platform != "win32"`, linuxAMD64, isTrue},
		{`os_name == 'nt' or sys_platform == 'linux'`, linuxAMD64, isTrue},
		{`platform_system == "Linux" and os_name == "posix"`, linuxAMD64, isTrue},
		{`platform_system == "Windows"`, linuxAMD64, isFalse},
		{`platform_machine == "aarch64"`, linuxARM64, isTrue},
		{`platform_machine == "aarch64"`, linuxAMD64, isFalse},
		{`implementation_name == "cpython" and platform_python_implementation != "PyPy"`, linuxAMD64, isTrue},
		{`implementation_name == "pypy"`, NewEnvironment(nil), isFalse}, // CPython is assumed
		// python_version compares as a version, not as a string: "3.11" < "3.9" as strings.
		{`python_version < "3.8"`, linuxAMD64, isFalse},
		{`python_version < "3.9"`, linuxAMD64, isFalse},
		{`python_version > "3.9"`, linuxAMD64, isTrue},
		{`python_version >= "3.10"`, linuxAMD64, isTrue},
		{`python_version == "3.1"`, linuxAMD64, isFalse},
		{`python_version == "3.11"`, linuxAMD64, isTrue},
		{`python_version == "3.*"`, linuxAMD64, isTrue},
		{`python_version != "3.11.*"`, linuxAMD64, isFalse},
		{`python_version ~= "3.10"`, linuxAMD64, isTrue},
		{`python_version in "3.10 3.11 3.12"`, linuxAMD64, isTrue},
		{`"3.8" <= python_version`, linuxAMD64, isTrue},
		{`"3.12" <= python_version`, linuxAMD64, isFalse},
		{`python_version >= "3.8" and platform_machine == "x86_64"`, linuxAMD64, isTrue},
		{`python_version >= "3.8" and platform_machine == "x86_64"`, linuxARM64, isFalse},
		{`python_full_version >= '3.11.2'`, linuxAMD64, isTrue},
		{`python_full_version >= '3.11.8'`, linuxAMD64, isFalse},
		{`python_full_version < '3.11.10'`, linuxAMD64, isTrue}, // as strings it would be false
		{`implementation_version >= "3.11.7"`, linuxAMD64, isTrue},
		{`python_version>="3.8"and os_name=="posix"`, linuxAMD64, isTrue},
		// extra is always "" in a requirements file.
		{`extra == "gpu"`, linuxAMD64, isFalse},
		{`extra == "gpu"`, nothingKnown, isFalse},
		{`extra == ""`, nothingKnown, isTrue},
		{`extra != "gpu" and sys_platform == "linux"`, linuxAMD64, isTrue},
		// Containment is on strings.
		{`'linux' in sys_platform`, linuxAMD64, isTrue},
		{`'win' in sys_platform`, linuxAMD64, isFalse},
		{`'win' not in sys_platform`, linuxAMD64, isTrue},
		{`sys_platform not in "win32 cygwin"`, linuxAMD64, isTrue},
		// Strings that are not versions compare as strings.
		{`os_name < "q"`, linuxAMD64, isTrue},
		{`os_name >= "q"`, linuxAMD64, isFalse},
		{`os_name === "posix"`, linuxAMD64, isTrue},
		{`os_name == 'a"b'`, linuxAMD64, isFalse},
		// Parentheses and precedence: and binds tighter than or.
		{`(os_name == "nt" or sys_platform == "linux") and python_version >= "3.9"`, linuxAMD64, isTrue},
		{`os_name == "nt" or (sys_platform == "linux" and python_version < "3.9")`, linuxAMD64, isFalse},
		{`os_name == "posix" or os_name == "nt" and python_version < "3"`, linuxAMD64, isTrue},
		{`(os_name == "posix" or os_name == "nt") and python_version < "3"`, linuxAMD64, isFalse},
		{` ( ( sys_platform == "linux" ) ) `, linuxAMD64, isTrue},
		// Unknown values: the marker could hold, so the requirement is checked...
		{`python_version < "3.8"`, linuxNoPython, isUnknown},
		{`python_full_version >= '3.11.2'`, linuxNoFull, isUnknown},
		{`python_version >= "3.8"`, linuxNoFull, isTrue},
		{`platform_release >= "5.10"`, linuxAMD64, isUnknown},
		{`platform_version == "#1 SMP"`, linuxAMD64, isUnknown},
		{`sys_platform == "win32"`, nothingKnown, isUnknown},
		{`python_version < "3.8" or sys_platform == "win32"`, linuxNoPython, isUnknown},
		// ...unless the rest decides whatever the unknown value is.
		{`python_version < "3.8" and sys_platform == "win32"`, linuxNoPython, isFalse},
		{`python_version < "3.8" or sys_platform == "linux"`, linuxNoPython, isTrue},
	}
	for _, tt := range tests {
		t.Run(tt.marker, func(t *testing.T) {
			m, err := ParseMarker(tt.marker)
			if err != nil {
				t.Fatalf("ParseMarker(%q): %v", tt.marker, err)
			}
			if m.String() != tt.marker {
				t.Errorf("String() = %q, want the marker as written", m.String())
			}
			got, err := m.root.eval(tt.env)
			if err != nil {
				t.Fatalf("eval: %v", err)
			}
			if got != tt.want {
				t.Errorf("eval = %v, want %v", got, tt.want)
			}
			applies, err := m.Applies(tt.env)
			if err != nil {
				t.Fatalf("Applies: %v", err)
			}
			if applies != (tt.want != isFalse) {
				t.Errorf("Applies = %v, want %v (skipped only when false)", applies, tt.want != isFalse)
			}
		})
	}
}

func TestMarkerUndefinedComparison(t *testing.T) {
	for _, marker := range []string{
		`os_name ~= "posix"`,
		`sys_platform ~= "3.1"`,                                // "linux" is not a version
		`sys_platform == "linux" and os_name ~= "posix"`,       // an error is not hidden by the other side
		`python_version < "3" or platform_machine ~= "x86_64"`, // nor by or
	} {
		m, err := ParseMarker(marker)
		if err != nil {
			t.Fatalf("ParseMarker(%q): %v", marker, err)
		}
		if ok, err := m.Applies(linuxAMD64); err == nil || !strings.Contains(err.Error(), "undefined") {
			t.Errorf("Applies(%q) = %v, %v; want an undefined comparison error", marker, ok, err)
		}
	}
	// With the variable unknown nothing is compared, so nothing fails.
	m, err := ParseMarker(`os_name ~= "posix"`)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := m.Applies(nil); err != nil || !ok {
		t.Errorf("Applies(nil) = %v, %v; want true, nil", ok, err)
	}
}

func TestNewEnvironment(t *testing.T) {
	cpython := Environment{PlatformPythonImplementation: "CPython", ImplementationName: "cpython"}
	linux := func(machine string) Environment {
		e := cpython
		e.PythonVersion, e.PythonFullVersion, e.ImplementationVersion = "3.11", "3.11.7", "3.11.7"
		e.OSName, e.SysPlatform, e.PlatformSystem, e.PlatformMachine = "posix", "linux", "Linux", machine
		return e
	}
	tests := []struct {
		name string
		in   *Installed
		want Environment
	}{
		{"nil", nil, cpython},
		{"amd64", &Installed{Python: "3.11", PythonFull: "3.11.7", OS: "linux", Architecture: "amd64"}, linux("x86_64")},
		{"arm64", &Installed{Python: "3.11", PythonFull: "3.11.7", OS: "linux", Architecture: "arm64", Variant: "v8"}, linux("aarch64")},
		{"arm v7", &Installed{Python: "3.11", PythonFull: "3.11.7", OS: "linux", Architecture: "arm", Variant: "v7"}, linux("armv7l")},
		{"arm without variant", &Installed{Python: "3.11", PythonFull: "3.11.7", OS: "linux", Architecture: "arm"}, linux("armv7l")},
		{"arm v6", &Installed{Python: "3.11", PythonFull: "3.11.7", OS: "linux", Architecture: "arm", Variant: "v6"}, linux("armv6l")},
		{"386", &Installed{Python: "3.11", PythonFull: "3.11.7", OS: "linux", Architecture: "386"}, linux("i686")},
		{"ppc64le", &Installed{Python: "3.11", PythonFull: "3.11.7", OS: "linux", Architecture: "ppc64le"}, linux("ppc64le")},
		{"s390x", &Installed{Python: "3.11", PythonFull: "3.11.7", OS: "linux", Architecture: "s390x"}, linux("s390x")},
		{"unknown architecture", &Installed{Python: "3.11", PythonFull: "3.11.7", OS: "linux", Architecture: "mips64le"}, linux("")},
		{"windows", &Installed{Python: "3.11", PythonFull: "3.11.7", OS: "windows", Architecture: "amd64"}, func() Environment {
			e := linux("x86_64")
			e.OSName, e.SysPlatform, e.PlatformSystem = "nt", "win32", "Windows"
			return e
		}()},
		{"unknown os", &Installed{Python: "3.11", PythonFull: "3.11.7", Architecture: "amd64"}, func() Environment {
			e := linux("x86_64")
			e.OSName, e.SysPlatform, e.PlatformSystem = "", "", ""
			return e
		}()},
		{"only major.minor", &Installed{Python: "3.11", PythonFull: "3.11", OS: "linux", Architecture: "amd64"}, func() Environment {
			e := linux("x86_64")
			e.PythonFullVersion, e.ImplementationVersion = "", ""
			return e
		}()},
		{"release candidate", &Installed{Python: "3.13", PythonFull: "3.13.0rc2", OS: "linux", Architecture: "amd64"}, func() Environment {
			e := linux("x86_64")
			e.PythonVersion, e.PythonFullVersion, e.ImplementationVersion = "3.13", "3.13.0rc2", "3.13.0rc2"
			return e
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewEnvironment(tt.in); !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("NewEnvironment =\n  %+v\nwant\n  %+v", *got, tt.want)
			}
		})
	}
}

// TestHostileMarkersAreBounded: deep nesting or endless chains from a
// hostile requirements.txt are refused, not parsed until the stack or the
// CPU runs out.
func TestHostileMarkersAreBounded(t *testing.T) {
	for name, m := range map[string]string{
		"deep parentheses": strings.Repeat("(", 100000) + `os_name == "posix"` + strings.Repeat(")", 100000),
		"endless chain":    strings.Repeat(`os_name == "posix" and `, 10000) + `os_name == "posix"`,
	} {
		if _, err := ParseMarker(m); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	ok := strings.Repeat("(", maxMarkerDepth) + `os_name == "posix"` + strings.Repeat(")", maxMarkerDepth)
	if _, err := ParseMarker(ok); err != nil {
		t.Errorf("%d parentheses refused: %v", maxMarkerDepth, err)
	}
}
