package notify

import (
	"strings"
	"testing"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

var testSecret = map[string][]byte{
	"slack-token": []byte("xoxb-secret"), "hook-url": []byte("https://hooks.example.com/x"),
	"hmac": []byte("hmac-secret"), "teams-url": []byte("https://example.webhook.office.com/abc"),
	"bad-url": []byte("not a url"), "empty": []byte("  \n"),
}

func TestParseRefusesWhatIsUnsafeOrBroken(t *testing.T) {
	for _, tc := range []struct {
		name, key, value, want string
	}{
		{"a token written into the ConfigMap", "service.slack", "token: xoxb-literal-token", "must name a key of Secret"},
		{"a Teams URL written into the ConfigMap", "service.teams", "recipientURLs: {a: 'https://example.webhook.office.com/literal'}", "must name a key of Secret"},
		{"a signing secret written into the ConfigMap", "service.webhook.h", "url: $hook-url\nsecret: literal-hmac", "must name a key of Secret"},
		{"a webhook without a signing secret", "service.webhook.h", "url: $hook-url", "secret must name a key"},
		{"a missing Secret key", "service.slack", "token: $nope", `has no key "nope"`},
		{"an empty Secret value", "service.slack", "token: $empty", `has no key "empty"`},
		{"a URL that is no URL", "service.webhook.h", "url: $bad-url\nsecret: $hmac", "url is not an http(s) URL"},
		{"a URL with user information", "service.webhook.h", "url: https://u:p@example.com/\nsecret: $hmac", "without user information"},
		{"a file URL", "service.webhook.h", "url: file:///etc/passwd\nsecret: $hmac", "url is not an http(s) URL"},
		{"both Slack modes", "service.slack", "token: $slack-token\nrecipientURLs: {a: $hook-url}", "either token"},
		{"neither Slack mode", "service.slack", "channels: [a]", "either token"},
		{"a misspelt field", "service.slack", "tokn: $slack-token", "unknown field"},
		{"a reserved header", "service.webhook.h", "url: $hook-url\nsecret: $hmac\nheaders: [{name: X-MLflow-Operator-Signature, value: x}]", "may not be set"},
		{"a header with a line break", "service.webhook.h", "url: $hook-url\nsecret: $hmac\nheaders: [{name: X-A, value: \"a\\r\\nB: c\"}]", "one line"},
		{"a webhook named slack", "service.webhook.slack", "url: $hook-url\nsecret: $hmac", "other than slack and teams"},
		{"an unknown service", "service.pagerduty", "x: y", "unknown service"},
		{"an unknown Teams format", "service.teams", "recipientURLs: {a: $teams-url}\nformat: html", "format is"},
		{"a recipient name with markup", "service.teams", "recipientURLs: {'<!here>': $teams-url}", "recipient"},
		{"an unknown trigger", "trigger.on-deployed", "- send: [promoted]", "unknown trigger"},
		{"a trigger sending an unknown template", "trigger.on-promoted", "- send: [nope]", `no template "nope"`},
		{"a template without a message", "template.t", "title: x", "message is empty"},
		{"a template naming a field that does not exist", "template.t", "message: '{{.modelName}}'", "modelName"},
		{"a template that never ends", "template.t", "message: '{{range 100000000}}xxxxxxxx{{end}}'", "more than 64 KiB"},
		{"a template that does not parse", "template.t", "message: '{{.name'", "message:"},
		{"an unknown color", "template.t", "message: m\nslack: {color: red}", "slack.color"},
		{"an unknown default trigger", "defaultTriggers", "[on-promoted, on-deleted]", `unknown trigger "on-deleted"`},
		{"an unknown key", "services.slack", "x", "unknown key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Parse(map[string]string{tc.key: tc.value}, testSecret)
			got := strings.Join(c.Problems, "\n")
			if !strings.Contains(got, tc.want) {
				t.Fatalf("problems %q, want %q", got, tc.want)
			}
			for _, v := range testSecret {
				if s := strings.TrimSpace(string(v)); s != "" && strings.Contains(got, s) {
					t.Errorf("a problem repeats a Secret's value: %s", got)
				}
			}
			for _, literal := range []string{"xoxb-literal-token", "literal-hmac", "office.com/literal"} {
				if strings.Contains(got, literal) {
					t.Errorf("a problem repeats %q: %s", literal, got)
				}
			}
		})
	}
}

func TestParseKeepsTheRest(t *testing.T) {
	c := Parse(map[string]string{
		"service.slack":          "token: $slack-token\nchannels: ['#ml-alerts']",
		"service.webhook.audit":  "url: $hook-url\nsecret: ${hmac}",
		"service.webhook.broken": "url: $nope\nsecret: $hmac",
		"template.mine":          "message: '{{.name}} {{.version}}'",
		"trigger.on-promoted":    "- send: [mine]\n- send: [promoted]",
		"defaultTriggers":        "[on-rolled-back]",
	}, testSecret)
	if got := strings.Join(c.Services(), ","); got != "audit,slack" {
		t.Errorf("services %s", got)
	}
	if len(c.Problems) != 1 || !strings.Contains(c.Problems[0], "service.webhook.broken") {
		t.Errorf("problems %q", c.Problems)
	}
	if got := strings.Join(c.triggers[TriggerPromoted], ","); got != "mine,promoted" {
		t.Errorf("on-promoted sends %s", got)
	}
	// The triggers the ConfigMap does not name send their built-in template.
	if got := strings.Join(c.triggers[TriggerBuildFailed], ","); got != "build-failed" {
		t.Errorf("on-build-failed sends %s", got)
	}
	if got := strings.Join(c.defaultTriggers, ","); got != TriggerRolledBack {
		t.Errorf("default triggers %s", got)
	}
	if s := c.services["slack"].(*slack); s.token != "xoxb-secret" || s.api.String() != "https://slack.com/api/chat.postMessage" || !s.channels["ml-alerts"] {
		t.Errorf("slack %+v", s)
	}
}

func TestTrigger(t *testing.T) {
	for _, tc := range []struct {
		typ    string
		reason v1alpha1.Reason
		action v1alpha1.EventAction
		want   string
	}{
		{"Normal", v1alpha1.ReasonPromoted, v1alpha1.ActionPromote, TriggerPromoted},
		{"Normal", v1alpha1.ReasonRolloutComplete, v1alpha1.ActionRollout, TriggerRolloutComplete},
		{"Warning", v1alpha1.ReasonRolledBack, v1alpha1.ActionRollback, TriggerRolledBack},
		{"Warning", v1alpha1.ReasonCandidateFailed, v1alpha1.ActionVerify, TriggerVersionHeld},
		{"Warning", v1alpha1.ReasonSmokeTestFailed, v1alpha1.ActionVerify, TriggerVersionHeld},
		{"Warning", v1alpha1.ReasonNoSmokeTestRequest, v1alpha1.ActionVerify, TriggerVersionHeld},
		{"Warning", v1alpha1.ReasonProgressDeadline, v1alpha1.ActionRollout, TriggerVersionFailed},
		{"Warning", v1alpha1.ReasonPodsFailing, v1alpha1.ActionRollout, TriggerVersionFailed},
		{"Warning", v1alpha1.ReasonBuildFailed, v1alpha1.ActionBuild, TriggerBuildFailed},
		{"Warning", v1alpha1.ReasonRegistryUnauthorized, v1alpha1.ActionBuild, TriggerBuildFailed},
		{"Normal", v1alpha1.ReasonAwaitingApproval, v1alpha1.ActionApprove, TriggerAwaitingApproval},
		// A person's abort holds the version back like a failed candidate.
		{"Warning", v1alpha1.ReasonAborted, v1alpha1.ActionVerify, TriggerVersionHeld},
		// The approval is followed by Promoted, which has its trigger.
		{"Normal", v1alpha1.ReasonApproved, v1alpha1.ActionApprove, ""},
		// Not rollout transitions.
		{"Normal", v1alpha1.ReasonPushed, v1alpha1.ActionBuild, ""},
		{"Normal", v1alpha1.ReasonCandidateStarting, v1alpha1.ActionVerify, ""},
		{"Normal", v1alpha1.ReasonReadinessOnly, v1alpha1.ActionVerify, ""},
		{"Normal", v1alpha1.ReasonResolved, v1alpha1.ActionResolve, ""},
		{"Warning", v1alpha1.ReasonMLflowUnreachable, v1alpha1.ActionResolve, ""},
		{"Warning", v1alpha1.ReasonKubernetesAPIError, v1alpha1.ActionReconcile, ""},
		{"Normal", v1alpha1.ReasonSuspended, v1alpha1.ActionSuspend, ""},
	} {
		if got := Trigger(tc.typ, tc.reason, tc.action); got != tc.want {
			t.Errorf("Trigger(%s, %s, %s) = %q, want %q", tc.typ, tc.reason, tc.action, got, tc.want)
		}
	}
}
