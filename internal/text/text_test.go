package text

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestShorten(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"a longer message", 10, "a longe..."},
		// "é" is two bytes: a cut at byte 5 would split it.
		{"abcdéfghij", 8, "abcd..."},
		{"日本語のメッセージ", 10, "日本..."},
		{"abcdef", 2, "ab"},
		{"日本", 2, ""},
		{"", 0, ""},
	} {
		got := Shorten(tc.in, tc.n)
		if got != tc.want {
			t.Errorf("Shorten(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
		if !utf8.ValidString(got) || len(got) > max(tc.n, 0) {
			t.Errorf("Shorten(%q, %d) = %q: invalid UTF-8 or too long", tc.in, tc.n, got)
		}
	}
}

func TestCutNeverSplitsACharacter(t *testing.T) {
	s := strings.Repeat("aé日🙂", 20)
	for n := 0; n <= len(s); n++ {
		got := Cut(s, n)
		if !utf8.ValidString(got) || len(got) > n || !strings.HasPrefix(s, got) {
			t.Fatalf("Cut(s, %d) = %q", n, got)
		}
		if n-len(got) >= utf8.UTFMax {
			t.Fatalf("Cut(s, %d) dropped %d bytes", n, n-len(got))
		}
	}
}
