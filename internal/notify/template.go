package notify

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"text/template"
	"time"
	"unicode/utf8"

	"sigs.k8s.io/yaml"

	"github.com/mlflow-operator/mlflow-operator/internal/text"
)

// Bounds of what a message carries.
const (
	// maxField bounds every field but the event's message.
	maxField = 256
	// maxEventMessage bounds the event's message (the reconciler's are
	// at most 1 KiB already).
	maxEventMessage = 1024
	// maxTitle and maxText bound a rendered title and message.
	maxTitle = 256
	maxText  = 3000
	// maxRender stops a template that writes without end.
	maxRender = 64 << 10
)

// templateSpec is template.<name>: Go text/template texts over the
// fields of docs/notifications.md, and per-service options.
type templateSpec struct {
	Title   string `json:"title,omitempty"`
	Message string `json:"message"`
	Slack   struct {
		// Color of a Slack attachment: #rrggbb, good, warning or danger.
		Color string `json:"color,omitempty"`
	} `json:"slack,omitempty"`
	Teams struct {
		// ThemeColor of a MessageCard: #rrggbb.
		ThemeColor string `json:"themeColor,omitempty"`
	} `json:"teams,omitempty"`
}

type messageTemplate struct {
	name           string
	title, message *template.Template
	slackColor     string
	teamsColor     string
}

var (
	hexColor   = regexp.MustCompile(`^#?[0-9A-Fa-f]{6}$`)
	slackNamed = map[string]bool{"good": true, "warning": true, "danger": true}
)

func parseTemplate(name, v string) (*messageTemplate, error) {
	if !validName(name) {
		return nil, fmt.Errorf("a template's name is a DNS label of at most 40 characters")
	}
	var spec templateSpec
	if err := yaml.UnmarshalStrict([]byte(v), &spec); err != nil {
		return nil, err
	}
	return newTemplate(name, spec)
}

func newTemplate(name string, spec templateSpec) (*messageTemplate, error) {
	if strings.TrimSpace(spec.Message) == "" {
		return nil, fmt.Errorf("message is empty")
	}
	if c := spec.Slack.Color; c != "" && !hexColor.MatchString(c) && !slackNamed[c] {
		return nil, fmt.Errorf("slack.color is #rrggbb, good, warning or danger")
	}
	if c := spec.Teams.ThemeColor; c != "" && !hexColor.MatchString(c) {
		return nil, fmt.Errorf("teams.themeColor is #rrggbb")
	}
	t := &messageTemplate{name: name, slackColor: spec.Slack.Color, teamsColor: spec.Teams.ThemeColor}
	var err error
	if t.title, err = template.New("title").Option("missingkey=error").Parse(spec.Title); err != nil {
		return nil, fmt.Errorf("title: %w", err)
	}
	if t.message, err = template.New("message").Option("missingkey=error").Parse(spec.Message); err != nil {
		return nil, fmt.Errorf("message: %w", err)
	}
	// A field the template names that does not exist fails now, not at
	// the first event.
	sample := Fields{Trigger: TriggerPromoted, Type: "Normal", Reason: "Promoted", Action: "Promote", Message: "m",
		Namespace: "ns", Name: "n", UID: "u", Model: "m", Version: "2", Image: "i", ServingVersion: "1",
		LastGoodVersion: "1", Time: time.Unix(0, 0)}
	for _, kind := range []string{"slack", "teams", "webhook"} {
		if _, err := t.render(kind, sample); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// limitedWriter fails once more than n bytes were written.
type limitedWriter struct {
	b strings.Builder
	n int
}

var errTooLong = errors.New("the template writes more than 64 KiB")

func (w *limitedWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > w.n {
		return 0, errTooLong
	}
	return w.b.Write(p)
}

func execute(t *template.Template, data map[string]string) (string, error) {
	w := &limitedWriter{n: maxRender}
	if err := t.Execute(w, data); err != nil {
		return "", err
	}
	return w.b.String(), nil
}

// render renders the template for a service kind: the fields are escaped
// for that service's markup (the template's own text is the
// administrator's and stays as written), and the result is bounded.
func (t *messageTemplate) render(kind string, f Fields) (message, error) {
	data := f.data(escaperFor(kind))
	title, err := execute(t.title, data)
	if err != nil {
		return message{}, fmt.Errorf("title: %w", err)
	}
	msg, err := execute(t.message, data)
	if err != nil {
		return message{}, fmt.Errorf("message: %w", err)
	}
	m := message{template: t.name, title: text.Shorten(strings.TrimSpace(title), maxTitle), text: text.Shorten(strings.TrimSpace(msg), maxText)}
	switch kind {
	case "slack":
		m.color = t.slackColor
	case "teams":
		m.color = t.teamsColor
	}
	return m, nil
}

// data is the template's view of the fields, each escaped.
func (f Fields) data(esc func(string) string) map[string]string {
	return map[string]string{
		"trigger": esc(f.Trigger), "type": esc(f.Type), "reason": esc(f.Reason), "action": esc(f.Action),
		"message": esc(f.Message), "namespace": esc(f.Namespace), "name": esc(f.Name), "uid": esc(f.UID),
		"model": esc(f.Model), "version": esc(f.Version), "image": esc(f.Image),
		"servingVersion": esc(f.ServingVersion), "lastGoodVersion": esc(f.LastGoodVersion),
		"time": f.Time.UTC().Format(time.RFC3339),
	}
}

// bounded cuts every field to its bound and drops control characters
// (line breaks and tabs stay in the message).
func (f Fields) bounded() Fields {
	clean := func(s string, n int, keepLines bool) string {
		s = strings.Map(func(r rune) rune {
			if r == utf8.RuneError || (r < 0x20 && !(keepLines && (r == '\n' || r == '\t'))) || (r >= 0x7f && r < 0xa0) ||
				r == '\u2028' || r == '\u2029' || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') {
				return -1
			}
			return r
		}, s)
		return text.Shorten(s, n)
	}
	for _, p := range []*string{&f.Trigger, &f.Type, &f.Reason, &f.Action, &f.Namespace, &f.Name, &f.UID,
		&f.Model, &f.Version, &f.Image, &f.ServingVersion, &f.LastGoodVersion} {
		*p = clean(*p, maxField, false)
	}
	f.Message = clean(f.Message, maxEventMessage, true)
	return f
}

func cutBytes(s string, n int) string { return text.Shorten(s, n) }

// slackEscaper: Slack's mrkdwn treats &, < and > as control characters
// (<!channel>, <https://...|a link>); escaped, a field cannot ping a
// channel or add a link.
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// teamsEscaper: Teams renders Markdown (and, in MessageCards, some HTML):
// a field cannot add a link, an image, emphasis or a heading.
var teamsEscaper = strings.NewReplacer(
	"&", "&amp;", "<", "&lt;", ">", "&gt;",
	`\`, `\\`, "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`, "(", `\(`, ")", `\)`,
	"`", "\\`", "~", `\~`, "#", `\#`, "|", `\|`, "!", `\!`,
)

func escaperFor(kind string) func(string) string {
	switch kind {
	case "slack":
		return slackEscaper.Replace
	case "teams":
		return teamsEscaper.Replace
	}
	// Webhooks: the body is JSON, encoded by encoding/json.
	return func(s string) string { return s }
}

// The built-in templates, one per trigger (template.<trigger without
// "on-">); a ConfigMap entry of the same name replaces one.
func builtinTemplateOf(trigger string) string { return strings.TrimPrefix(trigger, "on-") }

var builtinTemplates = sync.OnceValue(func() map[string]*messageTemplate {
	specs := map[string]templateSpec{
		"promoted": {Title: "{{.namespace}}/{{.name}}: promoting version {{.version}} of {{.model}}",
			Message: "{{.message}}"},
		"rollout-complete": {Title: "{{.namespace}}/{{.name}}: version {{.version}} of {{.model}} serves",
			Message: "{{.message}}"},
		"rolled-back": {Title: "{{.namespace}}/{{.name}}: rolled back to version {{.servingVersion}} of {{.model}}",
			Message: "{{.message}}"},
		"version-held": {Title: "{{.namespace}}/{{.name}}: version {{.version}} of {{.model}} held back",
			Message: "{{.message}}"},
		"version-failed": {Title: "{{.namespace}}/{{.name}}: version {{.version}} of {{.model}} failed",
			Message: "{{.message}}"},
		"build-failed": {Title: "{{.namespace}}/{{.name}}: image of version {{.version}} of {{.model}} not built",
			Message: "{{.message}}"},
		"awaiting-approval": {Title: "{{.namespace}}/{{.name}}: version {{.version}} of {{.model}} waits for approval",
			Message: "{{.message}}"},
	}
	colors := map[string]string{"promoted": "#439fe0", "rollout-complete": "#2eb886", "rolled-back": "#e01e5a",
		"version-held": "#daa038", "version-failed": "#e01e5a", "build-failed": "#e01e5a", "awaiting-approval": "#daa038"}
	out := map[string]*messageTemplate{}
	for name, spec := range specs {
		spec.Slack.Color, spec.Teams.ThemeColor = colors[name], colors[name]
		t, err := newTemplate(name, spec)
		if err != nil {
			panic(fmt.Sprintf("built-in template %s: %v", name, err))
		}
		out[name] = t
	}
	return out
})
