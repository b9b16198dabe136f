package notify

import (
	"crypto/hmac"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// Real HTTP servers stand in for Slack, Teams and a generic webhook
// receiver: these tests check the exact requests each gets.

// received is one request a receiver got.
type received struct {
	method, path string
	header       http.Header
	body         string
}

// receiver is an httptest server that records requests and answers with
// answer (200 "ok" when nil).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(w http.ResponseWriter, n int)
}

func newReceiver(t *testing.T, answer func(w http.ResponseWriter, n int)) *receiver {
	r := &receiver{answer: answer}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{method: req.Method, path: req.URL.Path, header: req.Header.Clone(), body: string(body)})
		n := len(r.got)
		r.mu.Unlock()
		if r.answer != nil {
			r.answer(w, n)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// one waits for exactly one request and returns it.
func (r *receiver) one(t *testing.T) received {
	t.Helper()
	waitFor(t, "a request at "+r.URL, func() bool { return len(r.requests()) > 0 })
	time.Sleep(50 * time.Millisecond)
	got := r.requests()
	if len(got) != 1 {
		t.Fatalf("%d requests, want 1: %+v", len(got), got)
	}
	return got[0]
}

var now = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func fakeClock(o *Options) { o.Clock = clocktesting.NewFakeClock(now) }

func TestSlackChatPostMessage(t *testing.T) {
	slack := newReceiver(t, func(w http.ResponseWriter, _ int) {
		_, _ = io.WriteString(w, `{"ok":true,"channel":"C1","ts":"1.2"}`)
	})
	cfg := mustParse(t, map[string]string{
		"service.slack": "token: $slack-token\napiURL: " + slack.URL + "/api\nchannels: [ml-alerts, ml-deploys]\n",
	}, map[string][]byte{"slack-token": []byte("xoxb-1234-secret\n")})
	n := start(t, staticSource{cfg: cfg}, fakeClock)

	md := modelDeployment(map[string]string{SubscribePrefix + "on-promoted.slack": "#ml-alerts"})
	md.Spec.Model.Name = "iris <!channel> & *friends*"
	n.Notify(md, "Normal", "Promoted", "Promote", "promoting <https://evil.example|click here>")

	got := slack.one(t)
	if got.method != http.MethodPost || got.path != "/api/chat.postMessage" {
		t.Errorf("%s %s, want POST /api/chat.postMessage", got.method, got.path)
	}
	if a := got.header.Get("Authorization"); a != "Bearer xoxb-1234-secret" {
		t.Errorf("Authorization %q", a)
	}
	if ct := got.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	// The tenant's model name and the event's message are escaped: no
	// channel ping, no link.
	want := `{"channel":"ml-alerts","text":"*team-a/iris: promoting version 2 of iris &lt;!channel&gt; &amp; *friends**",` +
		`"attachments":[{"color":"#439fe0","text":"promoting &lt;https://evil.example|click here&gt;"}],"unfurl_links":false,"unfurl_media":false}`
	if got.body != want {
		t.Errorf("body\n got %s\nwant %s", got.body, want)
	}
	waitFor(t, "counted as sent", func() bool { return n.sent("slack", TriggerPromoted) == 1 })
}

func TestSlackIncomingWebhookWithTemplate(t *testing.T) {
	slack := newReceiver(t, nil)
	cfg := mustParse(t, map[string]string{
		"service.slack":               "recipientURLs:\n  ml-alerts: $slack-ml-alerts\n",
		"template.short":              "message: \"{{.model}} v{{.version}} serves in {{.namespace}} (was v{{.lastGoodVersion}}) at {{.time}}\"\n",
		"trigger.on-rollout-complete": "- send: [short]\n",
	}, map[string][]byte{"slack-ml-alerts": []byte(slack.URL + "/services/T0/B0/secretpart")})
	n := start(t, staticSource{cfg: cfg}, fakeClock)

	n.Notify(modelDeployment(map[string]string{SubscribePrefix + "on-rollout-complete.slack": "ml-alerts"}),
		"Normal", "RolloutComplete", "Rollout", "version 2 serves")
	got := slack.one(t)
	if got.path != "/services/T0/B0/secretpart" || got.header.Get("Authorization") != "" {
		t.Errorf("%s with Authorization %q", got.path, got.header.Get("Authorization"))
	}
	want := `{"text":"iris v2 serves in team-a (was v1) at 2026-03-14T15:09:26Z","unfurl_links":false,"unfurl_media":false}`
	if got.body != want {
		t.Errorf("body\n got %s\nwant %s", got.body, want)
	}
}

func TestTeamsAdaptiveCardAndMessageCard(t *testing.T) {
	for _, tc := range []struct {
		format, want string
	}{
		{"", `{"attachments":[{"content":{"$schema":"http://adaptivecards.io/schemas/adaptive-card.json","body":[` +
			`{"type":"TextBlock","text":"team-a/iris: rolled back to version 1 of iris\\_\\[x\\]\\(http://e\\)","weight":"Bolder","size":"Medium","wrap":true},` +
			`{"type":"TextBlock","text":"rolled back from version 2 to version 1: pods failing","wrap":true}],` +
			`"type":"AdaptiveCard","version":"1.4"},"contentType":"application/vnd.microsoft.card.adaptive"}],"type":"message"}`},
		{"messageCard", `{"@context":"https://schema.org/extensions","@type":"MessageCard",` +
			`"summary":"team-a/iris: rolled back to version 1 of iris\\_\\[x\\]\\(http://e\\)",` +
			`"text":"rolled back from version 2 to version 1: pods failing","themeColor":"e01e5a",` +
			`"title":"team-a/iris: rolled back to version 1 of iris\\_\\[x\\]\\(http://e\\)"}`},
	} {
		t.Run("format="+tc.format, func(t *testing.T) {
			teams := newReceiver(t, func(w http.ResponseWriter, _ int) { w.WriteHeader(http.StatusAccepted) })
			spec := "recipientURLs:\n  ml-team: $teams-ml-team\n"
			if tc.format != "" {
				spec += "format: " + tc.format + "\n"
			}
			cfg := mustParse(t, map[string]string{"service.teams": spec},
				map[string][]byte{"teams-ml-team": []byte(teams.URL + "/workflows/abc/triggers/manual/paths/invoke?sig=secret")})
			n := start(t, staticSource{cfg: cfg}, fakeClock)

			md := modelDeployment(map[string]string{SubscribePrefix + "on-rolled-back.teams": "ml-team"})
			md.Spec.Model.Name = "iris_[x](http://e)"
			md.Status.Serving.Version = "1"
			n.Notify(md, "Warning", "RolledBack", "Rollback", "rolled back from version 2 to version 1: pods failing")
			got := teams.one(t)
			if got.path != "/workflows/abc/triggers/manual/paths/invoke" {
				t.Errorf("path %s", got.path)
			}
			if got.body != tc.want {
				t.Errorf("body\n got %s\nwant %s", got.body, tc.want)
			}
			waitFor(t, "counted as sent", func() bool { return n.sent("teams", TriggerRolledBack) == 1 })
		})
	}
}

func TestWebhookSignedBody(t *testing.T) {
	hook := newReceiver(t, nil)
	cfg := mustParse(t, map[string]string{
		"service.webhook.audit": "url: " + hook.URL + "/hooks/mlflow\nsecret: $audit-hmac\nheaders:\n- name: Authorization\n  value: Bearer $audit-token\n- name: x-team\n  value: platform\n",
	}, map[string][]byte{"audit-hmac": []byte("s3cr3t-hmac-key"), "audit-token": []byte("t0ken")})
	n := start(t, staticSource{cfg: cfg}, fakeClock)

	md := modelDeployment(map[string]string{SubscribePrefix + "on-build-failed.audit": ""})
	n.Notify(md, "Warning", "BuildFailed", "Build", "image of version 2: push refused: \"denied\"\nretrying")
	got := hook.one(t)

	id := got.header.Get(HeaderDelivery)
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
		t.Fatalf("delivery ID %q", id)
	}
	if ts := got.header.Get(HeaderTimestamp); ts != strconv.FormatInt(now.Unix(), 10) {
		t.Errorf("timestamp header %q", ts)
	}
	want := fmt.Sprintf(`{"id":"%s","timestamp":%d,"trigger":"on-build-failed","template":"build-failed",`+
		`"title":"team-a/iris: image of version 2 of iris not built","message":"image of version 2: push refused: \"denied\"\nretrying",`+
		`"event":{"type":"Warning","reason":"BuildFailed","action":"Build","message":"image of version 2: push refused: \"denied\"\nretrying","time":"2026-03-14T15:09:26Z"},`+
		`"modelDeployment":{"namespace":"team-a","name":"iris","uid":"0b7c9a52-uid"},`+
		`"model":{"name":"iris","version":"2","image":"registry.example.com/models/iris@sha256:22","servingVersion":"1","lastGoodVersion":"1"}}`,
		id, now.Unix())
	if got.body != want {
		t.Errorf("body\n got %s\nwant %s", got.body, want)
	}
	// What a receiver checks: the HMAC of the exact body.
	sig := got.header.Get(HeaderSignature)
	if !hmac.Equal([]byte(sig), []byte(Sign([]byte("s3cr3t-hmac-key"), []byte(got.body)))) {
		t.Errorf("signature %s does not match the body", sig)
	}
	if !strings.HasPrefix(sig, "sha256=") || len(sig) != len("sha256=")+64 {
		t.Errorf("signature %q", sig)
	}
	if got.header.Get("Authorization") != "Bearer t0ken" || got.header.Get("X-Team") != "platform" {
		t.Errorf("configured headers: %v", got.header)
	}
	if got.header.Get("User-Agent") != userAgent {
		t.Errorf("User-Agent %q", got.header.Get("User-Agent"))
	}
}

func TestSignKnownAnswer(t *testing.T) {
	// RFC 4231 test case 2.
	got := Sign([]byte("Jefe"), []byte("what do ya want for nothing?"))
	if want := "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestOneEventManyReceivers(t *testing.T) {
	slack := newReceiver(t, nil)
	teams := newReceiver(t, nil)
	hook := newReceiver(t, nil)
	cfg := mustParse(t, map[string]string{
		"service.slack":         "recipientURLs:\n  a: $slack-a\n  b: $slack-b\n",
		"service.teams":         "recipientURLs:\n  ml: $teams\n",
		"service.webhook.audit": "url: $hook\nsecret: $hmac\n",
		"defaultTriggers":       "[on-promoted, on-rolled-back]\n",
	}, map[string][]byte{"slack-a": []byte(slack.URL + "/a"), "slack-b": []byte(slack.URL + "/b"),
		"teams": []byte(teams.URL + "/t"), "hook": []byte(hook.URL + "/h"), "hmac": []byte("k")})
	n := start(t, staticSource{cfg: cfg})

	md := modelDeployment(map[string]string{
		SubscribePrefix + "slack":                     "a; b",
		SubscribePrefix + "on-promoted.slack":         "a", // the same destination: sent once
		SubscribePrefix + "teams":                     "ml",
		SubscribePrefix + "on-promoted.audit":         "",
		SubscribePrefix + "on-rollout-complete.teams": "ml",
		"unrelated.example.com/annotation":            "x",
	})
	promote(n.Notifier, md)
	waitFor(t, "four deliveries", func() bool {
		return len(slack.requests()) == 2 && len(teams.requests()) == 1 && len(hook.requests()) == 1
	})
	// The same event again (a reconcile retried) is not sent twice.
	promote(n.Notifier, md)
	time.Sleep(100 * time.Millisecond)
	if s, tm, h := len(slack.requests()), len(teams.requests()), len(hook.requests()); s != 2 || tm != 1 || h != 1 {
		t.Errorf("after the duplicate event: slack %d, teams %d, webhook %d requests", s, tm, h)
	}
	// on-rollout-complete is not a default trigger: only the explicit
	// teams subscription gets it.
	n.Notify(md, "Normal", "RolloutComplete", "Rollout", "version 2 serves")
	waitFor(t, "rollout complete to teams", func() bool { return len(teams.requests()) == 2 })
	time.Sleep(50 * time.Millisecond)
	if s := len(slack.requests()); s != 2 {
		t.Errorf("slack got %d requests, want 2", s)
	}
}
