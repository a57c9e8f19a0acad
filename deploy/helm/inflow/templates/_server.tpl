{{/*
The model-server container: the standalone Deployment's, and the native sidecar of sidecar mode
(then it is an init container with restartPolicy: Always, started and past its startup probe
before the stream container starts, and stopped after it).
Pass (dict "ctx" $ "sidecar" true|false).
*/}}
{{- define "inflow.serverContainer" -}}
{{- $ := .ctx -}}
{{- $v := $.Values -}}
{{- $s := $v.server -}}
{{- $image := ternary $v.sidecar.image $v.image .sidecar -}}
- name: {{ ternary "model-server" "server" .sidecar }}
  image: {{ include "inflow.imageRef" (dict "image" $image "default" $.Chart.AppVersion) | quote }}
  imagePullPolicy: {{ $image.pullPolicy | default "IfNotPresent" }}
  {{- if .sidecar }}
  restartPolicy: Always
  {{- end }}
  args:
    - serve
    - --model-repository
    - /models
    - --rest-port
    - {{ $s.restPort | quote }}
    - --grpc-port
    - {{ $s.grpcPort | quote }}
    {{- if gt (int $s.workers) 1 }}
    - --workers
    - {{ $s.workers | quote }}
    {{- end }}
    {{- if or $s.kafkaEndpoint.enabled (eq $v.models.source "kafka") }}
    {{- if eq (include "inflow.serverKafkaSecure" $) "true" }}
    # SASL/TLS settings, with the credentials read from the mounted Secrets' files.
    - --kafka-config
    - /etc/inflow/server-kafka/kafka.yaml
    {{- end }}
    - --kafka
    - {{ join "," $v.kafka.bootstrapServers | quote }}
    - --request-topic
    - {{ $s.kafkaEndpoint.requestTopic | quote }}
    - --response-topic
    - {{ $s.kafkaEndpoint.responseTopic | quote }}
    - --error-topic
    - {{ $s.kafkaEndpoint.errorTopic | quote }}
    - --group
    - {{ $s.kafkaEndpoint.group | quote }}
    {{- with $s.kafkaEndpoint.defaultModel }}
    - --default-model
    - {{ . | quote }}
    {{- end }}
    {{- if $s.kafkaEndpoint.exactlyOnce }}
    - --exactly-once
    {{- end }}
    {{- if eq $v.models.source "kafka" }}
    - --models-topic
    - {{ $v.models.kafka.topic | quote }}
    {{- end }}
    {{- end }}
    {{- range $s.extraArgs }}
    - {{ . | quote }}
    {{- end }}
  ports:
    - name: http
      containerPort: {{ $s.restPort }}
      protocol: TCP
    - name: grpc
      containerPort: {{ $s.grpcPort }}
      protocol: TCP
  env:
    {{- include "inflow.commonEnv" $ | nindent 4 }}
    {{- with $s.auth.secretName }}
    - name: INFLOW_AUTH_TOKEN
      valueFrom:
        secretKeyRef:
          name: {{ . }}
          key: {{ $s.auth.key }}
    {{- end }}
    {{- with $s.admin.secretName }}
    - name: INFLOW_ADMIN_TOKEN
      valueFrom:
        secretKeyRef:
          name: {{ . }}
          key: {{ $s.admin.key }}
    {{- end }}
    {{- with $s.env }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  # Model loading and warm-up happen before the server reports ready: the startup probe gives
  # them periodSeconds × failureThreshold; liveness only starts after it (and never depends on Kafka).
  startupProbe:
    httpGet:
      path: /v2/health/ready
      port: http
    periodSeconds: {{ $s.startupProbe.periodSeconds }}
    failureThreshold: {{ $s.startupProbe.failureThreshold }}
  readinessProbe:
    httpGet:
      path: /v2/health/ready
      port: http
    periodSeconds: {{ $s.readinessProbe.periodSeconds }}
    timeoutSeconds: {{ $s.readinessProbe.timeoutSeconds }}
    failureThreshold: {{ $s.readinessProbe.failureThreshold }}
  livenessProbe:
    httpGet:
      path: /v2/health/live
      port: http
    periodSeconds: {{ $s.livenessProbe.periodSeconds }}
    timeoutSeconds: {{ $s.livenessProbe.timeoutSeconds }}
    failureThreshold: {{ $s.livenessProbe.failureThreshold }}
  {{- if and (not .sidecar) (gt (int $s.preStopSleepSeconds) 0) }}
  # Endpoints drop the pod asynchronously: keep serving while they catch up, then SIGTERM drains.
  lifecycle:
    preStop:
      sleep:
        seconds: {{ $s.preStopSleepSeconds }}
  {{- end }}
  resources:
    {{- toYaml $s.resources | nindent 4 }}
  securityContext:
    {{- toYaml $v.securityContext | nindent 4 }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
    {{- include "inflow.modelsMount" $ | nindent 4 }}
    {{- if eq (include "inflow.serverKafkaSecure" $) "true" }}
    - name: server-kafka
      mountPath: /etc/inflow/server-kafka
      readOnly: true
    {{- if eq (include "inflow.kafkaCredentials" $) "true" }}
    - name: kafka-credentials
      mountPath: /etc/inflow/kafka
      readOnly: true
    {{- end }}
    {{- end }}
{{- end -}}
