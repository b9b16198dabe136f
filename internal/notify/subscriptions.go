package notify

import (
	"fmt"
	"sort"
	"strings"
)

// SubscribePrefix starts a subscription annotation on a ModelDeployment:
//
//	notifications.mlflow-operator.io/subscribe.<trigger>.<service>: <recipient>[;<recipient>...]
//	notifications.mlflow-operator.io/subscribe.<service>: ...   (the default triggers)
//
// A service is one the administrator configured (slack, teams or a
// webhook's name); a tenant picks recipients among what it allows, never
// a URL.
const SubscribePrefix = "notifications.mlflow-operator.io/subscribe."

// Bounds of what one ModelDeployment may ask for.
const (
	// maxRecipients bounds the recipients of one annotation.
	maxRecipients = 10
	// maxDeliveries bounds the deliveries of one event of one
	// ModelDeployment (recipients times the trigger's templates).
	maxDeliveries = 20
	// maxAnnotationValue bounds the value read.
	maxAnnotationValue = 1024
	// maxSubscriptions bounds the subscription annotations read.
	maxSubscriptions = 32
)

// subscriptions copies md's subscription annotations (bounded in number):
// the event keeps them as they were when it was recorded.
func subscriptions(annotations map[string]string) map[string]string {
	var out map[string]string
	for k, v := range annotations {
		if !strings.HasPrefix(k, SubscribePrefix) {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		if len(out) == maxSubscriptions {
			// Kept so that destinations reports the excess.
			out[""] = ""
			break
		}
		out[k] = v
	}
	return out
}

// destination is one recipient of one service.
type destination struct {
	service   string
	recipient string
}

// destinations reads the subscriptions to trigger. A subscription the
// configuration does not allow is left out and described in problems
// (without any secret: only the annotation's key and the tenant's text).
func (c *Config) destinations(trigger string, subs map[string]string) (out []destination, problems []string) {
	keys := make([]string, 0, len(subs))
	for k := range subs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	seen := map[destination]bool{}
	isDefault := false
	for _, t := range c.defaultTriggers {
		isDefault = isDefault || t == trigger
	}
	for _, k := range keys {
		if k == "" {
			problems = append(problems, fmt.Sprintf("more than %d subscription annotations; the rest are ignored", maxSubscriptions))
			continue
		}
		rest := strings.TrimPrefix(k, SubscribePrefix)
		t, svc, explicit := strings.Cut(rest, ".")
		if !explicit {
			svc = t
		}
		switch {
		case explicit && !knownTrigger(t):
			problems = append(problems, fmt.Sprintf("%s: unknown trigger %q; the triggers are %s", k, cutForLog(t), strings.Join(Triggers, ", ")))
			continue
		case explicit && t != trigger, !explicit && !isDefault:
			continue
		}
		s, ok := c.services[svc]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: service %q is not configured; the services are %s", k, cutForLog(svc), strings.Join(c.Services(), ", ")))
			continue
		}
		v := subs[k]
		if len(v) > maxAnnotationValue {
			problems = append(problems, fmt.Sprintf("%s: more than %d characters", k, maxAnnotationValue))
			continue
		}
		recipients := splitRecipients(v)
		if len(recipients) > maxRecipients {
			problems = append(problems, fmt.Sprintf("%s: more than %d recipients", k, maxRecipients))
			continue
		}
		if len(recipients) == 0 {
			recipients = []string{""}
		}
		for _, r := range recipients {
			r, err := s.recipient(r)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", k, err))
				continue
			}
			d := destination{service: svc, recipient: r}
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	return out, problems
}

// splitRecipients splits on ';' and ',' and drops empty items.
func splitRecipients(v string) []string {
	var out []string
	for _, r := range strings.FieldsFunc(v, func(r rune) bool { return r == ';' || r == ',' }) {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}
