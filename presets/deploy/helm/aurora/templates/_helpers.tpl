{{/*
Names, labels and shared values of the aurora chart's templates.
*/}}

{{- define "aurora.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "aurora.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "aurora.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "aurora.selectorLabels" -}}
app.kubernetes.io/name: {{ include "aurora.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "aurora.labels" -}}
helm.sh/chart: {{ include "aurora.chart" . }}
{{ include "aurora.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: daemon
{{- end }}

{{/* The Secret holding the token (and the ClickHouse password, if any). */}}
{{- define "aurora.secretName" -}}
{{- default (include "aurora.fullname" .) .Values.auth.existingSecret }}
{{- end }}

{{/* The config file: `config` with `pipelines` as its pipelines list. */}}
{{- define "aurora.configYaml" -}}
{{- $config := deepCopy (default dict .Values.config) }}
{{- $_ := set $config "pipelines" (default list .Values.pipelines) }}
{{- toYaml $config }}
{{- end }}

{{- define "aurora.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The token file named in the config (a file you mount), if any: then no token variable. */}}
{{- define "aurora.tokenFile" -}}
{{- if not .Values.configSecret.name }}
{{- dig "serve" "token_file" "" (default dict .Values.config) }}
{{- end }}
{{- end }}
