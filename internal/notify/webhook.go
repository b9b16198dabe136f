package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Headers of a generic webhook delivery.
const (
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256 of the body with
	// the webhook's secret.
	HeaderSignature = "X-MLflow-Operator-Signature"
	// HeaderTimestamp is when the delivery was sent, in Unix seconds; the
	// signed body holds the same value.
	HeaderTimestamp = "X-MLflow-Operator-Timestamp"
	// HeaderDelivery identifies a delivery; its retries keep it.
	HeaderDelivery = "X-MLflow-Operator-Delivery"
)

// webhookSpec is service.webhook.<name>: a JSON POST signed with an HMAC.
type webhookSpec struct {
	URL string `json:"url"`
	// Secret is the HMAC-SHA256 key ($key of the Secret).
	Secret  string          `json:"secret"`
	Headers []webhookHeader `json:"headers,omitempty"`
}

type webhookHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type webhook struct {
	name    string
	url     *url.URL
	secret  []byte
	headers http.Header
}

// reservedHeaders may not be set by the configuration (canonical keys).
var reservedHeaders = func() map[string]bool {
	m := map[string]bool{}
	for _, h := range []string{"Host", "Content-Type", "Content-Length", "Transfer-Encoding", "Connection", "User-Agent",
		HeaderSignature, HeaderTimestamp, HeaderDelivery} {
		m[textproto.CanonicalMIMEHeaderKey(h)] = true
	}
	return m
}()

func parseWebhook(name, v string, secret map[string][]byte) (service, error) {
	var spec webhookSpec
	if err := yaml.UnmarshalStrict([]byte(v), &spec); err != nil {
		return nil, err
	}
	raw, err := expand("url", spec.URL, secret)
	if err != nil {
		return nil, err
	}
	u, err := endpoint("url", raw)
	if err != nil {
		return nil, err
	}
	key, err := fromSecret("secret", spec.Secret, secret)
	if err != nil {
		return nil, err
	}
	w := &webhook{name: name, url: u, secret: []byte(key), headers: http.Header{}}
	for _, h := range spec.Headers {
		canonical := textproto.CanonicalMIMEHeaderKey(h.Name)
		if h.Name == "" || strings.ContainsAny(h.Name, " :\r\n") || reservedHeaders[canonical] {
			return nil, fmt.Errorf("header %q may not be set", cutForLog(h.Name))
		}
		val, err := expand("header "+canonical, h.Value, secret)
		if err != nil {
			return nil, err
		}
		if strings.ContainsAny(val, "\r\n") {
			return nil, fmt.Errorf("header %s: a value is one line", canonical)
		}
		w.headers.Add(canonical, val)
	}
	return w, nil
}

func (w *webhook) kind() string { return "webhook" }

func (w *webhook) recipient(r string) (string, error) {
	if r == "" {
		return "", nil
	}
	return r, validRecipient(r)
}

// WebhookBody is the JSON a generic webhook receives.
type WebhookBody struct {
	// ID identifies the delivery (the same in its retries).
	ID string `json:"id"`
	// Timestamp is when this attempt was sent, Unix seconds; the
	// X-MLflow-Operator-Timestamp header repeats it.
	Timestamp int64  `json:"timestamp"`
	Trigger   string `json:"trigger"`
	// Template is the template the title and message came from.
	Template string `json:"template"`
	// Recipient is the subscription's recipient, if it named one.
	Recipient       string                `json:"recipient,omitempty"`
	Title           string                `json:"title,omitempty"`
	Message         string                `json:"message"`
	Event           WebhookEvent          `json:"event"`
	ModelDeployment WebhookModelReference `json:"modelDeployment"`
	Model           WebhookModel          `json:"model"`
}

// WebhookEvent is the event that fired the trigger.
type WebhookEvent struct {
	Type    string    `json:"type"`
	Reason  string    `json:"reason"`
	Action  string    `json:"action"`
	Message string    `json:"message"`
	Time    time.Time `json:"time"`
}

// WebhookModelReference names the ModelDeployment.
type WebhookModelReference struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
}

// WebhookModel is the MLflow model and its versions.
type WebhookModel struct {
	Name            string `json:"name"`
	Version         string `json:"version,omitempty"`
	Image           string `json:"image,omitempty"`
	ServingVersion  string `json:"servingVersion,omitempty"`
	LastGoodVersion string `json:"lastGoodVersion,omitempty"`
}

// Sign is the signature header's value for body: "sha256=" and the hex
// HMAC-SHA256 of body with secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func (w *webhook) request(ctx context.Context, d *delivery, now time.Time) (*http.Request, error) {
	f := d.fields
	b := WebhookBody{
		ID: d.id, Timestamp: now.Unix(), Trigger: f.Trigger, Template: d.msg.template, Recipient: d.recipient,
		Title: d.msg.title, Message: d.msg.text,
		Event:           WebhookEvent{Type: f.Type, Reason: f.Reason, Action: f.Action, Message: f.Message, Time: f.Time},
		ModelDeployment: WebhookModelReference{Namespace: f.Namespace, Name: f.Name, UID: f.UID},
		Model: WebhookModel{Name: f.Model, Version: f.Version, Image: f.Image,
			ServingVersion: f.ServingVersion, LastGoodVersion: f.LastGoodVersion},
	}
	req, body, err := jsonRequest(ctx, w.url, b)
	if err != nil {
		return nil, err
	}
	for k, vs := range w.headers {
		req.Header[k] = append([]string(nil), vs...)
	}
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(b.Timestamp, 10))
	req.Header.Set(HeaderDelivery, d.id)
	req.Header.Set(HeaderSignature, Sign(w.secret, body))
	return req, nil
}

func (w *webhook) check(status int, header http.Header, body []byte) error {
	return checkStatus(status, header, body)
}
