{{/*
Init containers that get the model repository (and, for the stream processor, the pipeline file)
ready before the app starts; they run in order. Pass (dict "ctx" $ "pipeline" true|false).
*/}}
{{- define "inflow.initContainers" -}}
{{- $ := .ctx -}}
{{- $v := $.Values -}}
{{- $layout := include "inflow.modelsLayout" $ -}}
{{- $threads := include "inflow.onnxThreads" $ -}}
{{- $render := and .pipeline (eq (include "inflow.kafkaCredentials" $) "true") -}}
{{- if eq $layout "fill" }}
# The model image holds the repository at models.initContainer.path; it needs a cp (busybox does).
- name: models
  image: {{ include "inflow.imageRef" (dict "image" $v.models.initContainer.image "default" "latest") | quote }}
  imagePullPolicy: {{ $v.models.initContainer.image.pullPolicy | default "IfNotPresent" }}
  command: ["cp", "-R", {{ printf "%s/." $v.models.initContainer.path | quote }}, "/scratch/models/"]
  resources:
    requests:
      cpu: 100m
      memory: 64Mi
    limits:
      memory: 256Mi
  securityContext:
    {{- toYaml $v.securityContext | nindent 4 }}
  volumeMounts:
    - name: models
      mountPath: /scratch/models
{{- end }}
{{- if and (eq (include "inflow.prepare" $) "true") (or $render (and $threads (ne $layout "empty"))) }}
- name: prepare
  image: {{ include "inflow.image" $ | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  command: ["node", "/opt/inflow/prepare/prepare.mjs"]
  env:
    {{- if eq $layout "copy" }}
    - name: PREPARE_MODELS_FROM
      value: {{ ternary "/scratch/models-source" "/models" (eq $v.models.source "volume") }}
    {{- end }}
    {{- if and $threads (ne $layout "empty") }}
    - name: PREPARE_MODELS_TO
      value: /scratch/models
    - name: PREPARE_ONNX_THREADS
      value: {{ $threads | quote }}
    {{- end }}
    {{- if $render }}
    - name: PREPARE_PIPELINE_IN
      value: /config-template/pipeline.yaml
    - name: PREPARE_PIPELINE_OUT
      value: /config/pipeline.yaml
    {{- end }}
  resources:
    requests:
      cpu: 100m
      memory: 64Mi
    limits:
      memory: 256Mi
  securityContext:
    {{- toYaml $v.securityContext | nindent 4 }}
  volumeMounts:
    - name: prepare
      mountPath: /opt/inflow/prepare
      readOnly: true
    {{- if and $threads (ne $layout "empty") }}
    - name: models
      mountPath: /scratch/models
    {{- end }}
    {{- if and (eq $layout "copy") (eq $v.models.source "volume") }}
    - name: models-source
      mountPath: /scratch/models-source
      readOnly: true
    {{- end }}
    {{- if $render }}
    - name: pipeline-template
      mountPath: /config-template
      readOnly: true
    - name: config
      mountPath: /config
    - name: kafka-credentials
      mountPath: /etc/inflow/kafka
      readOnly: true
    {{- end }}
{{- end }}
{{- end -}}

{{/* Volumes of the init containers, the models and /tmp. Pass (dict "ctx" $ "pipeline" true|false). */}}
{{- define "inflow.podVolumes" -}}
{{- $ := .ctx -}}
{{- $v := $.Values -}}
{{- $render := and .pipeline (eq (include "inflow.kafkaCredentials" $) "true") -}}
{{- $serverKafka := eq (include "inflow.serverKafkaSecure" $) "true" -}}
{{- $mountSecrets := or $render (and $serverKafka (eq (include "inflow.kafkaCredentials" $) "true")) -}}
# Read-only root filesystem: /tmp is the one writable place.
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- include "inflow.modelsVolume" $ }}
{{- if eq (include "inflow.prepare" $) "true" }}
- name: prepare
  configMap:
    name: {{ include "inflow.fullname" $ }}-prepare
{{- end }}
{{- if .pipeline }}
- name: {{ ternary "pipeline-template" "config" $render }}
  configMap:
    name: {{ include "inflow.fullname" $ }}-pipeline
{{- end }}
{{- if $render }}
# The pipeline with credentials, written by prepare: memory-backed, never on the node's disk.
- name: config
  emptyDir:
    medium: Memory
    sizeLimit: 1Mi
{{- end }}
{{- if $serverKafka }}
# inflow serve --kafka-config: names the Secret files below, holds no secret itself.
- name: server-kafka
  configMap:
    name: {{ include "inflow.fullname" $ }}-server-kafka
{{- end }}
{{- if $mountSecrets }}
- name: kafka-credentials
  projected:
    defaultMode: 0400
    sources:
      {{- if $v.kafka.sasl.enabled }}
      - secret:
          name: {{ $v.kafka.sasl.secretName }}
          items:
            - key: {{ $v.kafka.sasl.passwordKey }}
              path: sasl/password
            {{- with $v.kafka.sasl.usernameKey }}
            - key: {{ . }}
              path: sasl/username
            {{- end }}
      {{- if and $render (not $v.kafka.sasl.usernameKey) }}
      - secret:
          name: {{ include "inflow.fullname" $ }}-kafka-user
          items:
            - key: username
              path: sasl/username
      {{- end }}
      {{- end }}
      {{- if and $v.kafka.tls.enabled $v.kafka.tls.caSecret.name }}
      - secret:
          name: {{ $v.kafka.tls.caSecret.name }}
          items:
            - key: {{ $v.kafka.tls.caSecret.key }}
              path: tls/ca.crt
      {{- end }}
      {{- if and $v.kafka.tls.enabled $v.kafka.tls.clientCertSecret.name }}
      - secret:
          name: {{ $v.kafka.tls.clientCertSecret.name }}
          items:
            - key: {{ $v.kafka.tls.clientCertSecret.certKey }}
              path: tls/tls.crt
            - key: {{ $v.kafka.tls.clientCertSecret.keyKey }}
              path: tls/tls.key
      {{- end }}
{{- end }}
{{- end -}}
