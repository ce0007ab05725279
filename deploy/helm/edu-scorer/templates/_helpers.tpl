{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "edu-scorer.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart, or the release name alone if it already contains the chart name. */}}
{{- define "edu-scorer.fullname" -}}
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

{{- define "edu-scorer.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select one component's pods: (dict "root" . "component" "ingest"). */}}
{{- define "edu-scorer.componentSelectorLabels" -}}
app.kubernetes.io/name: {{ include "edu-scorer.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels that select the workers (Deployment, Service, PDB, HPA). */}}
{{- define "edu-scorer.selectorLabels" -}}
{{ include "edu-scorer.componentSelectorLabels" (dict "root" . "component" "worker") }}
{{- end }}

{{/* Labels of every object, without the component. */}}
{{- define "edu-scorer.commonLabels" -}}
helm.sh/chart: {{ include "edu-scorer.chart" . }}
app.kubernetes.io/name: {{ include "edu-scorer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: edu-scorer
{{- end }}

{{- define "edu-scorer.labels" -}}
{{ include "edu-scorer.commonLabels" . }}
app.kubernetes.io/component: worker
{{- end }}

{{- define "edu-scorer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "edu-scorer.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "edu-scorer.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The connection URLs, from the existing Secret: never inlined. Given a dict with Values and databaseUrlKey
     (the prune CronJob), the database URL is that key's. */}}
{{- define "edu-scorer.secretEnv" -}}
- name: SCORER_KAFKA_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secret.name }}
      key: {{ .Values.secret.keys.kafkaUrl }}
- name: SCORER_KAFKA_SASL_PASSWORD  # with SASL (SCORER_KAFKA_SECURITY_PROTOCOL in the ConfigMap)
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secret.name }}
      key: {{ .Values.secret.keys.kafkaSasl }}
      optional: true
- name: SCORER_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secret.name }}
      key: {{ .Values.secret.keys.redisUrl }}
- name: SCORER_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secret.name }}
      key: {{ .databaseUrlKey | default .Values.secret.keys.databaseUrl }}
{{- end }}

{{/* The read API's bearer token, from its existing Secret (workers only; the migration needs none). */}}
{{- define "edu-scorer.apiTokenEnv" -}}
- name: SCORER_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ required "readApi.existingSecret: the Secret holding the read API's token" .Values.readApi.existingSecret }}
      key: {{ .Values.readApi.existingSecretKey }}
- name: SCORER_API_TOKEN_PREVIOUS
  valueFrom:
    secretKeyRef:
      name: {{ .Values.readApi.existingSecret }}
      key: {{ .Values.readApi.previousSecretKey }}
      optional: true
{{- end }}

{{/* A pod template's metadata for one component: (dict "root" . "component" "ingest" "port" 8077), its
metrics port scraped by Prometheus' pod discovery. */}}
{{- define "edu-scorer.podMetadata" -}}
labels:
  {{- include "edu-scorer.commonLabels" .root | nindent 2 }}
  app.kubernetes.io/component: {{ .component }}
  {{- with .root.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  checksum/config: {{ include (print .root.Template.BasePath "/configmap.yaml") .root | sha256sum }}
  {{- if .root.Values.metrics.annotations }}
  prometheus.io/scrape: "true"
  prometheus.io/port: {{ .port | quote }}
  prometheus.io/path: {{ .root.Values.metrics.path | quote }}
  {{- if .tls }}
  prometheus.io/scheme: https
  {{- end }}
  {{- end }}
  {{- with .root.Values.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* Where a component's pods may run: the chart's nodeSelector and tolerations. */}}
{{- define "edu-scorer.placement" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* A server's own certificate (readApi.tlsSecret, ingest.tlsSecret: a kubernetes.io/tls Secret), for
(dict "secret" NAME "variable" "SCORER_WEB_TLS"): its settings, mount and volume. */}}
{{- define "edu-scorer.serverTlsEnv" -}}
- name: {{ .variable }}_CERT_FILE
  value: /etc/scorer/server-tls/tls.crt
- name: {{ .variable }}_KEY_FILE
  value: /etc/scorer/server-tls/tls.key
{{- end }}

{{- define "edu-scorer.serverTlsMount" -}}
- name: server-tls
  mountPath: /etc/scorer/server-tls
  readOnly: true
{{- end }}

{{- define "edu-scorer.serverTlsVolume" -}}
- name: server-tls
  secret:
    secretName: {{ .secret }}
{{- end }}

{{/* TLS files for Kafka (values.kafkaTls, used only where kafkaTls.existingSecret is set): the ConfigMap
entries naming them, a Kafka client's volumeMount and the pod's volume. */}}
{{- define "edu-scorer.kafkaTlsDir" -}}/etc/scorer/kafka-tls{{- end }}

{{- define "edu-scorer.kafkaTlsSettings" -}}
{{- $dir := include "edu-scorer.kafkaTlsDir" . }}
{{- with .Values.kafkaTls }}
{{- if .caKey }}
SCORER_KAFKA_SSL_CA_FILE: {{ printf "%s/%s" $dir .caKey | quote }}
{{- end }}
{{- if .certKey }}
SCORER_KAFKA_SSL_CERT_FILE: {{ printf "%s/%s" $dir .certKey | quote }}
{{- end }}
{{- if .keyKey }}
SCORER_KAFKA_SSL_KEY_FILE: {{ printf "%s/%s" $dir .keyKey | quote }}
{{- end }}
{{- end }}
{{- end }}

{{- define "edu-scorer.kafkaTlsMount" -}}
- name: kafka-tls
  mountPath: {{ include "edu-scorer.kafkaTlsDir" . }}
  readOnly: true
{{- end }}

{{- define "edu-scorer.kafkaTlsVolume" -}}
- name: kafka-tls
  secret:
    secretName: {{ .Values.kafkaTls.existingSecret }}
{{- end }}
