{{/* Names, labels, images. */}}
{{- define "inflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "inflow.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "inflow.labels" -}}
app.kubernetes.io/name: {{ include "inflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{ include "inflow.commonLabels" . }}
{{- end -}}

{{/* The labels besides name and instance (pod templates add them to their selector labels). */}}
{{- define "inflow.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: inflow
{{- end -}}

{{/* Selector labels of one component (server or stream): pass (dict "ctx" $ "component" "server"). */}}
{{- define "inflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "inflow.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "inflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "inflow.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* An image reference from {repository, tag, digest}: pass (dict "image" .Values.image "default" .Chart.AppVersion). */}}
{{- define "inflow.imageRef" -}}
{{- $tag := toString (default .default .image.tag) -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "inflow.image" -}}
{{- include "inflow.imageRef" (dict "image" .Values.image "default" .Chart.AppVersion) -}}
{{- end -}}

{{/* Whole cores of a CPU quantity ("500m" → 0, "2" → 2, "1.5" → 1). */}}
{{- define "inflow.cpuCores" -}}
{{- $cpu := toString . -}}
{{- if hasSuffix "m" $cpu -}}
{{- div (trimSuffix "m" $cpu | atoi) 1000 -}}
{{- else -}}
{{- $cpu | float64 | floor | int -}}
{{- end -}}
{{- end -}}

{{/*
onnxruntime intra-op threads per session, or "" when off. The inference runs in the server
(standalone, sidecar) or in the stream container (self-contained); with --workers N each worker
has its own sessions, so the cores are shared among them.
*/}}
{{- define "inflow.onnxThreads" -}}
{{- $t := .Values.models.onnxThreads -}}
{{- if eq (toString $t) "off" -}}
{{- else if eq (toString $t) "auto" -}}
{{- $resources := ternary .Values.stream.resources .Values.server.resources (eq .Values.mode "self-contained") -}}
{{- $key := ternary "stream.resources.requests.cpu" "server.resources.requests.cpu" (eq .Values.mode "self-contained") -}}
{{- $cpu := dig "requests" "cpu" "" $resources -}}
{{- if not $cpu -}}
{{- fail (printf "models.onnxThreads: \"auto\" sizes onnxruntime's threads from %s, which is not set; set it (e.g. \"2\") or give models.onnxThreads a number or \"off\"" $key) -}}
{{- end -}}
{{- $workers := ternary 1 (int .Values.server.workers) (eq .Values.mode "self-contained") -}}
{{- max 1 (div (include "inflow.cpuCores" $cpu | int) $workers) -}}
{{- else -}}
{{- int $t -}}
{{- end -}}
{{- end -}}

{{/*
How the model repository reaches /models:
  copy    the prepare init container copies it (from the image or the volume) into the emptyDir "models"
  fill    a model init container copies it into the emptyDir "models" (source initContainer)
  empty   the emptyDir "models" starts empty and is filled from the models topic (source kafka)
  volume  the user's volume is mounted at /models as it is
  baked   the image's own /models is used as it is
*/}}
{{- define "inflow.modelsLayout" -}}
{{- $s := .Values.models.source -}}
{{- $threads := include "inflow.onnxThreads" . -}}
{{- if eq $s "initContainer" -}}fill
{{- else if eq $s "kafka" -}}empty
{{- else if $threads -}}copy
{{- else if eq $s "volume" -}}volume
{{- else -}}baked
{{- end -}}
{{- end -}}

{{/* "true" when the Kafka client of the stream processor needs credentials from Secrets. */}}
{{- define "inflow.kafkaCredentials" -}}
{{- $tls := .Values.kafka.tls -}}
{{- if or .Values.kafka.sasl.enabled (and $tls.enabled (or $tls.caSecret.name $tls.clientCertSecret.name)) -}}true{{- end -}}
{{- end -}}

{{/*
"true" when inflow serve reaches Kafka (its Kafka endpoint or the models topic) over SASL and/or
TLS: it then reads --kafka-config from the ConfigMap <fullname>-server-kafka, which names the
mounted Secrets' files (usernameFile, passwordFile, caFile, certFile, keyFile), never their content.
*/}}
{{- define "inflow.serverKafkaSecure" -}}
{{- $v := .Values -}}
{{- if and (has $v.mode (list "standalone" "sidecar")) (or $v.server.kafkaEndpoint.enabled (eq $v.models.source "kafka")) (or $v.kafka.sasl.enabled $v.kafka.tls.enabled) -}}true{{- end -}}
{{- end -}}

{{/* The --kafka-config file of inflow serve (see inflow.serverKafkaSecure). */}}
{{- define "inflow.serverKafkaConfig" -}}
{{- $v := .Values -}}
{{- $k := dict "bootstrapServers" $v.kafka.bootstrapServers "clientId" (printf "%s-server" (include "inflow.fullname" .)) -}}
{{- if $v.kafka.sasl.enabled -}}
{{- $sasl := dict "mechanism" $v.kafka.sasl.mechanism "passwordFile" "/etc/inflow/kafka/sasl/password" -}}
{{- if $v.kafka.sasl.usernameKey -}}
{{- $_ := set $sasl "usernameFile" "/etc/inflow/kafka/sasl/username" -}}
{{- else -}}
{{- $_ := set $sasl "username" $v.kafka.sasl.username -}}
{{- end -}}
{{- $_ := set $k "sasl" $sasl -}}
{{- end -}}
{{- if $v.kafka.tls.enabled -}}
{{- $ssl := dict -}}
{{- if $v.kafka.tls.caSecret.name -}}{{- $_ := set $ssl "caFile" "/etc/inflow/kafka/tls/ca.crt" -}}{{- end -}}
{{- if $v.kafka.tls.clientCertSecret.name -}}
{{- $_ := set $ssl "certFile" "/etc/inflow/kafka/tls/tls.crt" -}}
{{- $_ := set $ssl "keyFile" "/etc/inflow/kafka/tls/tls.key" -}}
{{- end -}}
{{- with $v.kafka.tls.servername -}}{{- $_ := set $ssl "servername" . -}}{{- end -}}
{{- $_ := set $k "ssl" $ssl -}}
{{- end -}}
{{- toYaml $k -}}
{{- end -}}

{{/* "true" when the prepare init container runs. */}}
{{- define "inflow.prepare" -}}
{{- $layout := include "inflow.modelsLayout" . -}}
{{- $streams := or (eq .Values.mode "self-contained") (eq .Values.mode "sidecar") -}}
{{- if or (and (include "inflow.onnxThreads" .) (ne $layout "empty")) (and $streams (include "inflow.kafkaCredentials" .)) -}}true{{- end -}}
{{- end -}}

{{/* Is the models volume written at run time (delivered versions)? */}}
{{- define "inflow.modelsReadOnly" -}}
{{- if ne .Values.models.source "kafka" -}}true{{- end -}}
{{- end -}}

{{/* The emptyDir / volume named "models", when the layout has one. */}}
{{- define "inflow.modelsVolume" -}}
{{- $layout := include "inflow.modelsLayout" . -}}
{{- if has $layout (list "copy" "fill" "empty") }}
- name: models
  emptyDir:
    sizeLimit: {{ .Values.models.emptyDirSizeLimit }}
{{- end }}
{{- if or (eq $layout "volume") (and (eq $layout "copy") (eq .Values.models.source "volume")) }}
- name: {{ ternary "models" "models-source" (eq $layout "volume") }}
  {{- toYaml .Values.models.volume | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The mount of /models in a container that uses the repository. */}}
{{- define "inflow.modelsMount" -}}
{{- if ne (include "inflow.modelsLayout" .) "baked" }}
- name: models
  mountPath: /models
  readOnly: {{ include "inflow.modelsReadOnly" . | eq "true" }}
{{- end }}
{{- end -}}

{{/* Environment every inflow container gets. */}}
{{- define "inflow.commonEnv" -}}
- name: ORT_DISABLE_TELEMETRY
  value: "1"
- name: INFLOW_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end -}}

{{/* Topology spread over zones and nodes unless the user gave constraints: pass (dict "ctx" $ "component" "server"). */}}
{{- define "inflow.topologySpread" -}}
{{- if .ctx.Values.topologySpreadConstraints -}}
{{- toYaml .ctx.Values.topologySpreadConstraints -}}
{{- else -}}
{{- range $key := list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
- maxSkew: 1
  topologyKey: {{ $key }}
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- include "inflow.selectorLabels" (dict "ctx" $.ctx "component" $.component) | nindent 6 }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* Pod-level settings shared by the Deployments. */}}
{{- define "inflow.podCommon" -}}
serviceAccountName: {{ include "inflow.serviceAccountName" . }}
automountServiceAccountToken: false
enableServiceLinks: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
