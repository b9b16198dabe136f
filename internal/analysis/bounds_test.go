package analysis

import (
	"math"
	"strings"
	"testing"
)

func ptr(v float64) *float64 { return &v }

func TestBoundsCheck(t *testing.T) {
	for _, tc := range []struct {
		b    Bounds
		v    float64
		want string // "" when v lies in b
	}{
		{Bounds{}, 42, ""},
		{Bounds{}, math.Inf(1), ""},
		{Bounds{Min: ptr(0.95)}, 0.95, ""},
		{Bounds{Min: ptr(0.95)}, 0.93, "0.93 is below the minimum 0.95"},
		{Bounds{Max: ptr(0.01)}, 0.01, ""},
		{Bounds{Max: ptr(0.01)}, 0.02, "0.02 is above the maximum 0.01"},
		{Bounds{Min: ptr(-1), Max: ptr(1)}, 0, ""},
		{Bounds{Min: ptr(-1), Max: ptr(1)}, -1.5, "-1.5 is below the minimum -1"},
		{Bounds{Min: ptr(-1), Max: ptr(1)}, math.Inf(1), "+Inf is above the maximum 1"},
		{Bounds{Min: ptr(0)}, math.Inf(-1), "-Inf is below the minimum 0"},
		{Bounds{Max: ptr(1e3)}, 1e6, "1000000 is above the maximum 1000"},
		{Bounds{Max: ptr(0.5)}, 1e-7, ""},
		{Bounds{Min: ptr(0.5)}, 1e-7, "1e-07 is below the minimum 0.5"},
		{Bounds{}, math.NaN(), "NaN"},
		{Bounds{Min: ptr(0), Max: ptr(1)}, math.NaN(), "NaN"},
	} {
		err := tc.b.Check(tc.v)
		if tc.want == "" && err != nil {
			t.Errorf("%v in %s: %v, want nil", tc.v, show(tc.b), err)
		}
		if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v in %s: %v, want %q", tc.v, show(tc.b), err, tc.want)
		}
	}
}

func show(b Bounds) string {
	s := func(p *float64) string {
		if p == nil {
			return "nil"
		}
		return format(*p)
	}
	return "[" + s(b.Min) + ", " + s(b.Max) + "]"
}

func TestParseBound(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want *float64
		err  bool
	}{
		{in: "", want: nil},
		{in: "  ", want: nil},
		{in: "0.95", want: ptr(0.95)},
		{in: "-1", want: ptr(-1)},
		{in: "1e3", want: ptr(1000)},
		{in: " 0.5 ", want: ptr(0.5)},
		{in: "0", want: ptr(0)},
		{in: "95%", err: true},
		{in: "abc", err: true},
		{in: "0,95", err: true},
		{in: "NaN", err: true},
		{in: "+Inf", err: true},
		{in: "-inf", err: true},
		{in: "1e400", err: true},
	} {
		got, err := ParseBound(tc.in)
		switch {
		case tc.err:
			if err == nil || !strings.Contains(err.Error(), `"`+tc.in+`"`) {
				t.Errorf("ParseBound(%q) = %v, %v; want an error naming the text", tc.in, got, err)
			}
		case err != nil:
			t.Errorf("ParseBound(%q): %v", tc.in, err)
		case (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want):
			t.Errorf("ParseBound(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"namespace": "team-a", "name": "iris", "version": "7", "role": "canary"}
	for _, tc := range []struct {
		query string
		vars  map[string]string
		want  string
		err   string // what the error names, "" when none
	}{
		{query: `up`, want: `up`},
		{query: `sum(rate(mlflow_model_requests_total{namespace="{{namespace}}",modeldeployment="{{name}}",version="{{version}}",role="{{role}}",code=~"5.."}[1m]))`,
			want: `sum(rate(mlflow_model_requests_total{namespace="team-a",modeldeployment="iris",version="7",role="canary",code=~"5.."}[1m]))`},
		{query: `x{a="{{ name }}"} / x{a="{{name}}"}`, want: `x{a="iris"} / x{a="iris"}`},
		{query: `{{version}}{{version}}`, want: `77`},
		// PromQL's own braces are no placeholders.
		{query: `count({__name__=~"a{2}"})`, want: `count({__name__=~"a{2}"})`},
		// A value is never expanded again.
		{query: `{{name}}`, vars: map[string]string{"name": "{{role}}"}, want: `{{role}}`},
		{query: `x{a="{{model}}"}`, err: "{{model}}"},
		{query: `x{a="{{Name}}"}`, err: "{{Name}}"},
		{query: `x{a="{{}}"}`, err: "{{}}"},
		{query: `x{a="{{name"}`, err: `{{name"}`},
		{query: `{{role}}`, vars: map[string]string{"name": "iris"}, err: "{{role}}"},
		{query: `x{a="{{name}}"}`, vars: map[string]string{"name": `a"} or vector(1) #`}, err: "{{name}}"},
		{query: `x{a="{{name}}"}`, vars: map[string]string{"name": "a\nb"}, err: "{{name}}"},
		{query: `x{a="{{name}}"}`, vars: map[string]string{"name": `a\`}, err: "{{name}}"},
	} {
		v := tc.vars
		if v == nil {
			v = vars
		}
		got, err := Expand(tc.query, v)
		if tc.err == "" && (err != nil || got != tc.want) {
			t.Errorf("Expand(%q) = %q, %v; want %q", tc.query, got, err, tc.want)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("Expand(%q) = %q, %v; want an error naming %s", tc.query, got, err, tc.err)
		}
	}
}

// TestBoundsWithin: the passing value and its interval, as status says
// them; an open side is an infinity.
func TestBoundsWithin(t *testing.T) {
	lo, hi := 0.95, 1e6
	for _, tc := range []struct {
		b    Bounds
		v    float64
		want string
	}{
		{Bounds{Min: &lo}, 0.97, "0.97 within [0.95, +Inf]"},
		{Bounds{Max: &hi}, 3, "3 within [-Inf, 1000000]"},
		{Bounds{Min: &lo, Max: &hi}, 1, "1 within [0.95, 1000000]"},
	} {
		if got := tc.b.Within(tc.v); got != tc.want {
			t.Errorf("Within(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}
