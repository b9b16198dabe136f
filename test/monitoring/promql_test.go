package monitoring

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// metricNames returns the metric names a PromQL expression selects: the
// bare identifiers that are neither functions, aggregations, keywords nor
// label names (grouping lists, matchers), and __name__ matchers. Grafana's
// variables ($__rate_interval, ${x}, [[x]]) are skipped. It is a lexer, not
// a parser: enough for the operator's own queries, and it refuses what it
// does not understand rather than guess.
func metricNames(expr string) ([]string, error) {
	var names []string
	s := expr
	i := 0
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
	isIdent := func(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }
	skipSpace := func(j int) int {
		for j < len(s) && strings.ContainsRune(" \t\r\n", rune(s[j])) {
			j++
		}
		return j
	}
	// skipString skips the quoted string at j, returning the index after it
	// and its contents.
	skipString := func(j int) (int, string, error) {
		q := s[j]
		var b strings.Builder
		for k := j + 1; k < len(s); k++ {
			switch {
			case s[k] == '\\' && q != '`' && k+1 < len(s):
				b.WriteByte(s[k+1])
				k++
			case s[k] == q:
				return k + 1, b.String(), nil
			default:
				b.WriteByte(s[k])
			}
		}
		return 0, "", fmt.Errorf("unterminated string in %q", expr)
	}
	// skipUntil skips to after the close matching the open at j, minding
	// strings; in braces it reads __name__ matchers.
	skipUntil := func(j int, close byte) (int, error) {
		open := s[j]
		depth := 0
		for k := j; k < len(s); k++ {
			switch c := s[k]; {
			case c == '"' || c == '\'' || c == '`':
				end, _, err := skipString(k)
				if err != nil {
					return 0, err
				}
				k = end - 1
			case c == open:
				depth++
			case c == close:
				depth--
				if depth == 0 {
					return k + 1, nil
				}
			case open == '{' && strings.HasPrefix(s[k:], "__name__"):
				m := regexp.MustCompile(`^__name__\s*(=~|!=|!~|=)\s*`).FindStringSubmatch(s[k:])
				if m == nil {
					continue
				}
				q := k + len(m[0])
				if m[1] != "=" || q >= len(s) || !strings.ContainsRune("\"'`", rune(s[q])) {
					return 0, fmt.Errorf("a __name__ matcher other than = in %q", expr)
				}
				end, name, err := skipString(q)
				if err != nil {
					return 0, err
				}
				names = append(names, name)
				k = end - 1
			}
		}
		return 0, fmt.Errorf("unbalanced %c in %q", open, expr)
	}
	var err error
	for i < len(s) {
		c := s[i]
		switch {
		case strings.ContainsRune(" \t\r\n", rune(c)):
			i++
		case c == '"' || c == '\'' || c == '`':
			if i, _, err = skipString(i); err != nil {
				return nil, err
			}
		case c == '{':
			if i, err = skipUntil(i, '}'); err != nil {
				return nil, err
			}
		case c == '[':
			if i, err = skipUntil(i, ']'); err != nil { // ranges, subqueries, Grafana's [[var]]
				return nil, err
			}
		case c == '$':
			i++
			if i < len(s) && s[i] == '{' {
				if i, err = skipUntil(i, '}'); err != nil {
					return nil, err
				}
				continue
			}
			for i < len(s) && isIdent(s[i]) {
				i++
			}
		case c >= '0' && c <= '9' || (c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9'):
			// A number or a duration (5m, 1h30m, 0x1f, 1e3).
			for i < len(s) && (isIdent(s[i]) || s[i] == '.') {
				i++
			}
		case isIdentStart(c):
			start := i
			for i < len(s) && isIdent(s[i]) {
				i++
			}
			word := s[start:i]
			next := skipSpace(i)
			lower := strings.ToLower(word)
			switch {
			case grouping[lower]:
				// by (a, b), on (...), group_left (...): label names.
				if next < len(s) && s[next] == '(' {
					if i, err = skipUntil(next, ')'); err != nil {
						return nil, err
					}
				}
			case keywords[lower]:
			case next < len(s) && s[next] == '(':
				// A function or an aggregation's argument list follows.
			case aggregations[lower]:
				// sum by (...) (...): the grouping comes first.
			default:
				names = append(names, word)
			}
		default:
			i++
		}
	}
	return names, nil
}

var (
	grouping     = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
	keywords     = map[string]bool{"and": true, "or": true, "unless": true, "offset": true, "bool": true, "inf": true, "nan": true, "atan2": true}
	aggregations = map[string]bool{"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true, "count": true,
		"count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true}
)

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`up`:                            {"up"},
		`rate(foo_total{a="b,c}"}[5m])`: {"foo_total"},
		`sum by (le, trigger) (rate(x_bucket{le="900"}[$__rate_interval])) / on(job) group_left(version) y`: {"x_bucket", "y"},
		`sum(increase(a_total[1h])) >= 3 and sum(b) without (instance) > 0.5`:                               {"a_total", "b"},
		`histogram_quantile(0.9, sum(rate(h_bucket[${interval}])) by (le)) offset 5m`:                       {"h_bucket"},
		`{__name__="by_name", job="x"} - count(c) * 1e3`:                                                    {"by_name", "c"},
		`label_replace(m, "dst", "$1", "src", "(.*)") unless n[[range]]`:                                    {"m", "n"},
		`max by (namespace, name) (s) == 1 or vector(0)`:                                                    {"s"},
	} {
		got, err := metricNames(expr)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("metricNames(%s) = %v, %v; want %v", expr, got, err, want)
		}
	}
	for _, bad := range []string{`foo{a="b"`, `rate(x[5m)`, `{__name__=~"a.*"}`, `x{a="unterminated}`} {
		if got, err := metricNames(bad); err == nil {
			t.Errorf("metricNames(%s) = %v, want an error", bad, got)
		}
	}
}
