# mindscape-local/node_exporter: like prom/node-exporter.
version=1.5 package=prometheus-node-exporter
args=(--entrypoint /usr/bin/prometheus-node-exporter --user nobody --expose 9100)
