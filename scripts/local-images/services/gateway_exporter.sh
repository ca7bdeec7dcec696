# mindscape-local/gateway_exporter: like ghcr.io/google/mtail (entrypoint mtail, metrics on
# :3903), from Debian's mtail; mindscape runs it with --progs /etc/mtail and
# --logs udp://0.0.0.0:5140, where the gateway sends one syslog line per request.
version=3.0 package=mtail
args=(--entrypoint /usr/bin/mtail --user nobody --expose 3903 --expose 5140/udp)
cmd=(--progs /etc/mtail --logs udp://0.0.0.0:5140 --logtostderr)
