// Package table prints the benchmarks' figures as plain-text tables.
package table

import (
	"fmt"
	"io"
	"strings"
)

// Print writes rows to w as a table: the first row is the heading, columns
// are padded to their widest cell and separated by " | ", and a rule goes
// below the heading.
func Print(w io.Writer, rows [][]string) {
	if len(rows) == 0 {
		return
	}
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, cell := range r {
			if i < len(width) {
				width[i] = max(width[i], len(cell))
			}
		}
	}
	for j, r := range rows {
		var b strings.Builder
		for i, cell := range r {
			if i > 0 {
				b.WriteString(" | ")
			}
			if i < len(width) {
				fmt.Fprintf(&b, "%-*s", width[i], cell)
			} else {
				b.WriteString(cell)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
		if j == 0 {
			var rule []string
			for _, n := range width {
				rule = append(rule, strings.Repeat("-", n))
			}
			fmt.Fprintln(w, strings.Join(rule, "-|-"))
		}
	}
}
