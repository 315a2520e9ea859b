{{/* Names and labels. */}}
{{- define "graphserve.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "graphserve.fullname" -}}
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

{{- define "graphserve.selectorLabels" -}}
app.kubernetes.io/name: {{ include "graphserve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "graphserve.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "graphserve.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "graphserve.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The Secret holding the API key, or "" when none is required. */}}
{{- define "graphserve.apiKeySecret" -}}
{{- if .Values.apiKey.existingSecret }}{{ .Values.apiKey.existingSecret }}
{{- else if .Values.apiKey.value }}{{ include "graphserve.fullname" . }}-api-key
{{- end }}
{{- end }}

{{/* "true" when the chart creates the API-key Secret from apiKey.value. */}}
{{- define "graphserve.createsApiKeySecret" -}}
{{- if and .Values.apiKey.value (not .Values.apiKey.existingSecret) }}true{{ end }}
{{- end }}

{{/* model.path as the server sees it: relative to /models, or absolute inside /models. */}}
{{- define "graphserve.modelPath" -}}
{{- $p := required "model.path is required with mode=model" .Values.model.path }}
{{- if hasPrefix "/" $p }}
{{- $clean := trimSuffix "/" $p }}
{{- if or (eq $clean "/models") (hasPrefix "/models/" $clean) }}{{ $clean }}
{{- else }}{{ fail (printf "model.path %q is outside /models, where the models volume is mounted: give a path relative to /models, or one under /models/" $p) }}
{{- end }}
{{- else }}{{ printf "/models/%s" (trimSuffix "/" $p) }}
{{- end }}
{{- end }}

{{/* The fewest pods the Deployment runs: the HPA's minimum, or replicaCount. */}}
{{- define "graphserve.minReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ int64 .Values.autoscaling.minReplicas }}{{ else }}{{ int64 .Values.replicaCount }}{{ end }}
{{- end }}

{{/* The most pods the Deployment runs. */}}
{{- define "graphserve.maxReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ int64 .Values.autoscaling.maxReplicas }}{{ else }}{{ int64 .Values.replicaCount }}{{ end }}
{{- end }}

{{/* The models volume's source, checked against the mode. */}}
{{- define "graphserve.modelsVolume" -}}
{{- $m := .Values.models }}
{{- if eq $m.source "pvc" }}
persistentVolumeClaim:
  claimName: {{ include "graphserve.fullname" . }}-models
{{- else if eq $m.source "existingClaim" }}
persistentVolumeClaim:
  claimName: {{ required "models.existingClaim is required with models.source=existingClaim" $m.existingClaim }}
{{- else if eq $m.source "hostPath" }}
hostPath:
  path: {{ required "models.hostPath.path is required with models.source=hostPath" $m.hostPath.path }}
  type: {{ $m.hostPath.type }}
{{- else if eq $m.source "emptyDir" }}
emptyDir:
  sizeLimit: {{ $m.emptyDir.sizeLimit }}
{{- end }}
{{- end }}

{{/* What the server container runs (the image's entrypoint is graphserve). */}}
{{- define "graphserve.args" -}}
{{- $v := .Values }}
{{- if eq $v.mode "demo" }}
- demo
{{- end }}
- --rest_port
- {{ $v.server.restPort | quote }}
- --rest_bind_address
- 0.0.0.0
{{- if eq $v.mode "model" }}
- --model_name
- {{ required "model.name is required with mode=model" $v.model.name | quote }}
- --model_path
- {{ include "graphserve.modelPath" . | quote }}
{{- else if eq $v.mode "config" }}
- --config_path
- /etc/graphserve/config/config.json
- --file_system_poll_wait_seconds
- {{ $v.server.pollSeconds | quote }}
{{- else if eq $v.mode "sourceModel" }}
- --model_name
- {{ default $v.sourceModel.repository $v.sourceModel.name | quote }}
- --model_path
- {{ printf "/models/%s" $v.sourceModel.repository | quote }}
{{- end }}
- --log_level
- {{ $v.server.logLevel }}
- --shutdown_grace_seconds
- {{ $v.server.shutdownGraceSeconds | quote }}
{{- if $v.metrics.enabled }}
- --metrics_enable
{{- end }}
{{- if include "graphserve.apiKeySecret" . }}
- --api_key_file
- /etc/graphserve/api-key/api-key
{{- end }}
{{- range $v.server.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/* The init container's `graphserve --pull` command line. */}}
{{- define "graphserve.pullArgs" -}}
{{- $s := .Values.sourceModel }}
- --pull
- --source_model
- {{ required "sourceModel.repository is required with mode=sourceModel" $s.repository | quote }}
- --model_repository_path
- /models
- --model_name
- {{ default $s.repository $s.name | quote }}
- --task
- {{ $s.task }}
{{- if $s.overwrite }}
- --overwrite_models
{{- end }}
{{- range $k, $val := $s.graphOptions }}
- --{{ $k }}
- {{ $val | toString | quote }}
{{- end }}
{{- end }}

{{- define "graphserve.terminationGracePeriodSeconds" -}}
{{- $drain := add .Values.server.shutdownGraceSeconds .Values.preStopSleepSeconds }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $drain 10 }}
{{- else if le (int64 .Values.terminationGracePeriodSeconds) (int64 $drain) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must exceed preStopSleepSeconds + server.shutdownGraceSeconds (%v), or requests in flight are killed" .Values.terminationGracePeriodSeconds $drain) }}
{{- else }}
{{- int64 .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/* Mode/volume combinations the schema cannot express. */}}
{{- define "graphserve.checks" -}}
{{- $v := .Values }}
{{- if and (has $v.mode (list "model" "sourceModel")) (eq $v.models.source "none") }}
{{- fail (printf "mode=%s reads /models: set models.source (pvc, existingClaim, hostPath%s)" $v.mode (ternary ", emptyDir" "" (eq $v.mode "sourceModel"))) }}
{{- end }}
{{- if and (eq $v.models.source "emptyDir") (ne $v.mode "sourceModel") }}
{{- fail "models.source=emptyDir starts empty: only mode=sourceModel fills it" }}
{{- end }}
{{- if and (eq $v.mode "model") (has ".." (splitList "/" $v.model.path)) }}
{{- fail "model.path must stay under /models (no \"..\")" }}
{{- end }}
{{- if and (eq $v.mode "sourceModel") $v.sourceModel.overwrite (ne $v.models.source "emptyDir") }}
{{- fail "sourceModel.overwrite would download again at every pod start (restarts, scale-ups) and swap the folder under the replicas serving it: use it only with models.source=emptyDir (one copy per pod); to refresh a shared volume, run `graphserve --pull --overwrite_models` once (a Job) while no replica serves it" }}
{{- end }}
{{- $maxPods := int64 (include "graphserve.maxReplicas" .) }}
{{- if and (eq $v.models.source "pvc") (gt $maxPods 1) (or (has "ReadWriteOnce" $v.models.pvc.accessModes) (has "ReadWriteOncePod" $v.models.pvc.accessModes)) (not (has "ReadWriteMany" $v.models.pvc.accessModes)) }}
{{- fail (printf "models.pvc.accessModes %v with up to %d pods: a ReadWriteOnce claim mounts on one node only, so pods scheduled elsewhere stay Pending; use [ReadWriteMany], or replicaCount/autoscaling.maxReplicas 1" $v.models.pvc.accessModes $maxPods) }}
{{- end }}
{{- if $v.podDisruptionBudget.enabled }}
{{- $pdb := $v.podDisruptionBudget }}
{{- $minPods := int64 (include "graphserve.minReplicas" .) }}
{{- if not (kindIs "invalid" $pdb.minAvailable) }}
{{- $blocks := false }}
{{- if kindIs "string" $pdb.minAvailable }}
{{- /* A percentage rounds up: ceil(p% of n) >= n when p*n > 100*(n-1). */}}
{{- $blocks = gt (mul (int64 (trimSuffix "%" $pdb.minAvailable)) $minPods) (mul 100 (sub $minPods 1)) }}
{{- else }}
{{- $blocks = ge (int64 $pdb.minAvailable) $minPods }}
{{- end }}
{{- if $blocks }}
{{- fail (printf "podDisruptionBudget.minAvailable %v with %d pod(s) lets no pod be evicted: node drains would block; lower it, use maxUnavailable, or disable the budget" $pdb.minAvailable $minPods) }}
{{- end }}
{{- else if or (eq (toString $pdb.maxUnavailable) "0") (eq (toString $pdb.maxUnavailable) "0%") }}
{{- fail "podDisruptionBudget.maxUnavailable 0 lets no pod be evicted: node drains would block" }}
{{- end }}
{{- end }}
{{- if and (eq $v.mode "config") (empty $v.configJson) }}
{{- fail "mode=config needs configJson (OVMS's config.json, e.g. model_config_list)" }}
{{- end }}
{{- if and $v.autoscaling.enabled (not (or $v.autoscaling.queueDepth.enabled $v.autoscaling.cpu.enabled)) }}
{{- fail "autoscaling.enabled needs autoscaling.queueDepth.enabled or autoscaling.cpu.enabled" }}
{{- end }}
{{- if and $v.autoscaling.enabled $v.autoscaling.queueDepth.enabled (not $v.metrics.enabled) }}
{{- fail "autoscaling.queueDepth needs metrics.enabled: the queue depth is read from /metrics" }}
{{- end }}
{{- if and $v.autoscaling.enabled $v.autoscaling.cpu.enabled (not (and $v.resources.requests $v.resources.requests.cpu)) }}
{{- fail "autoscaling.cpu needs resources.requests.cpu: utilisation is a share of the request" }}
{{- end }}
{{- if and $v.autoscaling.enabled (gt (int64 $v.autoscaling.minReplicas) (int64 $v.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- end }}
