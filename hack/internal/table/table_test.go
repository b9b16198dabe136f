package table

import (
	"bytes"
	"testing"
)

func TestPrint(t *testing.T) {
	var b bytes.Buffer
	Print(&b, [][]string{{"step", "median"}, {"candidate pod Ready", "+10.4 s"}, {"x", ""}})
	want := "step                | median\n" +
		"--------------------|--------\n" +
		"candidate pod Ready | +10.4 s\n" +
		"x                   |\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
