# mindscape-local/victorialogs: like victoriametrics/victoria-logs (entrypoint /victoria-logs-prod,
# HTTP on 9428, data in /victoria-logs-data), built from its Go module with this machine's Go.
version=1.52 go_module=github.com/VictoriaMetrics/VictoriaLogs go_package=app/victoria-logs
go_version=v1.52.1 go_mode=install go_binary=/victoria-logs-prod
go_ldflags="-X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=victoria-logs-v1.52.1"
args=(--entrypoint /victoria-logs-prod --expose 9428 --expose 514/udp --expose 514)
cmd=(-storageDataPath=/victoria-logs-data)
volume=/victoria-logs-data
