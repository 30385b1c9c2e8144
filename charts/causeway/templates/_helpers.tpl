{{/* Chart name, truncated to the 63 characters a label allows. */}}
{{- define "causeway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every resource name. */}}
{{- define "causeway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else if contains (include "causeway.name" .) .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "causeway.name" .) | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "causeway.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "causeway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: pass (list $ "controller"). */}}
{{- define "causeway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "causeway.name" (index . 0) }}
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "causeway.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}
{{- end }}

{{- define "causeway.agentImage" -}}
{{ default (printf "%s-agent" .Values.image.repository) .Values.iam.agent.image.repository }}:{{ default (default .Chart.AppVersion .Values.image.tag) .Values.iam.agent.image.tag }}
{{- end }}

{{- define "causeway.controllerServiceAccount" -}}
{{- if .Values.controller.serviceAccount.create }}
{{- default (printf "%s-controller" (include "causeway.fullname" .)) .Values.controller.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.controller.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "causeway.agentServiceAccount" -}}
{{- if .Values.iam.agent.serviceAccount.create }}
{{- default (printf "%s-agent" (include "causeway.fullname" .)) .Values.iam.agent.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.iam.agent.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Comma-separated key=value list from a map, in key order (deterministic). */}}
{{- define "causeway.kvList" -}}
{{- $out := list }}
{{- range $k, $v := . }}
{{- $out = append $out (printf "%s=%s" $k $v) }}
{{- end }}
{{- join "," $out }}
{{- end }}

{{/* The controllers the controller process runs, from the component switches. */}}
{{- define "causeway.controllers" -}}
{{- $c := list }}
{{- if .Values.alb.enabled }}{{ $c = append $c "alb" }}{{ end }}
{{- if .Values.nlb.enabled }}{{ $c = append $c "nlb" }}{{ end }}
{{- if or .Values.alb.enabled .Values.nlb.enabled .Values.gateway.enabled }}{{ $c = append $c "targets" }}{{ end }}
{{- if .Values.dns.enabled }}{{ $c = append $c "dns" }}{{ end }}
{{- if .Values.iam.enabled }}{{ $c = append $c "iam" }}{{ end }}
{{- if .Values.gateway.enabled }}{{ $c = append $c "gateway" }}{{ end }}
{{- join "," $c }}
{{- end }}
