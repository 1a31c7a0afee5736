{{- define "habitus.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "habitus.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{- define "habitus.spoolClaim" -}}
{{- default (printf "%s-spool" (include "habitus.fullname" .)) .Values.spool.existingClaim -}}
{{- end -}}

{{/* The Secret with the API keys (key HABITUS_API_KEYS). */}}
{{- define "habitus.apiKeysSecret" -}}
{{- default (printf "%s-api-keys" (include "habitus.fullname" .)) .Values.apiKey.existingSecret -}}
{{- end -}}

{{/* The Secret with the Redis URL (key redis-url) and, for the bundled Redis, its password
(key redis-password). */}}
{{- define "habitus.redisSecret" -}}
{{- $existing := ternary .Values.redis.auth.existingSecret .Values.redis.external.existingSecret .Values.redis.enabled -}}
{{- default (printf "%s-redis-auth" (include "habitus.fullname" .)) $existing -}}
{{- end -}}

{{/* Settings shared by every Habitus container: the ConfigMap (envFrom) ... */}}
{{- define "habitus.envFrom" -}}
- configMapRef:
    name: {{ include "habitus.fullname" . }}-config
{{- end -}}

{{/* ... and the Redis URL, which carries the password, from its Secret (env). */}}
{{- define "habitus.env" -}}
- name: HABITUS_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "habitus.redisSecret" . }}
      key: redis-url
{{- end -}}

{{/* The nodes' TLS files (nodeTls.secretName): the volume ... */}}
{{- define "habitus.nodeTlsVolume" -}}
- name: node-tls
  secret:
    secretName: {{ .Values.nodeTls.secretName }}
{{- end -}}

{{/* ... and its mount, where HABITUS_DICOM_NODES' tls_*_file paths point. */}}
{{- define "habitus.nodeTlsMount" -}}
- name: node-tls
  mountPath: /etc/habitus/node-tls
  readOnly: true
{{- end -}}

{{/* Pod annotations: a hash of the settings, so that a changed ConfigMap or Redis Secret rolls
the pods on upgrade (they read them only at start). */}}
{{- define "habitus.podAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/redis-auth: {{ include (print .Template.BasePath "/redis-secret.yaml") . | sha256sum }}
{{- end -}}

{{/* Pod security shared by the Habitus pods: a fixed non-root user, the runtime's default
seccomp profile, no service-account token (nothing here talks to the Kubernetes API). */}}
{{- define "habitus.podSecurity" -}}
automountServiceAccountToken: false
securityContext:
  runAsNonRoot: true
  {{- toYaml . | nindent 2 }}
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{/* Every container: no privileges, no capabilities, a read-only root file system (what it
writes goes to the spool claim or an emptyDir). The argument is the pod's user and group. */}}
{{- define "habitus.containerSecurity" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: {{ .runAsUser }}
  runAsGroup: {{ .runAsGroup }}
  readOnlyRootFilesystem: true
  allowPrivilegeEscalation: false
  capabilities:
    drop: [ALL]
  seccompProfile:
    type: RuntimeDefault
{{- end -}}
