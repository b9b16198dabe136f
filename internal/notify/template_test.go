package notify

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestRenderEscapesFieldsPerService(t *testing.T) {
	tmpl, err := parseTemplate("t", "title: '*{{.name}}* in <https://grafana.example/d|{{.namespace}}>'\nmessage: '{{.model}}: {{.message}}'")
	if err != nil {
		t.Fatal(err)
	}
	f := Fields{Namespace: "team-a", Name: "iris", Model: "<!here> [x](https://evil.example) & *b*",
		Message: "failed: <@U123> ![img](https://evil.example/i.png) # h", Time: time.Unix(0, 0)}
	for _, tc := range []struct{ kind, title, text string }{
		// The template's own markup stays; the fields cannot add any.
		{"slack", "*iris* in <https://grafana.example/d|team-a>",
			"&lt;!here&gt; [x](https://evil.example) &amp; *b*: failed: &lt;@U123&gt; ![img](https://evil.example/i.png) # h"},
		{"teams", "*iris* in <https://grafana.example/d|team-a>",
			`&lt;\!here&gt; \[x\]\(https://evil.example\) &amp; \*b\*: failed: &lt;@U123&gt; \!\[img\]\(https://evil.example/i.png\) \# h`},
		// JSON: encoding/json escapes.
		{"webhook", "*iris* in <https://grafana.example/d|team-a>",
			"<!here> [x](https://evil.example) & *b*: failed: <@U123> ![img](https://evil.example/i.png) # h"},
	} {
		m, err := tmpl.render(tc.kind, f)
		if err != nil {
			t.Fatal(err)
		}
		if m.title != tc.title || m.text != tc.text {
			t.Errorf("%s:\n title %q\n  want %q\n text  %q\n  want %q", tc.kind, m.title, tc.title, m.text, tc.text)
		}
	}
}

func TestFieldsAreBounded(t *testing.T) {
	f := Fields{
		Name:    "iris\x1b[31m\u202eevil",
		Model:   strings.Repeat("é", 300),
		Message: "line one\nline two\ttabbed\x00\x07" + strings.Repeat("x", 2000),
	}.bounded()
	if f.Name != "iris[31mevil" {
		t.Errorf("name %q", f.Name)
	}
	if len(f.Model) > maxField || !utf8.ValidString(f.Model) {
		t.Errorf("model of %d bytes, valid UTF-8 %v", len(f.Model), utf8.ValidString(f.Model))
	}
	if len(f.Message) > maxEventMessage || !strings.HasPrefix(f.Message, "line one\nline two\ttabbedxxx") {
		t.Errorf("message %q...", f.Message[:40])
	}
}

func TestRenderedMessagesAreBounded(t *testing.T) {
	tmpl, err := parseTemplate("t", "title: '{{.message}}{{.message}}'\nmessage: '{{range 10}}{{$.message}}{{end}}'")
	if err != nil {
		t.Fatal(err)
	}
	m, err := tmpl.render("teams", Fields{Message: strings.Repeat("*", maxEventMessage)})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.title) > maxTitle || len(m.text) > maxText {
		t.Errorf("title of %d bytes, text of %d", len(m.title), len(m.text))
	}
}

func TestBuiltinTemplatesCoverEveryTrigger(t *testing.T) {
	c := Parse(nil, nil)
	for _, trig := range Triggers {
		names := c.triggers[trig]
		if len(names) != 1 || c.templates[names[0]] == nil {
			t.Errorf("%s sends %v", trig, names)
		}
	}
	if len(c.Problems) != 0 || len(c.services) != 0 {
		t.Errorf("an empty ConfigMap: problems %v, services %v", c.Problems, c.Services())
	}
	// A ConfigMap entry replaces a built-in template.
	c = Parse(map[string]string{"template.promoted": "message: mine"}, nil)
	m, err := c.templates["promoted"].render("slack", Fields{})
	if err != nil || m.text != "mine" || m.title != "" {
		t.Errorf("replaced template renders %+v, %v", m, err)
	}
}
