package notify

import (
	"fmt"
	"strings"
	"testing"
)

func subscriptionConfig(t *testing.T) *Config {
	return mustParse(t, map[string]string{
		"service.slack":         "token: $slack-token\nchannels: [ml-alerts, ml-deploys]",
		"service.teams":         "recipientURLs: {ml-team: $teams-url}",
		"service.webhook.audit": "url: $hook-url\nsecret: $hmac",
		"defaultTriggers":       "[on-promoted, on-rolled-back]",
	}, testSecret)
}

func TestDestinations(t *testing.T) {
	c := subscriptionConfig(t)
	for _, tc := range []struct {
		name     string
		trigger  string
		subs     map[string]string
		want     string // service/recipient, sorted by annotation
		problems []string
	}{
		{name: "explicit trigger", trigger: TriggerRolloutComplete,
			subs: map[string]string{SubscribePrefix + "on-rollout-complete.slack": "ml-alerts;#ml-deploys, ml-alerts"},
			want: "slack/ml-alerts slack/ml-deploys"},
		{name: "other triggers are not this one", trigger: TriggerBuildFailed,
			subs: map[string]string{SubscribePrefix + "on-rollout-complete.slack": "ml-alerts", SubscribePrefix + "slack": "ml-alerts"}},
		{name: "default triggers", trigger: TriggerRolledBack,
			subs: map[string]string{SubscribePrefix + "teams": "ml-team", SubscribePrefix + "audit": ""},
			want: "audit/ teams/ml-team"},
		{name: "a webhook recipient is passed on", trigger: TriggerPromoted,
			subs: map[string]string{SubscribePrefix + "on-promoted.audit": "team-a"}, want: "audit/team-a"},
		{name: "a service the administrator did not configure", trigger: TriggerPromoted,
			subs:     map[string]string{SubscribePrefix + "on-promoted.webhook": "https://attacker.example/"},
			problems: []string{`service "webhook" is not configured; the services are audit, slack, teams`}},
		{name: "a URL as recipient", trigger: TriggerPromoted,
			subs:     map[string]string{SubscribePrefix + "on-promoted.audit": "https://attacker.example/"},
			problems: []string{`recipient "https://attacker.example/"`}},
		{name: "a channel outside the allowed ones", trigger: TriggerPromoted,
			subs:     map[string]string{SubscribePrefix + "on-promoted.slack": "general;ml-alerts"},
			want:     "slack/ml-alerts",
			problems: []string{`slack may not post to channel "general"`}},
		{name: "a Teams recipient without a webhook", trigger: TriggerPromoted,
			subs:     map[string]string{SubscribePrefix + "on-promoted.teams": "other-team"},
			problems: []string{`teams has no webhook for recipient "other-team"`}},
		{name: "Slack needs a channel", trigger: TriggerPromoted,
			subs:     map[string]string{SubscribePrefix + "on-promoted.slack": " ; "},
			problems: []string{"slack needs a channel"}},
		{name: "markup in a recipient", trigger: TriggerPromoted,
			subs:     map[string]string{SubscribePrefix + "on-promoted.slack": "<!channel>"},
			problems: []string{`recipient "<!channel>"`}},
		{name: "a recipient too long", trigger: TriggerPromoted,
			subs:     map[string]string{SubscribePrefix + "on-promoted.audit": strings.Repeat("a", 81)},
			problems: []string{"want at most 80"}},
		{name: "too many recipients", trigger: TriggerPromoted,
			subs:     map[string]string{SubscribePrefix + "on-promoted.audit": strings.Repeat("a;", 11)},
			problems: []string{"more than 10 recipients"}},
		{name: "a value too long", trigger: TriggerPromoted,
			subs:     map[string]string{SubscribePrefix + "on-promoted.audit": strings.Repeat("a", 1025)},
			problems: []string{"more than 1024 characters"}},
		{name: "an unknown trigger", trigger: TriggerPromoted,
			subs:     map[string]string{SubscribePrefix + "on-everything.slack": "ml-alerts"},
			problems: []string{`unknown trigger "on-everything"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dests, problems := c.destinations(tc.trigger, tc.subs)
			var got []string
			for _, d := range dests {
				got = append(got, d.service+"/"+d.recipient)
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("destinations %q, want %q", got, tc.want)
			}
			if len(problems) != len(tc.problems) {
				t.Fatalf("problems %q, want %q", problems, tc.problems)
			}
			for i, p := range tc.problems {
				if !strings.Contains(problems[i], p) {
					t.Errorf("problem %q, want %q", problems[i], p)
				}
			}
		})
	}
}

func TestSubscriptionsAreBounded(t *testing.T) {
	annotations := map[string]string{"other/annotation": "x"}
	for i := range 100 {
		annotations[fmt.Sprintf("%son-promoted.w%d", SubscribePrefix, i)] = ""
	}
	subs := subscriptions(annotations)
	if len(subs) != maxSubscriptions+1 {
		t.Fatalf("%d subscriptions kept", len(subs))
	}
	_, problems := subscriptionConfig(t).destinations(TriggerPromoted, subs)
	if !strings.Contains(strings.Join(problems, "\n"), "more than 32 subscription annotations") {
		t.Errorf("problems %q", problems)
	}
	if subscriptions(map[string]string{"a": "b"}) != nil {
		t.Errorf("subscriptions of an object without any")
	}
}

// One event of one ModelDeployment never makes more than maxDeliveries
// requests, whatever its annotations say.
func TestDeliveriesPerEventAreBounded(t *testing.T) {
	hook := newReceiver(t, nil)
	data := map[string]string{"trigger.on-promoted": "- send: [promoted, rollout-complete, rolled-back]"}
	secret := map[string][]byte{"hmac": []byte("k"), "url": []byte(hook.URL)}
	annotations := map[string]string{}
	for i := range 10 {
		data[fmt.Sprintf("service.webhook.w%d", i)] = "url: $url\nsecret: $hmac"
		annotations[fmt.Sprintf("%son-promoted.w%d", SubscribePrefix, i)] = "a;b;c"
	}
	n := start(t, staticSource{cfg: mustParse(t, data, secret)})
	promote(n.Notifier, modelDeployment(annotations))
	waitFor(t, "the excess dropped", func() bool { return n.dropped("too_many_deliveries") == 90-maxDeliveries })
	waitFor(t, "the rest delivered", func() bool { return len(hook.requests()) == maxDeliveries })
}
