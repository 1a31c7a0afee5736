{{- define "habitus.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "habitus.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{- define "habitus.redisUrl" -}}
{{- if .Values.redis.enabled -}}
redis://{{ include "habitus.fullname" . }}-redis:6379/0
{{- else -}}
{{ required "redis.externalRedisUrl is required when redis.enabled is false" .Values.redis.externalRedisUrl }}
{{- end -}}
{{- end -}}

{{- define "habitus.spoolClaim" -}}
{{- default (printf "%s-spool" (include "habitus.fullname" .)) .Values.spool.existingClaim -}}
{{- end -}}

{{/* Settings shared by every Habitus container: the ConfigMap (envFrom) ... */}}
{{- define "habitus.envFrom" -}}
- configMapRef:
    name: {{ include "habitus.fullname" . }}-config
{{- end -}}

{{/* ... and the API keys from their Secret (env). */}}
{{- define "habitus.env" -}}
- name: HABITUS_API_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ default (printf "%s-api-keys" (include "habitus.fullname" .)) .Values.existingSecret }}
      key: HABITUS_API_KEYS
{{- end -}}

{{/* Pod annotations: a hash of the settings, so that a changed ConfigMap or API-key Secret
rolls the pods on upgrade (they read both only at start). */}}
{{- define "habitus.podAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/api-keys: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end -}}
