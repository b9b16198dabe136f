package notify

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// The administrator's configuration, in the operator's namespace.
const (
	// ConfigMapName holds the services, templates and triggers.
	ConfigMapName = "mlflow-operator-notifications-cm"
	// SecretName holds the URLs, tokens and signing secrets the services
	// name as $key.
	SecretName = "mlflow-operator-notifications-secret"
)

// ConfigMap keys.
const (
	keyService        = "service."
	keyWebhookService = "service.webhook."
	keyTemplate       = "template."
	keyTrigger        = "trigger."
	keyDefaultTrigger = "defaultTriggers"
)

// Config is a parsed configuration: what is valid in it, and what was left
// out and why (Problems, for the operator's log; they never hold a secret's
// value).
type Config struct {
	services        map[string]service
	templates       map[string]*messageTemplate
	triggers        map[string][]string // trigger -> template names
	defaultTriggers []string
	// Problems are the entries left out, one sentence each.
	Problems []string
}

// triggerCondition is one item of a trigger.<name> entry.
type triggerCondition struct {
	// Send names the templates to send.
	Send []string `json:"send"`
}

// Parse reads the ConfigMap's data and the Secret's. It never fails: an
// entry that cannot be used is left out and described in Problems, and the
// rest works. Templates and triggers the ConfigMap does not define are the
// built-in ones.
func Parse(data map[string]string, secret map[string][]byte) *Config {
	c := &Config{services: map[string]service{}, templates: map[string]*messageTemplate{}, triggers: map[string][]string{}}
	for name, t := range builtinTemplates() {
		c.templates[name] = t
	}
	for _, t := range Triggers {
		c.triggers[t] = []string{builtinTemplateOf(t)}
	}
	c.defaultTriggers = append([]string(nil), Triggers...)

	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// Templates first: triggers name them.
	for _, k := range keys {
		if name, ok := strings.CutPrefix(k, keyTemplate); ok {
			t, err := parseTemplate(name, data[k])
			if err != nil {
				c.problem("%s: %v", k, err)
				continue
			}
			c.templates[name] = t
		}
	}
	for _, k := range keys {
		v := data[k]
		switch {
		case strings.HasPrefix(k, keyTemplate):
		case strings.HasPrefix(k, keyWebhookService):
			name := strings.TrimPrefix(k, keyWebhookService)
			if !validServiceName(name) {
				c.problem("%s: a webhook's name is a DNS label of at most 40 characters other than slack and teams", k)
				continue
			}
			c.addService(k, name, func() (service, error) { return parseWebhook(name, v, secret) })
		case k == keyService+"slack":
			c.addService(k, "slack", func() (service, error) { return parseSlack(v, secret) })
		case k == keyService+"teams":
			c.addService(k, "teams", func() (service, error) { return parseTeams(v, secret) })
		case strings.HasPrefix(k, keyService):
			c.problem("%s: unknown service; the services are service.slack, service.teams and service.webhook.<name>", k)
		case strings.HasPrefix(k, keyTrigger):
			name := strings.TrimPrefix(k, keyTrigger)
			if !knownTrigger(name) {
				c.problem("%s: unknown trigger; the triggers are %s", k, strings.Join(Triggers, ", "))
				continue
			}
			var conds []triggerCondition
			if err := yaml.UnmarshalStrict([]byte(v), &conds); err != nil {
				c.problem("%s: want a list of {send: [template, ...]}: %v", k, err)
				continue
			}
			var send []string
			for _, cond := range conds {
				for _, t := range cond.Send {
					if _, ok := c.templates[t]; !ok {
						c.problem("%s: no template %q; it is left out", k, t)
						continue
					}
					send = append(send, t)
				}
			}
			c.triggers[name] = send
		case k == keyDefaultTrigger:
			var ts []string
			if err := yaml.UnmarshalStrict([]byte(v), &ts); err != nil {
				c.problem("%s: want a list of triggers: %v", k, err)
				continue
			}
			c.defaultTriggers = nil
			for _, t := range ts {
				if !knownTrigger(t) {
					c.problem("%s: unknown trigger %q", k, t)
					continue
				}
				c.defaultTriggers = append(c.defaultTriggers, t)
			}
		default:
			c.problem("%s: unknown key; the keys are service.*, template.*, trigger.* and defaultTriggers", k)
		}
	}
	return c
}

func (c *Config) problem(format string, args ...any) {
	c.Problems = append(c.Problems, fmt.Sprintf(format, args...))
}

func (c *Config) addService(key, name string, parse func() (service, error)) {
	s, err := parse()
	if err != nil {
		c.problem("%s: %v; the service is off", key, err)
		return
	}
	c.services[name] = s
}

// Services lists the names of the usable services, sorted.
func (c *Config) Services() []string {
	out := make([]string, 0, len(c.services))
	for n := range c.services {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

var serviceName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// validName: templates and webhooks are named with DNS labels of at most
// 40 characters.
func validName(n string) bool { return len(n) <= 40 && serviceName.MatchString(n) }

func validServiceName(n string) bool { return validName(n) && n != "slack" && n != "teams" }

// secretRef is a whole value that names a key of the Secret: $key or ${key}.
var secretRef = regexp.MustCompile(`^\$(\{[-._a-zA-Z0-9]+\}|[-._a-zA-Z0-9]+)$`)

// secretRefs are the references inside a longer value ("Bearer $token").
var secretRefs = regexp.MustCompile(`\$(\{[-._a-zA-Z0-9]+\}|[-._a-zA-Z0-9]+)`)

func refKey(ref string) string {
	return strings.Trim(strings.TrimPrefix(ref, "$"), "{}")
}

// fromSecret resolves a value that must be a reference to a key of the
// Secret: tokens, signing secrets and Slack and Teams webhook URLs (which
// are credentials themselves) are never written into the ConfigMap, which
// more people can read. Errors name the key, never the value.
func fromSecret(field, v string, secret map[string][]byte) (string, error) {
	if !secretRef.MatchString(v) {
		return "", fmt.Errorf("%s must name a key of Secret %s as $key, not hold the value itself", field, SecretName)
	}
	key := refKey(v)
	val, ok := secret[key]
	if !ok || len(strings.TrimSpace(string(val))) == 0 {
		return "", fmt.Errorf("%s: Secret %s has no key %q (or it is empty)", field, SecretName, key)
	}
	return strings.TrimSpace(string(val)), nil
}

// expand replaces the $key references in v by the Secret's values (a value
// with none stays as it is).
func expand(field, v string, secret map[string][]byte) (string, error) {
	var missing []string
	out := secretRefs.ReplaceAllStringFunc(v, func(ref string) string {
		key := refKey(ref)
		val, ok := secret[key]
		if !ok {
			missing = append(missing, key)
			return ""
		}
		return strings.TrimSpace(string(val))
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("%s: Secret %s has no key %q", field, SecretName, missing[0])
	}
	return out, nil
}

// endpoint checks a URL a service posts to. Errors never repeat the URL: it
// may come from the Secret.
func endpoint(field, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("%s is not an http(s) URL with a host and without user information", field)
	}
	return u, nil
}

// recipientPattern: Slack channel names and IDs, Teams and webhook
// recipient names. No spaces, markup or URLs.
var recipientPattern = regexp.MustCompile(`^#?[A-Za-z0-9][A-Za-z0-9._-]*$`)

// maxRecipient bounds one recipient (Slack's channel names have at most 80
// characters).
const maxRecipient = 80

func validRecipient(r string) error {
	if len(r) > maxRecipient || !recipientPattern.MatchString(r) {
		return fmt.Errorf("recipient %q: want at most %d letters, digits, '.', '_' or '-' (a Slack channel may start with '#')", cutForLog(r), maxRecipient)
	}
	return nil
}

// cutForLog bounds tenant text repeated in a log line.
func cutForLog(s string) string {
	if len(s) > maxRecipient {
		return s[:maxRecipient] + "..."
	}
	return s
}

// recipientURLs resolves a map of recipient names to webhook URLs held in
// the Secret.
func recipientURLs(field string, in map[string]string, secret map[string][]byte) (map[string]*url.URL, error) {
	out := map[string]*url.URL{}
	for name, ref := range in {
		if err := validRecipient(name); err != nil {
			return nil, fmt.Errorf("%s: %v", field, err)
		}
		raw, err := fromSecret(fmt.Sprintf("%s[%s]", field, name), ref, secret)
		if err != nil {
			return nil, err
		}
		u, err := endpoint(fmt.Sprintf("%s[%s]", field, name), raw)
		if err != nil {
			return nil, err
		}
		out[strings.TrimPrefix(name, "#")] = u
	}
	return out, nil
}
