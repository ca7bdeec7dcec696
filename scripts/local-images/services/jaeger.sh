# mindscape-local/jaeger: like jaegertracing/jaeger:2.13.0 (its entrypoint is /cmd/jaeger/jaeger-linux, here
# /usr/local/bin/jaeger; user 10001, OTLP on 4317/4318, query API on 16686, /tmp a volume), built from its Go module with this
# machine's Go. Jaeger v2 releases are tagged v1.x in Go: v1.76.0 is v2.13.0. Its go.mod has a
# replace line, so it is built as a tool dependency of a module of ours that repeats it.
# The UI's assets are not in the Go module: this binary serves the query API and a placeholder page.
version=2.13.0 go_module=github.com/jaegertracing/jaeger go_package=cmd/jaeger
go_version=v1.76.0 go_release=v2.13.0 go_mode=tool go_binary=/usr/local/bin/jaeger
go_replace="github.com/Shopify/sarama=github.com/Shopify/sarama@v1.33.0"
go_ldflags="-X github.com/jaegertracing/jaeger/internal/version.latestVersion=v2.13.0"
args=(--entrypoint /usr/local/bin/jaeger --user 10001 --env JAEGER_LISTEN_HOST=0.0.0.0
    --expose 4317 --expose 4318 --expose 16686 --expose 16685 --expose 13133 --expose 8888)
cmd=()
volume=/tmp
