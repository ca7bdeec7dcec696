# mindscape-local/gateway: like the official nginx image.
version=1.22 package=nginx
args=(--expose 80 --expose 8080 --stop-signal SIGQUIT)  # SIGQUIT: graceful, as official
cmd=(nginx -g 'daemon off;')
