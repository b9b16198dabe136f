{{/*
Names and labels shared by the templates.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "mlflow-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The full name of created objects: fullnameOverride, else the release
name, followed by the chart name unless the release name contains it. */}}
{{- define "mlflow-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "mlflow-operator.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The pod labels that select the operator's pods. app.kubernetes.io/name
is always mlflow-operator: the NetworkPolicies the operator writes for the
serving pods let pods with that label in the operator's namespace through
(the smoke test). No label tells the leader apart: the Services select every
replica. */}}
{{- define "mlflow-operator.selectorLabels" -}}
app.kubernetes.io/name: mlflow-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller-manager
{{- end -}}

{{/* Labels of every object. */}}
{{- define "mlflow-operator.labels" -}}
{{ include "mlflow-operator.selectorLabels" . }}
app.kubernetes.io/part-of: mlflow-operator
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/* The ServiceAccount the pods run as. */}}
{{- define "mlflow-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mlflow-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The operator image: by digest when one is set, else by tag (default:
"v" + appVersion). */}}
{{- define "mlflow-operator.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default (printf "v%s" .Chart.AppVersion) .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the MLflow webhook signing secret, and its key; empty
when the receiver is off. Fails when the receiver is on without a secret or
with two. */}}
{{- define "mlflow-operator.webhookSecretName" -}}
{{- if .Values.webhook.enabled -}}
{{- if and .Values.webhook.existingSecret .Values.webhook.secret -}}
{{- fail "webhook: set either webhook.existingSecret (a Secret you manage) or webhook.secret (the chart creates the Secret), not both" -}}
{{- else if .Values.webhook.existingSecret -}}
{{- .Values.webhook.existingSecret -}}
{{- else if .Values.webhook.secret -}}
{{- printf "%s-webhook" (include "mlflow-operator.fullname" .) -}}
{{- else -}}
{{- fail "webhook.enabled is true but no signing secret is set: set webhook.existingSecret (a Secret you manage) or webhook.secret, or set webhook.enabled=false to rely on polling" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "mlflow-operator.webhookSecretKey" -}}
{{- if .Values.webhook.existingSecret -}}{{ .Values.webhook.existingSecretKey }}{{- else -}}secret{{- end -}}
{{- end -}}

{{/* The rules of the generated ClusterRole (config/rbac/role.yaml, copied
to files/manager-role.yaml by `make chart-sync`). */}}
{{- define "mlflow-operator.managerRules" -}}
{{- $role := .Files.Get "files/manager-role.yaml" | fromYaml -}}
{{- if not $role.rules -}}
{{- fail "files/manager-role.yaml has no rules: run make chart-sync" -}}
{{- end -}}
{{- toYaml $role.rules -}}
{{- end -}}

{{/* Resources of the core and well-known API groups that are not
namespaced: a rule for one of them cannot live in a Role. With
watchNamespaces, rules of the generated role naming them stay in a small
ClusterRole (test/chart checks this list against the API server's
discovery for every resource the role names). */}}
{{- define "mlflow-operator.clusterScopedResources" -}}
- namespaces
- nodes
- persistentvolumes
- componentstatuses
- customresourcedefinitions
- apiservices
- clusterroles
- clusterrolebindings
- storageclasses
- csidrivers
- csinodes
- volumeattachments
- priorityclasses
- runtimeclasses
- ingressclasses
- mutatingwebhookconfigurations
- validatingwebhookconfigurations
- validatingadmissionpolicies
- validatingadmissionpolicybindings
- certificatesigningrequests
- tokenreviews
- subjectaccessreviews
- selfsubjectaccessreviews
- selfsubjectrulesreviews
- flowschemas
- prioritylevelconfigurations
{{- end -}}
