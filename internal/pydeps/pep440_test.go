package pydeps

import "testing"

func TestVersionCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0.0", 0},
		{"1.0.0.0", "1", 0},
		{"1.9.1", "1.10", -1},
		{"2.4.6", "2.4.10", -1},
		{"2.0rc1", "2.0", -1},
		{"2.0a1", "2.0b1", -1},
		{"2.0b2", "2.0rc1", -1},
		{"2.0c1", "2.0rc1", 0},
		{"2.0alpha1", "2.0a1", 0},
		{"1.0.post1", "1.0", 1},
		{"1.0-1", "1.0.post1", 0},
		{"1.0.dev0", "1.0a1", -1},
		{"1.0a1.dev0", "1.0a1", -1},
		{"1.0.post1.dev0", "1.0.post1", -1},
		{"1.0.post1.dev0", "1.0", 1},
		{"2.1.0+cpu", "2.1.0", 0},
		{"2.1.0+cu121", "2.1.0+cpu", 0},
		{"1!1.0", "2.0", 1},
		{"v1.2", "1.2", 0},
		{"1.0RC1", "1.0rc1", 0},
		{"2026.10.19.post1", "2026.10.19", 1},
	}
	for _, tt := range tests {
		t.Run(tt.a+"_vs_"+tt.b, func(t *testing.T) {
			a, err := parseVersion(tt.a)
			if err != nil {
				t.Fatalf("parse %q: %v", tt.a, err)
			}
			b, err := parseVersion(tt.b)
			if err != nil {
				t.Fatalf("parse %q: %v", tt.b, err)
			}
			if got := a.compare(b); got != tt.want {
				t.Errorf("compare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
			if got := b.compare(a); got != -tt.want {
				t.Errorf("compare(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
			}
		})
	}
}

func TestVersionInvalid(t *testing.T) {
	for _, v := range []string{"", "abc", "1.0..2", "1.0-beta-gamma", "1.0+", "99999999999999999999999.0"} {
		if _, err := parseVersion(v); err == nil {
			t.Errorf("parseVersion(%q) succeeded, want an error", v)
		}
	}
}

func TestVersionSpecifier(t *testing.T) {
	tests := []struct {
		spec, version string
		want          bool
		wantErr       bool // the specifier does not parse
	}{
		{"", "1.0", true, false},
		{"==1.0", "1.0.0", true, false},
		{"==1.9.1", "1.9.1", true, false},
		{"==1.9.1", "1.9.2", false, false},
		{"==1.9.*", "1.9.0", true, false},
		{"==1.9.*", "1.9", true, false},
		{"==1.9.*", "1.9.14rc1", true, false},
		{"==1.9.*", "1.10.0", false, false},
		{"==1.0.*", "1.1", false, false},
		{"!=1.9.*", "1.10.0", true, false},
		{"!=1.9.*", "1.9.3", false, false},
		{"!=1.5", "1.5.0", false, false},
		{"!=1.5", "1.5.1", true, false},
		{">=2.0", "2.0", true, false},
		{">=2.0", "1.9.9", false, false},
		{"<=2.0", "2.0.0", true, false},
		{">1.7", "1.7.1", true, false},
		{">1.7", "1.7.post1", false, false},
		{">1.7.post1", "1.7.post2", true, false},
		{"<2", "1.26.4", true, false},
		{"<2", "2.4.6", false, false},
		{"<2.0", "2.0rc1", false, false},
		{"<2.0rc2", "2.0rc1", true, false},
		{"~=1.4.5", "1.4.9", true, false},
		{"~=1.4.5", "1.5.0", false, false},
		{"~=1.4.5", "1.4.4", false, false},
		{"~=2.2", "2.9", true, false},
		{"~=2.2", "3.0", false, false},
		{"<3,>=1.20", "2.4.6", true, false},
		{">=1.20,<3", "3.0", false, false},
		{">=1.20, <3", "1.19", false, false},
		{"==2.1.0", "2.1.0+cpu", true, false},
		{"==2.1.0+cpu", "2.1.0+cpu", true, false},
		{"==2.1.0+cpu", "2.1.0+cu121", false, false},
		{"!=2.1.0+cpu", "2.1.0+cu121", true, false},
		{">=2.1", "2.1.0+cpu", true, false},
		{"===1.0-foo", "1.0-FOO", true, false},
		{"===1.0", "1.0.0", false, false},
		{"==1!2.0", "2.0", false, false},
		// The exclusive comparisons as pip (packaging 26) applies them.
		{"<1.0.post1", "1.0rc1", true, false},
		{"<1.0.post1", "1.0.post0.dev0", true, false},
		{"<1.0.post1", "1.0.post1.dev0", false, false},
		{"<1.0.post1.dev1", "1.0.post1.dev0", true, false},
		{"<1.0", "1.0.dev0", false, false},
		{"<1.0", "1.0+local", false, false},
		{">1.0a1", "1.0.post1", true, false},
		{">1.0a1", "1.0a1.post1", false, false},
		{">1.0a1", "1.0a2", true, false},
		{">1.0", "1.0.post1.dev0", false, false},
		{">1.0", "1.0+local", false, false},
		{">1.0.dev0", "1.0.post1", true, false},
		{">1.0rc1.dev1", "1.0a2", false, false},
		{">1.0rc1.dev1", "1.0rc1.post1", true, false},
		{"<=1.0", "1.0+local", true, false},
		{"~=1", "1.0", false, true},
		{">=1.*", "1.0", false, true},
		{"=>1.0", "1.0", false, true},
		{"1.0", "1.0", false, true},
		{">=1.0,", "1.0", false, true},
		{"==1.0..1", "1.0", false, true},
		{">=1.0+cpu", "1.0", false, true},
		{"=1.0", "1.0", false, true},
		{">=1.0||<0.5", "1.0", false, true}, // not PEP 440, though some libraries take it
		{"==1.0,,<2", "1.0", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.spec+"_"+tt.version, func(t *testing.T) {
			spec, err := parseSpecifier(tt.spec)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseSpecifier(%q) succeeded, want an error", tt.spec)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseSpecifier(%q): %v", tt.spec, err)
			}
			got, err := spec.allows(tt.version)
			if err != nil {
				t.Fatalf("allows(%q): %v", tt.version, err)
			}
			if got != tt.want {
				t.Errorf("%q allows %q = %v, want %v", tt.spec, tt.version, got, tt.want)
			}
		})
	}
}

func TestVersionSpecifierInvalidInstalled(t *testing.T) {
	spec, err := parseSpecifier(">=1.0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spec.allows("not-a-version"); err == nil {
		t.Error("allows(\"not-a-version\") succeeded, want an error")
	}
	// "===" compares strings and needs no parsed version.
	spec, err = parseSpecifier("===not-a-version")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := spec.allows("not-a-version"); err != nil || !ok {
		t.Errorf("=== allows = %v, %v; want true, nil", ok, err)
	}
}
