package mlflow

import (
	"container/heap"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Webhook delivery headers MLflow sends.
const (
	HeaderDeliveryID = "X-MLflow-Delivery-Id"
	HeaderTimestamp  = "X-MLflow-Timestamp"
	HeaderSignature  = "X-MLflow-Signature"
)

// Webhook verification failures. The receiver answers all of them with the
// same status and never says which part failed beyond these words.
var (
	ErrWebhookMissingHeader = errors.New("missing webhook delivery headers")
	ErrWebhookBadSignature  = errors.New("webhook signature does not match")
	ErrWebhookStale         = errors.New("webhook timestamp is outside the accepted window")
	ErrWebhookReplayed      = errors.New("webhook delivery was already received")
	// ErrWebhookBusy: the window of remembered deliveries is full of valid
	// ones; the delivery is refused so that the sender retries it later
	// (refusing is safe, forgetting one could let it be replayed).
	ErrWebhookBusy = errors.New("too many webhook deliveries in the replay window; retry later")
)

// WebhookVerifier checks MLflow webhook deliveries: the v1 signature
// (base64 HMAC-SHA256 with the shared secret over
// "<delivery id>.<timestamp>.<body>"), the timestamp's age, and that a
// delivery id is accepted once. It is safe for concurrent use.
type WebhookVerifier struct {
	secret []byte
	maxAge time.Duration
	clock  clock.PassiveClock

	mu      sync.Mutex
	seen    map[string]time.Time // delivery id -> when it may be forgotten
	expiry  expiryHeap           // the same ids, soonest forgotten first
	maxSeen int
}

// expiryHeap orders remembered delivery ids by when they may be forgotten,
// so that each delivery forgets the expired ones in O(log n) each instead of
// scanning every id it remembers.
type expiryHeap []seenID

type seenID struct {
	id    string
	until time.Time
}

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].until.Before(h[j].until) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(seenID)) }
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// NewWebhookVerifier verifies with secret; deliveries older (or further in
// the future) than maxAge are refused, and delivery ids are remembered for
// that long (at most maxSeen of them). A nil clk is the real clock.
func NewWebhookVerifier(secret []byte, maxAge time.Duration, maxSeen int, clk clock.PassiveClock) *WebhookVerifier {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &WebhookVerifier{secret: secret, maxAge: maxAge, clock: clk, seen: map[string]time.Time{}, maxSeen: maxSeen}
}

// Sign computes the X-MLflow-Signature value for a delivery, as MLflow does.
func Sign(secret []byte, deliveryID, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(deliveryID))
	mac.Write([]byte("."))
	mac.Write([]byte(timestamp))
	mac.Write([]byte("."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Verify checks one delivery. Only a delivery whose signature matches is
// remembered, so forged requests cannot use up delivery ids.
func (v *WebhookVerifier) Verify(h http.Header, body []byte) error {
	id, ts, sig := h.Get(HeaderDeliveryID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || ts == "" || sig == "" || len(id) > 128 {
		return ErrWebhookMissingHeader
	}
	want := Sign(v.secret, id, ts, body)
	ok := false
	// MLflow sends one "v1,<sig>"; accept a space-separated list, as rotating
	// senders do.
	for _, s := range strings.Fields(sig) {
		if hmac.Equal([]byte(s), []byte(want)) {
			ok = true
		}
	}
	if !ok {
		return ErrWebhookBadSignature
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not unix seconds", ErrWebhookStale, ts)
	}
	now := v.clock.Now()
	age := now.Sub(time.Unix(secs, 0))
	if age > v.maxAge || age < -v.maxAge {
		return fmt.Errorf("%w: %s old", ErrWebhookStale, age.Round(time.Second))
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	for v.expiry.Len() > 0 && now.After(v.expiry[0].until) {
		delete(v.seen, heap.Pop(&v.expiry).(seenID).id)
	}
	if _, dup := v.seen[id]; dup {
		return ErrWebhookReplayed
	}
	if len(v.seen) >= v.maxSeen {
		// Full of valid deliveries inside the window: refuse rather than
		// forget one that could then be replayed; the sender retries.
		return ErrWebhookBusy
	}
	// Remember it until its timestamp leaves the window.
	until := time.Unix(secs, 0).Add(v.maxAge)
	v.seen[id] = until
	heap.Push(&v.expiry, seenID{id: id, until: until})
	return nil
}

// WebhookEvent is an MLflow webhook payload.
type WebhookEvent struct {
	Entity    string      `json:"entity"`
	Action    string      `json:"action"`
	Timestamp string      `json:"timestamp,omitempty"`
	Data      WebhookData `json:"data"`
}

// WebhookData is the event's data; which fields are set depends on the event.
type WebhookData struct {
	Name        string            `json:"name"`
	Version     string            `json:"version,omitempty"`
	Alias       string            `json:"alias,omitempty"`
	Source      string            `json:"source,omitempty"`
	RunID       string            `json:"run_id,omitempty"`
	Key         string            `json:"key,omitempty"`
	Value       string            `json:"value,omitempty"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
}

// Event is "<entity>.<action>", e.g. model_version_alias.created.
func (e *WebhookEvent) Event() string { return e.Entity + "." + e.Action }

// ParseWebhookEvent decodes a payload. It needs an entity, an action and a
// model name: every event the operator reacts to names a registered model.
func ParseWebhookEvent(body []byte) (*WebhookEvent, error) {
	var e WebhookEvent
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, fmt.Errorf("invalid webhook payload: %w", err)
	}
	if e.Entity == "" || e.Action == "" {
		return nil, errors.New("invalid webhook payload: no entity or action")
	}
	if e.Data.Name == "" {
		return nil, errors.New("invalid webhook payload: no model name")
	}
	return &e, nil
}

// ModelEvents are the events after which a registered model's resolution may
// have changed.
var ModelEvents = map[string]bool{
	"model_version.created":       true,
	"model_version_alias.created": true,
	"model_version_alias.deleted": true,
	"model_version_tag.set":       true,
	"model_version_tag.deleted":   true,
	"registered_model.created":    true,
}
