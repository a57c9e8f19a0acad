{{/*
Combinations values.schema.json cannot express. Each message names the value(s) at fault and says
what is expected instead.
*/}}
{{- define "inflow.validate" -}}
{{- $v := .Values -}}
{{- $mode := $v.mode -}}
{{- $streams := or (eq $mode "self-contained") (eq $mode "sidecar") -}}

{{- /* models */ -}}
{{- $source := required "models.source is required: image, initContainer, volume or kafka (where the model repository comes from)" $v.models.source -}}
{{- if and (eq $source "initContainer") (not $v.models.initContainer.image.repository) -}}
{{- fail "models.initContainer.image.repository is required with models.source initContainer: the image that holds the model repository (e.g. busybox + COPY models/ /models/)" -}}
{{- end -}}
{{- if and (eq $source "volume") (not $v.models.volume) -}}
{{- fail "models.volume is required with models.source volume: a volume source, e.g. {persistentVolumeClaim: {claimName: models}}" -}}
{{- end -}}
{{- if and (ne $source "volume") $v.models.volume -}}
{{- fail (printf "models.volume is set but models.source is %s: set models.source to volume, or remove models.volume" $source) -}}
{{- end -}}
{{- if eq $source "kafka" -}}
{{- if not $v.kafka.bootstrapServers -}}
{{- fail "kafka.bootstrapServers is required with models.source kafka (the cluster that holds the models topic)" -}}
{{- end -}}
{{- if eq $mode "sidecar" -}}
{{- fail "models.source kafka does not work in mode sidecar: inflow serve reads the models topic only together with its Kafka-native endpoint (--kafka); give the sidecar its models by image, initContainer or volume" -}}
{{- end -}}
{{- if eq $mode "kserve" -}}
{{- fail "models.source kafka does not apply to mode kserve: KServe puts the model under /mnt/models from the InferenceService's storageUri" -}}
{{- end -}}
{{- if and (eq $mode "standalone") (not $v.server.kafkaEndpoint.enabled) -}}
{{- fail "models.source kafka needs server.kafkaEndpoint.enabled: true in mode standalone (inflow serve reads --models-topic only with --kafka, which also serves the request topic)" -}}
{{- end -}}
{{- end -}}

{{- /* Kafka credentials */ -}}
{{- if $v.kafka.sasl.enabled -}}
{{- if not $v.kafka.sasl.secretName -}}
{{- fail "kafka.sasl.secretName is required with kafka.sasl.enabled: the Secret with the password (a Strimzi KafkaUser's Secret works)" -}}
{{- end -}}
{{- if and (not $v.kafka.sasl.usernameKey) (not $v.kafka.sasl.username) -}}
{{- fail "kafka.sasl.username (or kafka.sasl.usernameKey, a key of kafka.sasl.secretName) is required with kafka.sasl.enabled" -}}
{{- end -}}
{{- end -}}
{{- if and $v.kafka.tls.clientCertSecret.name (not $v.kafka.tls.enabled) -}}
{{- fail "kafka.tls.clientCertSecret.name is set but kafka.tls.enabled is false: enable TLS to use a client certificate" -}}
{{- end -}}
{{- $serverKafka := and (has $mode (list "standalone" "sidecar")) (or $v.server.kafkaEndpoint.enabled (eq $source "kafka")) -}}
{{- if and $v.server.kafkaEndpoint.enabled (not $v.kafka.bootstrapServers) (has $mode (list "standalone" "sidecar")) -}}
{{- fail "kafka.bootstrapServers is required with server.kafkaEndpoint.enabled" -}}
{{- end -}}

{{- /* server */ -}}
{{- if and $v.server.admin.secretName (gt (int $v.server.workers) 1) -}}
{{- fail (printf "server.admin.secretName with server.workers %d: the admin API needs one worker (its calls would reach one process only); set server.workers: 1 or remove server.admin" (int $v.server.workers)) -}}
{{- end -}}
{{- if and (gt (int $v.server.workers) 1) $serverKafka -}}
{{- fail (printf "server.workers %d with the Kafka endpoint: inflow serve --kafka runs one worker; scale with server.replicas instead" (int $v.server.workers)) -}}
{{- end -}}
{{- if eq (int $v.server.restPort) (int $v.server.grpcPort) -}}
{{- fail (printf "server.restPort and server.grpcPort are both %d: they need two ports" (int $v.server.restPort)) -}}
{{- end -}}
{{- if and $v.server.autoscaling.enabled (ne $mode "standalone") -}}
{{- fail (printf "server.autoscaling.enabled applies to mode standalone; in mode %s scale with stream.autoscaling (KEDA on lag)" $mode) -}}
{{- end -}}
{{- if and $v.server.autoscaling.enabled (gt (int $v.server.autoscaling.minReplicas) (int $v.server.autoscaling.maxReplicas)) -}}
{{- fail (printf "server.autoscaling.minReplicas (%d) is above server.autoscaling.maxReplicas (%d)" (int $v.server.autoscaling.minReplicas) (int $v.server.autoscaling.maxReplicas)) -}}
{{- end -}}
{{- if and (eq $mode "sidecar") (not $v.sidecar.image.repository) -}}
{{- fail "sidecar.image.repository is required in mode sidecar: the model-server image that runs beside the stream processor (usually the inflow image itself)" -}}
{{- end -}}

{{- /* stream */ -}}
{{- if and $streams (not $v.stream.pipeline) -}}
{{- fail (printf "stream.pipeline is required in mode %s: the pipeline file of inflow stream (see examples/pipelines/)" $mode) -}}
{{- end -}}
{{- if and $streams (not $v.stream.pipeline.applicationId) -}}
{{- fail "stream.pipeline.applicationId is required: it is the consumer group (and the KEDA trigger's consumerGroup)" -}}
{{- end -}}
{{- $a := $v.stream.autoscaling -}}
{{- if and $streams $a.enabled -}}
{{- $partitions := int $a.partitions -}}
{{- $topics := splitList "," (include "inflow.sourceTopics" .) -}}
{{- if $v.kafkaTopics.enabled -}}
{{- range $v.kafkaTopics.topics -}}
{{- if and (has .name $topics) .partitions -}}
{{- if eq $partitions 0 -}}
{{- $partitions = int .partitions -}}
{{- else if ne $partitions (int .partitions) -}}
{{- fail (printf "stream.autoscaling.partitions (%d) differs from kafkaTopics.topics %s partitions (%d): the input topic's partition count bounds the replicas; make them equal" (int $a.partitions) .name (int .partitions)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if eq $partitions 0 -}}
{{- fail "stream.autoscaling.partitions is required with stream.autoscaling.enabled: the input topic's partition count (replicas above it would sit idle)" -}}
{{- end -}}
{{- $max := default $partitions (int $a.maxReplicas) | int -}}
{{- if gt $max $partitions -}}
{{- fail (printf "stream.autoscaling.maxReplicas (%d) is above stream.autoscaling.partitions (%d): a consumer group cannot use more consumers than the topic has partitions; set maxReplicas <= %d (or 0 for the partition count)" $max $partitions $partitions) -}}
{{- end -}}
{{- if gt (int $a.minReplicas) $max -}}
{{- fail (printf "stream.autoscaling.minReplicas (%d) is above stream.autoscaling.maxReplicas (%d)" (int $a.minReplicas) $max) -}}
{{- end -}}
{{- end -}}
{{- if and (eq $mode "kserve") $v.kserve.autoSelect (eq (int $v.kserve.priority) 1) -}}
{{- fail "kserve.priority 1 with kserve.autoSelect: KServe's stock kserve-tritonserver declares onnx with priority 1 and KServe refuses two autoSelect runtimes of a format with the same priority; use 2 or more (higher wins) or kserve.autoSelect: false" -}}
{{- end -}}
{{- if and $v.kafkaTopics.enabled (not $v.kafkaTopics.cluster) -}}
{{- fail "kafkaTopics.cluster is required with kafkaTopics.enabled: the Strimzi Kafka resource's name (label strimzi.io/cluster)" -}}
{{- end -}}
{{- end -}}

{{/* The replica bound of the KEDA ScaledObject (validated above). */}}
{{- define "inflow.streamMaxReplicas" -}}
{{- $a := .Values.stream.autoscaling -}}
{{- $partitions := int $a.partitions -}}
{{- if eq $partitions 0 -}}
{{- $topics := splitList "," (include "inflow.sourceTopics" .) -}}
{{- range .Values.kafkaTopics.topics -}}
{{- if and (has .name $topics) .partitions -}}{{- $partitions = int .partitions -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- default $partitions (int $a.maxReplicas) -}}
{{- end -}}
