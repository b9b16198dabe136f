// Package text holds the one rule for shortening a message that goes into a
// condition, an event or a log line: never more than n bytes, never half a
// UTF-8 character.
package text

import "unicode/utf8"

// Ellipsis marks a shortened string.
const Ellipsis = "..."

// Shorten returns s when it has at most n bytes, else its longest prefix of
// at most n-len(Ellipsis) bytes that ends on a character boundary, followed
// by Ellipsis. With n smaller than the ellipsis, the prefix alone is cut.
func Shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= len(Ellipsis) {
		return Cut(s, n)
	}
	return Cut(s, n-len(Ellipsis)) + Ellipsis
}

// Cut returns the longest prefix of s of at most n bytes that does not end
// in the middle of a UTF-8 character.
func Cut(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
