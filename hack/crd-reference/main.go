// Command crd-reference writes docs/reference.md from the generated CRD, so
// that the reference names every field with the same text `kubectl explain`
// shows, and cannot fall behind the API.
//
//	go run ./hack/crd-reference config/crd/bases/serving.mlflow-operator.io_modeldeployments.yaml > docs/reference.md
package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: crd-reference CRD.yaml")
		os.Exit(2)
	}
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal(data, crd); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var b strings.Builder
	for _, v := range crd.Spec.Versions {
		writeVersion(&b, crd, v)
	}
	fmt.Print(b.String())
}

func writeVersion(b *strings.Builder, crd *apiextensionsv1.CustomResourceDefinition, v apiextensionsv1.CustomResourceDefinitionVersion) {
	root := v.Schema.OpenAPIV3Schema
	fmt.Fprintf(b, "# %s reference (%s/%s)\n\n", crd.Spec.Names.Kind, crd.Spec.Group, v.Name)
	fmt.Fprintf(b, "Generated from the CRD by `make docs`; do not edit. The same text is what\n`kubectl explain %s.<field>` shows.\n\n",
		strings.ToLower(crd.Spec.Names.Kind))
	fmt.Fprintf(b, "%s\n\n", oneLine(root.Description))
	fmt.Fprintf(b, "Short names: %s. Categories: %s.\n\n", strings.Join(crd.Spec.Names.ShortNames, ", "), strings.Join(crd.Spec.Names.Categories, ", "))
	if len(v.AdditionalPrinterColumns) > 0 {
		b.WriteString("`kubectl get` columns:\n\n| column | value | shown |\n| --- | --- | --- |\n")
		for _, c := range v.AdditionalPrinterColumns {
			shown := "always"
			if c.Priority > 0 {
				shown = "`-o wide`"
			}
			fmt.Fprintf(b, "| %s | `%s` | %s |\n", strings.ToUpper(c.Name), c.JSONPath, shown)
		}
		b.WriteString("\n")
	}
	for _, top := range []string{"spec", "status"} {
		s, ok := root.Properties[top]
		if !ok {
			continue
		}
		fmt.Fprintf(b, "## %s\n\n%s\n\n", top, oneLine(s.Description))
		writeObject(b, top, s)
	}
}

// writeObject writes a table of the fields of the object at path, then the
// tables of the objects below it. Embedded Kubernetes types (pod affinity,
// tolerations, network policy peers...) are named, not expanded: their own
// documentation applies.
func writeObject(b *strings.Builder, path string, s apiextensionsv1.JSONSchemaProps) {
	if len(s.Properties) == 0 {
		return
	}
	for _, rule := range s.XValidations {
		if rule.FieldPath != "" {
			fmt.Fprintf(b, "Rule on `%s%s`: %s.\n\n", path, rule.FieldPath, rule.Message)
			continue
		}
		fmt.Fprintf(b, "Rule: %s.\n\n", rule.Message)
	}
	b.WriteString("| field | type | default | description |\n| --- | --- | --- | --- |\n")
	names := sortedKeys(s.Properties)
	required := map[string]bool{}
	for _, r := range s.Required {
		required[r] = true
	}
	var nested []string
	for _, n := range names {
		p := s.Properties[n]
		name := "`" + n + "`"
		if required[n] {
			name += " (required)"
		}
		desc := oneLine(p.Description)
		for _, rule := range p.XValidations {
			desc += " Rule: " + rule.Message + "."
		}
		if len(p.Enum) > 0 {
			var vals []string
			for _, e := range p.Enum {
				vals = append(vals, "`"+strings.Trim(string(e.Raw), `"`)+"`")
			}
			desc += " One of " + strings.Join(vals, ", ") + "."
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", name, typeOf(p), defaultOf(p), escape(desc))
		if expandable(path+"."+n, p) {
			nested = append(nested, n)
		}
	}
	b.WriteString("\n")
	for _, n := range nested {
		p := s.Properties[n]
		child := path + "." + n
		if p.Type == "array" && p.Items != nil && p.Items.Schema != nil {
			p = *p.Items.Schema
			child += "[]"
		}
		fmt.Fprintf(b, "### %s\n\n", child)
		writeObject(b, child, p)
	}
}

// embedded are paths holding Kubernetes' own types, documented upstream.
var embedded = []string{
	"spec.serving.affinity", "spec.serving.tolerations", "spec.serving.env", "spec.serving.resources",
	"spec.serving.imagePullSecrets", "spec.networkPolicy.allowFrom", "status.conditions",
	"spec.mlflow.credentialsSecretRef", "spec.mlflow.caSecretRef", "spec.image.pushSecretRef",
	"spec.image.baseImagePullSecretRef",
}

func expandable(path string, p apiextensionsv1.JSONSchemaProps) bool {
	for _, e := range embedded {
		if path == e {
			return false
		}
	}
	if p.Type == "object" && len(p.Properties) > 0 {
		return true
	}
	return p.Type == "array" && p.Items != nil && p.Items.Schema != nil && len(p.Items.Schema.Properties) > 0
}

func typeOf(p apiextensionsv1.JSONSchemaProps) string {
	switch {
	case p.XIntOrString:
		return "int or string"
	case p.Type == "array" && p.Items != nil && p.Items.Schema != nil:
		return "[]" + typeOf(*p.Items.Schema)
	case p.Type == "object" && p.AdditionalProperties != nil && p.AdditionalProperties.Schema != nil:
		return "map[string]" + typeOf(*p.AdditionalProperties.Schema)
	case p.Format != "":
		return p.Type + " (" + p.Format + ")"
	default:
		return p.Type
	}
}

func defaultOf(p apiextensionsv1.JSONSchemaProps) string {
	if p.Default == nil || string(p.Default.Raw) == "{}" {
		return ""
	}
	return "`" + string(p.Default.Raw) + "`"
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func escape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func sortedKeys(m map[string]apiextensionsv1.JSONSchemaProps) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
