package pydeps

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheck(t *testing.T) {
	installed := &Installed{
		Python: "3.11",
		Packages: map[string]string{
			"mlflow":       "3.17.2",
			"scikit-learn": "1.9.1",
			"numpy":        "2.4.6",
			"cloudpickle":  "3.1.3",
			"weird":        "not a version",
			"torch":        "2.4.0+cpu",
		},
	}
	tests := []struct {
		name           string
		env            *ModelEnvironment
		in             *Installed
		wantMissing    []Mismatch
		wantMismatched []Mismatch
		wantSatisfied  bool
		wantSummary    string
	}{
		{
			name: "satisfied",
			env: &ModelEnvironment{Python: "3.11.7", Requirements: []Requirement{
				{Name: "mlflow", Specifier: "==3.17.2"},
				{Name: "scikit_learn", Specifier: "==1.9.1"},
				{Name: "numpy", Specifier: "<3,>=1.20"},
				{Name: "CloudPickle", Specifier: ">=2.0"},
				{Name: "weird"},
				{Name: "torch", Specifier: "==2.4.0"},
				{Name: "mlflow", Specifier: "==3.17.2"}, // a repeat is checked once
			}},
			in:            installed,
			wantSatisfied: true,
			wantSummary:   "all 6 requirements satisfied, python 3.11",
		},
		{
			name: "missing, mismatched, python",
			env: &ModelEnvironment{Python: "3.12.1", Requirements: []Requirement{
				{Name: "foo"},
				{Name: "mlflow", Specifier: "==3.17.2"},
				{Name: "bar", Specifier: ">=1"},
				{Name: "numpy", Specifier: "<2"},
			}},
			in:             installed,
			wantMissing:    []Mismatch{{Name: "foo"}, {Name: "bar", Want: ">=1"}},
			wantMismatched: []Mismatch{{Name: "numpy", Want: "<2", Have: "2.4.6"}},
			wantSummary:    "2 missing (foo, bar), 1 mismatched (numpy wants <2, has 2.4.6), python 3.12 wanted, image has 3.11",
		},
		{
			name: "invalid specifier and version",
			env: &ModelEnvironment{Requirements: []Requirement{
				{Name: "mlflow", Specifier: "=>3"},
				{Name: "weird", Specifier: ">=1"},
			}},
			in: installed,
			wantMismatched: []Mismatch{
				{Name: "mlflow", Want: "=>3 (invalid specifier)", Have: "3.17.2"},
				{Name: "weird", Want: ">=1", Have: "not a version (invalid version)"},
			},
			wantSummary: "2 mismatched (mlflow wants =>3 (invalid specifier), has 3.17.2; weird wants >=1, has not a version (invalid version)), image has python 3.11",
		},
		{
			name:          "only python differs",
			env:           &ModelEnvironment{Python: "3.10", Requirements: []Requirement{{Name: "numpy"}}},
			in:            installed,
			wantSatisfied: false,
			wantSummary:   "1 requirement satisfied, python 3.10 wanted, image has 3.11",
		},
		{
			name:          "python unknown in the image",
			env:           &ModelEnvironment{Python: "3.11.7"},
			in:            &Installed{},
			wantSatisfied: true,
			wantSummary:   "no requirements to check, python 3.11 wanted, image python unknown",
		},
		{
			name:        "nil installed",
			env:         &ModelEnvironment{Requirements: []Requirement{{Name: "mlflow", Specifier: "==3.17.2"}}},
			in:          nil,
			wantMissing: []Mismatch{{Name: "mlflow", Want: "==3.17.2"}},
			wantSummary: "1 missing (mlflow)",
		},
		{
			name:          "nil environment",
			env:           nil,
			in:            installed,
			wantSatisfied: true,
			wantSummary:   "no requirements to check, image has python 3.11",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Check(tt.env, tt.in)
			if !reflect.DeepEqual(r.Missing, tt.wantMissing) {
				t.Errorf("Missing = %+v, want %+v", r.Missing, tt.wantMissing)
			}
			if !reflect.DeepEqual(r.Mismatched, tt.wantMismatched) {
				t.Errorf("Mismatched = %+v, want %+v", r.Mismatched, tt.wantMismatched)
			}
			if got := r.Satisfied(); got != tt.wantSatisfied {
				t.Errorf("Satisfied() = %v, want %v", got, tt.wantSatisfied)
			}
			if got := r.Summary(); got != tt.wantSummary {
				t.Errorf("Summary() =\n  %q\nwant\n  %q", got, tt.wantSummary)
			}
		})
	}
}

func TestSummaryIsBounded(t *testing.T) {
	r := &Report{PythonWant: "3.11", PythonHave: "3.12"}
	for i := 0; i < 50; i++ {
		long := fmt.Sprintf("package-%02d-%s", i, strings.Repeat("long", 40))
		r.Missing = append(r.Missing, Mismatch{Name: long})
		r.Mismatched = append(r.Mismatched, Mismatch{Name: long, Want: ">=" + strings.Repeat("1.", 60) + "0", Have: "0.1"})
	}
	s := r.Summary()
	if len(s) >= summaryMaxLen {
		t.Errorf("Summary is %d characters, want under %d", len(s), summaryMaxLen)
	}
	for _, part := range []string{"50 missing (package-00-", "and 42 more", "50 mismatched (package-00-"} {
		if !strings.Contains(s, part) {
			t.Errorf("Summary %q does not contain %q", s, part)
		}
	}
	if strings.Contains(s, "package-08-") {
		t.Errorf("Summary %q lists more than 8 names", s)
	}

	// Short names fit entirely, python part included.
	r = &Report{PythonWant: "3.11", PythonHave: "3.12"}
	for i := 0; i < 20; i++ {
		r.Missing = append(r.Missing, Mismatch{Name: fmt.Sprintf("p%d", i)})
	}
	want := "20 missing (p0, p1, p2, p3, p4, p5, p6, p7, and 12 more), python 3.11 wanted, image has 3.12"
	if got := r.Summary(); got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
}

func TestCheckMarkers(t *testing.T) {
	linux := &Installed{
		Python: "3.11", PythonFull: "3.11.7", OS: "linux", Architecture: "amd64",
		Packages: map[string]string{"numpy": "2.4.6", "uvloop": "0.19.0", "foo": "2.0"},
	}
	arm := &Installed{
		Python: "3.11", PythonFull: "3.11.7", OS: "linux", Architecture: "arm64",
		Packages: linux.Packages,
	}
	noPython := &Installed{OS: "linux", Architecture: "amd64", Packages: linux.Packages}
	tests := []struct {
		name           string
		reqs           []Requirement
		in             *Installed
		wantChecked    int
		wantMissing    []Mismatch
		wantMismatched []Mismatch
		wantSkipped    []string // names
		wantSummary    string
	}{
		{
			name: "false markers skip, true ones check",
			reqs: []Requirement{
				{Name: "pywin32", Specifier: "==306", Marker: `sys_platform == "win32"`},
				{Name: "numpy", Specifier: "<3", Marker: `python_version >= "3.8" and platform_machine == "x86_64"`},
				{Name: "importlib-metadata", Marker: `python_version < "3.8"`},
				{Name: "torch", Marker: `extra == "gpu"`},
				{Name: "uvloop", Marker: `os_name == 'nt' or sys_platform == 'linux'`},
				{Name: "tomli", Marker: `python_full_version < '3.11.0'`},
			},
			in:          linux,
			wantChecked: 2,
			wantSkipped: []string{"pywin32", "importlib-metadata", "torch", "tomli"},
			wantSummary: "all 2 requirements satisfied, 4 skipped by markers, image has python 3.11",
		},
		{
			name: "the machine decides",
			reqs: []Requirement{
				{Name: "numpy", Specifier: "<3", Marker: `python_version >= "3.8" and platform_machine == "x86_64"`},
				{Name: "intel-openmp", Marker: `platform_machine == "x86_64"`},
			},
			in:          arm,
			wantSkipped: []string{"numpy", "intel-openmp"},
			wantSummary: "no requirements to check, 2 skipped by markers, image has python 3.11",
		},
		{
			name: "the same requirement under exclusive markers",
			reqs: []Requirement{
				{Name: "foo", Specifier: "==1.0", Marker: `python_version < "3.8"`},
				{Name: "foo", Specifier: "==2.0", Marker: `python_version >= "3.8"`},
				{Name: "Foo", Specifier: "== 2.0", Marker: ` python_version >= "3.8" `}, // a repeat
			},
			in:          linux,
			wantChecked: 1,
			wantSkipped: []string{"foo"},
			wantSummary: "1 requirement satisfied, 1 skipped by markers, image has python 3.11",
		},
		{
			name: "unknown python: checked",
			reqs: []Requirement{
				{Name: "importlib-metadata", Marker: `python_version < "3.8"`},
				// Decided without the python version.
				{Name: "pywin32", Marker: `python_version >= "3.8" and sys_platform == "win32"`},
			},
			in:          noPython,
			wantChecked: 1,
			wantMissing: []Mismatch{{Name: "importlib-metadata"}},
			wantSkipped: []string{"pywin32"},
			wantSummary: "1 missing (importlib-metadata), 1 skipped by markers",
		},
		{
			name: "invalid markers",
			reqs: []Requirement{
				{Name: "broken", Specifier: "==1", Marker: `os_name = "nt"`},
				{Name: "numpy", Marker: `os_name ~= "posix"`},
				{Name: "foo", Specifier: ">=1", Marker: `sys_platform == "linux" and (os_name == "posix"`},
			},
			in:          linux,
			wantChecked: 3,
			wantMismatched: []Mismatch{
				{Name: "broken", Want: `==1; os_name = "nt" (invalid marker)`},
				{Name: "numpy", Want: `; os_name ~= "posix" (invalid marker)`, Have: "2.4.6"},
				{Name: "foo", Want: `>=1; sys_platform == "linux" and (os_name == "posix" (invalid marker)`, Have: "2.0"},
			},
			wantSummary: `3 mismatched (broken wants ==1; os_name = "nt" (invalid marker), not installed; ` +
				`numpy wants ; os_name ~= "posix" (invalid marker), has 2.4.6; ` +
				`foo wants >=1; sys_platform == "linux"... (invalid marker), has 2.0), image has python 3.11`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Check(&ModelEnvironment{Requirements: tt.reqs}, tt.in)
			if r.Checked != tt.wantChecked {
				t.Errorf("Checked = %d, want %d", r.Checked, tt.wantChecked)
			}
			if !reflect.DeepEqual(r.Missing, tt.wantMissing) {
				t.Errorf("Missing = %+v, want %+v", r.Missing, tt.wantMissing)
			}
			if !reflect.DeepEqual(r.Mismatched, tt.wantMismatched) {
				t.Errorf("Mismatched = %+v, want %+v", r.Mismatched, tt.wantMismatched)
			}
			var skipped []string
			for _, req := range r.Skipped {
				skipped = append(skipped, req.Name)
				if req.Marker == "" {
					t.Errorf("skipped %+v has no marker", req)
				}
			}
			if !reflect.DeepEqual(skipped, tt.wantSkipped) {
				t.Errorf("Skipped = %v, want %v", skipped, tt.wantSkipped)
			}
			if got := r.Summary(); got != tt.wantSummary {
				t.Errorf("Summary() =\n  %q\nwant\n  %q", got, tt.wantSummary)
			}
			if want := len(tt.wantMissing) == 0 && len(tt.wantMismatched) == 0; r.Satisfied() != want {
				t.Errorf("Satisfied() = %v, want %v", r.Satisfied(), want)
			}
		})
	}
}

// TestCheckWindowsOnlyRequirement is the case that made markers count: a
// model logged on Windows pins pywin32 behind a marker, and Enforce must not
// refuse a Linux base image for it.
func TestCheckWindowsOnlyRequirement(t *testing.T) {
	const site = "usr/local/lib/python3.11/site-packages"
	base := testImage(t, []tarEntry{
		testDist(site, "mlflow-3.17.2", "mlflow", "3.17.2"),
		testDist(site, "numpy-2.4.6", "numpy", "2.4.6"),
	})
	tests := []struct {
		name         string
		requirements string
		platform     string
		wantMissing  []Mismatch
		wantSkipped  int
		wantSummary  string
	}{
		{"marker on linux", "mlflow==3.17.2\npywin32==306; sys_platform == \"win32\"\nnumpy\n", "linux/amd64",
			nil, 1, "all 2 requirements satisfied, 1 skipped by markers, python 3.11"},
		{"no marker on linux", "mlflow==3.17.2\npywin32==306\nnumpy\n", "linux/amd64",
			[]Mismatch{{Name: "pywin32", Want: "==306"}}, 0, "1 missing (pywin32), python 3.11"},
		{"marker on windows", "mlflow==3.17.2\npywin32==306; sys_platform == \"win32\"\nnumpy\n", "windows/amd64",
			[]Mismatch{{Name: "pywin32", Want: "==306"}}, 0, "1 missing (pywin32), python 3.11"},
		// Without a platform in the config the marker cannot be decided.
		{"marker, platform unknown", "mlflow==3.17.2\npywin32==306; sys_platform == \"win32\"\nnumpy\n", "",
			[]Mismatch{{Name: "pywin32", Want: "==306"}}, 0, "1 missing (pywin32), python 3.11"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeModel(t, map[string]string{"requirements.txt": tt.requirements, "python_env.yaml": "python: 3.11.7\n"})
			env, err := ReadModelEnvironment(dir)
			if err != nil {
				t.Fatalf("ReadModelEnvironment: %v", err)
			}
			in, err := InspectImage(withConfig(t, base, tt.platform, "PYTHON_VERSION=3.11.7"))
			if err != nil {
				t.Fatalf("InspectImage: %v", err)
			}
			r := Check(env, in)
			if !reflect.DeepEqual(r.Missing, tt.wantMissing) {
				t.Errorf("Missing = %+v, want %+v", r.Missing, tt.wantMissing)
			}
			if len(r.Skipped) != tt.wantSkipped {
				t.Errorf("Skipped = %+v, want %d", r.Skipped, tt.wantSkipped)
			}
			if r.Satisfied() != (tt.wantMissing == nil) {
				t.Errorf("Satisfied() = %v with Missing %+v", r.Satisfied(), r.Missing)
			}
			if got := r.Summary(); got != tt.wantSummary {
				t.Errorf("Summary() = %q, want %q", got, tt.wantSummary)
			}
		})
	}
}

func TestSummaryKeepsNotes(t *testing.T) {
	long := ">=" + strings.Repeat("1.", 40) + "0"
	r := &Report{Mismatched: []Mismatch{
		{Name: "a", Want: long + " (invalid specifier)", Have: "1.0"},
		{Name: "b", Want: ">=1", Have: strings.Repeat("9", 60) + " (invalid version)"},
		{Name: "c", Want: "; " + strings.Repeat("os_name == 'x' or ", 5) + "os_name == 'y' (invalid marker)", Have: "1.0"},
	}}
	s := r.Summary()
	for _, note := range []string{"(invalid specifier), has 1.0", "(invalid version);", "(invalid marker), has 1.0"} {
		if !strings.Contains(s, note) {
			t.Errorf("Summary %q lost %q", s, note)
		}
	}
	if strings.Contains(s, long) {
		t.Errorf("Summary %q did not shorten the long specifier", s)
	}
	// A shortened field never splits a character.
	r = &Report{Missing: []Mismatch{{Name: strings.Repeat("é", 40)}}}
	if s := r.Summary(); !utf8.ValidString(s) || !strings.Contains(s, "...") {
		t.Errorf("Summary %q is not valid UTF-8 or not shortened", s)
	}
}
