package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

const userAgent = "mlflow-operator-notifications"

// message is a rendered template, for one service.
type message struct {
	template string
	title    string
	text     string
	color    string
}

// service is one configured receiver kind.
type service interface {
	// kind is slack, teams or webhook.
	kind() string
	// recipient checks a subscription's recipient and gives its canonical
	// form; empty is allowed only where the service needs none.
	recipient(r string) (string, error)
	// request builds the HTTP request of one delivery attempt.
	request(ctx context.Context, d *delivery, now time.Time) (*http.Request, error)
	// check reads the answer: nil when delivered.
	check(status int, header http.Header, body []byte) error
}

// deliveryError is a failed attempt: retryable or not, and how long the
// receiver asked to wait.
type deliveryError struct {
	msg        string
	retryable  bool
	retryAfter time.Duration
}

func (e *deliveryError) Error() string { return e.msg }

// checkStatus is the common reading of an HTTP answer: 2xx is delivered;
// 408, 429 and 5xx are retried (after Retry-After, when given); any other
// answer is not.
func checkStatus(status int, header http.Header, body []byte) error {
	if status >= 200 && status < 300 {
		return nil
	}
	e := &deliveryError{msg: fmt.Sprintf("answered %d %s", status, http.StatusText(status))}
	if b := printable(body, 200); b != "" {
		e.msg += ": " + b
	}
	if status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500 {
		e.retryable = true
		if s, err := strconv.Atoi(strings.TrimSpace(header.Get("Retry-After"))); err == nil && s > 0 {
			e.retryAfter = time.Duration(s) * time.Second
		}
	}
	return e
}

// printable is a receiver's answer fit for a log line: control characters
// dropped, at most n bytes.
func printable(b []byte, n int) string {
	s := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, string(b))
	return cutBytes(strings.TrimSpace(s), n)
}

func jsonRequest(ctx context.Context, u *url.URL, payload any) (*http.Request, []byte, error) {
	// Not HTML-escaped: receivers read JSON, and the signature covers
	// these exact bytes.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(payload); err != nil {
		return nil, nil, err
	}
	body := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", userAgent)
	return req, body, nil
}

// --- Slack ---

// slackSpec is service.slack: a bot token (chat.postMessage to the
// subscribed channel) or incoming webhooks, one per recipient name.
type slackSpec struct {
	Token string `json:"token,omitempty"`
	// APIURL is Slack's Web API; https://slack.com/api when empty.
	APIURL string `json:"apiURL,omitempty"`
	// Channels, when set, are the only channels a token may post to.
	Channels      []string          `json:"channels,omitempty"`
	RecipientURLs map[string]string `json:"recipientURLs,omitempty"`
}

type slack struct {
	token    string
	api      *url.URL
	channels map[string]bool
	hooks    map[string]*url.URL
}

func parseSlack(v string, secret map[string][]byte) (service, error) {
	var spec slackSpec
	if err := yaml.UnmarshalStrict([]byte(v), &spec); err != nil {
		return nil, err
	}
	if (spec.Token == "") == (len(spec.RecipientURLs) == 0) {
		return nil, fmt.Errorf("set either token (chat.postMessage) or recipientURLs (incoming webhooks)")
	}
	s := &slack{}
	if len(spec.RecipientURLs) > 0 {
		hooks, err := recipientURLs("recipientURLs", spec.RecipientURLs, secret)
		if err != nil {
			return nil, err
		}
		s.hooks = hooks
		return s, nil
	}
	token, err := fromSecret("token", spec.Token, secret)
	if err != nil {
		return nil, err
	}
	api := "https://slack.com/api"
	if spec.APIURL != "" {
		api = spec.APIURL
	}
	u, err := endpoint("apiURL", api)
	if err != nil {
		return nil, err
	}
	s.token, s.api = token, u.JoinPath("chat.postMessage")
	if len(spec.Channels) > 0 {
		s.channels = map[string]bool{}
		for _, ch := range spec.Channels {
			if err := validRecipient(ch); err != nil {
				return nil, fmt.Errorf("channels: %v", err)
			}
			s.channels[strings.TrimPrefix(ch, "#")] = true
		}
	}
	return s, nil
}

func (s *slack) kind() string { return "slack" }

func (s *slack) recipient(r string) (string, error) {
	if r == "" {
		return "", fmt.Errorf("slack needs a channel")
	}
	if err := validRecipient(r); err != nil {
		return "", err
	}
	r = strings.TrimPrefix(r, "#")
	if s.hooks != nil {
		if s.hooks[r] == nil {
			return "", fmt.Errorf("slack has no webhook for recipient %q", r)
		}
	} else if s.channels != nil && !s.channels[r] {
		return "", fmt.Errorf("slack may not post to channel %q", r)
	}
	return r, nil
}

// slackPayload is what chat.postMessage and incoming webhooks take. Links
// are not unfurled and names are not linked: a message cannot ping
// anyone.
type slackPayload struct {
	Channel     string            `json:"channel,omitempty"`
	Text        string            `json:"text"`
	Attachments []slackAttachment `json:"attachments,omitempty"`
	UnfurlLinks bool              `json:"unfurl_links"`
	UnfurlMedia bool              `json:"unfurl_media"`
}

type slackAttachment struct {
	Color string `json:"color"`
	Text  string `json:"text"`
}

func (s *slack) request(ctx context.Context, d *delivery, _ time.Time) (*http.Request, error) {
	p := slackPayload{Text: d.msg.text}
	if d.msg.title != "" {
		p.Text = "*" + d.msg.title + "*\n" + d.msg.text
	}
	if d.msg.color != "" && d.msg.title != "" {
		p.Text = "*" + d.msg.title + "*"
		p.Attachments = []slackAttachment{{Color: d.msg.color, Text: d.msg.text}}
	}
	u := s.api
	if s.hooks != nil {
		u = s.hooks[d.recipient]
	} else {
		p.Channel = d.recipient
	}
	req, _, err := jsonRequest(ctx, u, p)
	if err != nil {
		return nil, err
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	return req, nil
}

// slackRetryable are chat.postMessage errors worth another try.
var slackRetryable = map[string]bool{"ratelimited": true, "service_unavailable": true, "fatal_error": true,
	"internal_error": true, "request_timeout": true}

func (s *slack) check(status int, header http.Header, body []byte) error {
	if err := checkStatus(status, header, body); err != nil || s.hooks != nil {
		return err
	}
	// chat.postMessage answers 200 with {"ok": false, "error": "..."}.
	var answer struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return &deliveryError{msg: "slack answered something other than JSON", retryable: true}
	}
	if !answer.OK {
		return &deliveryError{msg: "slack answered " + printable([]byte(answer.Error), 100), retryable: slackRetryable[answer.Error]}
	}
	return nil
}

// --- Microsoft Teams ---

// teamsSpec is service.teams: incoming webhooks (a Workflows webhook or an
// Office 365 connector), one per recipient name.
type teamsSpec struct {
	RecipientURLs map[string]string `json:"recipientURLs"`
	// Format is adaptiveCard (the default; Workflows take it) or
	// messageCard (Office 365 connectors).
	Format string `json:"format,omitempty"`
}

type teams struct {
	hooks       map[string]*url.URL
	messageCard bool
}

func parseTeams(v string, secret map[string][]byte) (service, error) {
	var spec teamsSpec
	if err := yaml.UnmarshalStrict([]byte(v), &spec); err != nil {
		return nil, err
	}
	if len(spec.RecipientURLs) == 0 {
		return nil, fmt.Errorf("recipientURLs is empty")
	}
	if spec.Format != "" && spec.Format != "adaptiveCard" && spec.Format != "messageCard" {
		return nil, fmt.Errorf("format is adaptiveCard or messageCard")
	}
	hooks, err := recipientURLs("recipientURLs", spec.RecipientURLs, secret)
	if err != nil {
		return nil, err
	}
	return &teams{hooks: hooks, messageCard: spec.Format == "messageCard"}, nil
}

func (t *teams) kind() string { return "teams" }

func (t *teams) recipient(r string) (string, error) {
	if err := validRecipient(r); err != nil {
		return "", err
	}
	r = strings.TrimPrefix(r, "#")
	if t.hooks[r] == nil {
		return "", fmt.Errorf("teams has no webhook for recipient %q", r)
	}
	return r, nil
}

type textBlock struct {
	Type   string `json:"type"`
	Text   string `json:"text"`
	Weight string `json:"weight,omitempty"`
	Size   string `json:"size,omitempty"`
	Wrap   bool   `json:"wrap"`
}

func (t *teams) request(ctx context.Context, d *delivery, _ time.Time) (*http.Request, error) {
	var payload any
	if t.messageCard {
		color := strings.TrimPrefix(d.msg.color, "#")
		payload = map[string]any{"@type": "MessageCard", "@context": "https://schema.org/extensions",
			"summary": firstNonEmpty(d.msg.title, d.msg.template), "title": d.msg.title, "text": d.msg.text, "themeColor": color}
	} else {
		var body []textBlock
		if d.msg.title != "" {
			body = append(body, textBlock{Type: "TextBlock", Text: d.msg.title, Weight: "Bolder", Size: "Medium", Wrap: true})
		}
		body = append(body, textBlock{Type: "TextBlock", Text: d.msg.text, Wrap: true})
		payload = map[string]any{"type": "message", "attachments": []any{map[string]any{
			"contentType": "application/vnd.microsoft.card.adaptive",
			"content": map[string]any{"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
				"type": "AdaptiveCard", "version": "1.4", "body": body},
		}}}
	}
	req, _, err := jsonRequest(ctx, t.hooks[d.recipient], payload)
	return req, err
}

func (t *teams) check(status int, header http.Header, body []byte) error {
	return checkStatus(status, header, body)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
