package image

// A reader of the Dockerfile subset ours uses: comments, line
// continuations, FROM stages, instructions with shell-like words (double
// and single quotes, $VAR and ${VAR}).

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

type instr struct{ cmd, args string }

type stage struct {
	from   string // FROM's arguments
	instrs []instr
}

func parseDockerfile(t *testing.T, src string) []stage {
	t.Helper()
	var logical []string
	var cur strings.Builder
	cont := false
	for _, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		// Comments (and parser directives) go, inside continuations too, as
		// Docker does; so do empty lines.
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`))
			cur.WriteString(" ")
			cont = true
			continue
		}
		cur.WriteString(trimmed)
		logical = append(logical, cur.String())
		cur.Reset()
		cont = false
	}
	if cont {
		t.Fatal("Dockerfile: ends in a line continuation")
	}
	var stages []stage
	for _, l := range logical {
		cmd, args, _ := strings.Cut(l, " ")
		cmd, args = strings.ToUpper(cmd), strings.TrimSpace(args)
		if cmd == "FROM" {
			stages = append(stages, stage{from: args})
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("Dockerfile: %s before the first FROM", cmd)
		}
		s := &stages[len(stages)-1]
		s.instrs = append(s.instrs, instr{cmd, args})
	}
	return stages
}

// words splits s as a shell does, expanding $VAR and ${VAR} from vars
// outside single quotes; with vars nil nothing is expanded.
func words(t *testing.T, s string, vars map[string]string) []string {
	t.Helper()
	var out []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				t.Fatalf("unterminated ' in %s", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				t.Fatalf(`unterminated " in %s`, s)
			}
			cur.WriteString(expand(t, s[i+1:i+1+j], vars))
			i += j + 1
			inWord = true
		case c == '$' && vars != nil:
			j := i + 1
			if j < len(s) && s[j] == '{' {
				k := strings.IndexByte(s[j:], '}')
				if k < 0 {
					t.Fatalf("unterminated ${ in %s", s)
				}
				cur.WriteString(lookup(t, s[j+1:j+k], vars))
				i = j + k
			} else {
				for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
					j++
				}
				cur.WriteString(lookup(t, s[i+1:j], vars))
				i = j - 1
			}
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}

// expand expands variables in a double-quoted string.
func expand(t *testing.T, s string, vars map[string]string) string {
	if vars == nil || !strings.Contains(s, "$") {
		return s
	}
	// Quote-free: split it as words and join the pieces back with the
	// spaces they had.
	var b strings.Builder
	for i, part := range strings.Split(s, " ") {
		if i > 0 {
			b.WriteByte(' ')
		}
		if ws := words(t, part, vars); len(ws) > 0 {
			b.WriteString(ws[0])
		}
	}
	return b.String()
}

func lookup(t *testing.T, name string, vars map[string]string) string {
	v, ok := vars[name]
	if !ok {
		t.Errorf("Dockerfile: $%s is not a build argument this test knows", name)
	}
	return v
}

// moduleDirs are the top folders of this module that ./cmd's packages are in.
func moduleDirs(t *testing.T) []string {
	t.Helper()
	out, err := command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", "./cmd", "./cmd/request-metrics")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, dir := range strings.Fields(out) {
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			t.Fatal(err)
		}
		seen[strings.SplitN(filepath.ToSlash(rel), "/", 2)[0]] = true
	}
	var dirs []string
	for d := range seen {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	return dirs
}
