{{/*
The pipeline file of `inflow stream`, from stream.pipeline with what the chart owns filled in:
kafka.bootstrapServers (and the SASL mechanism / TLS switches; the secrets themselves are added
by the prepare init container, never written into the ConfigMap), modelRepository: /models of
embedded sources, modelsTopic when models come from Kafka, and in sidecar mode the url of the
source that calls the sidecar.
*/}}
{{- define "inflow.pipeline" -}}
{{- $v := .Values -}}
{{- $p := deepCopy $v.stream.pipeline -}}
{{- $kafka := deepCopy (default (dict) $p.kafka) -}}
{{- if or (hasKey $kafka "sasl") (hasKey $kafka "ssl") -}}
{{- fail "stream.pipeline.kafka.sasl / stream.pipeline.kafka.ssl: credentials do not belong in values (they would land in a ConfigMap); use kafka.sasl and kafka.tls, which read them from Secrets" -}}
{{- end -}}
{{- if $v.kafka.bootstrapServers -}}
{{- $_ := set $kafka "bootstrapServers" $v.kafka.bootstrapServers -}}
{{- else if not $kafka.bootstrapServers -}}
{{- fail (printf "kafka.bootstrapServers is required in mode %s (the brokers the pipeline reads from), e.g. [my-cluster-kafka-bootstrap.kafka:9092]" $v.mode) -}}
{{- end -}}
{{- if $v.kafka.sasl.enabled -}}
{{- $_ := set $kafka "sasl" (dict "mechanism" $v.kafka.sasl.mechanism) -}}
{{- end -}}
{{- if $v.kafka.tls.enabled -}}
{{- $ssl := dict -}}
{{- with $v.kafka.tls.servername -}}{{- $_ := set $ssl "servername" . -}}{{- end -}}
{{- $_ := set $kafka "ssl" $ssl -}}
{{- end -}}
{{- $_ := set $p "kafka" $kafka -}}
{{- $models := default (dict) $p.models -}}
{{- $embedded := 0 -}}
{{- range $name, $source := $models -}}
{{- if and (kindIs "map" $source) (hasKey $source "embedded") -}}
{{- $e := default (dict) $source.embedded -}}
{{- $_ := set $source "embedded" $e -}}
{{- $embedded = add1 $embedded -}}
{{- if and $e.modelRepository (ne (toString $e.modelRepository) "/models") -}}
{{- fail (printf "stream.pipeline.models.%s.embedded.modelRepository: the chart mounts the model repository at /models (models.source); remove it or set /models, got %q" $name (toString $e.modelRepository)) -}}
{{- end -}}
{{- $_ := set $e "modelRepository" "/models" -}}
{{- if eq $v.models.source "kafka" -}}
{{- $_ := set $e "modelsTopic" $v.models.kafka.topic -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and (eq $v.mode "self-contained") (eq $embedded 0) -}}
{{- fail "stream.pipeline.models: mode self-contained runs the model inside the stream processor, so the pipeline needs an embedded model source (models: {local: {embedded: {}}}); for a model server use mode sidecar" -}}
{{- end -}}
{{- if eq $v.mode "sidecar" -}}
{{- $name := $v.sidecar.modelSource -}}
{{- $source := get $models $name -}}
{{- if not (and (kindIs "map" $source) (hasKey $source "remote") (kindIs "map" $source.remote)) -}}
{{- fail (printf "sidecar.modelSource: the pipeline has no remote model source %q to point at the sidecar; add stream.pipeline.models.%s: {remote: {protocol: oip-grpc}} (the chart sets its url)" $name $name) -}}
{{- end -}}
{{- $remote := $source.remote -}}
{{- $protocol := toString (default "" $remote.protocol) -}}
{{- $url := "" -}}
{{- if hasSuffix "-grpc" $protocol -}}
{{- $url = printf "127.0.0.1:%d" (int $v.server.grpcPort) -}}
{{- else if hasSuffix "-rest" $protocol -}}
{{- $url = printf "http://127.0.0.1:%d" (int $v.server.restPort) -}}
{{- else -}}
{{- fail (printf "stream.pipeline.models.%s.remote.protocol: expected oip-grpc, oip-rest, tfserving-grpc or tfserving-rest, got %q" $name $protocol) -}}
{{- end -}}
{{- if and $remote.url (ne (toString $remote.url) $url) -}}
{{- fail (printf "stream.pipeline.models.%s.remote.url: in sidecar mode the chart points it at the sidecar (%s); remove it, got %q" $name $url (toString $remote.url)) -}}
{{- end -}}
{{- $_ := set $remote "url" $url -}}
{{- end -}}
{{- toYaml $p -}}
{{- end -}}

{{/* The topics the stream reads (the first step's source.topic: a name or a list). */}}
{{- define "inflow.sourceTopics" -}}
{{- $steps := default (list) .Values.stream.pipeline.pipeline -}}
{{- $first := default (dict) (first $steps) -}}
{{- $topic := dig "source" "topic" "" $first -}}
{{- if kindIs "slice" $topic -}}{{- join "," $topic -}}{{- else -}}{{- $topic -}}{{- end -}}
{{- end -}}
