#!/bin/sh
# Runs ONCE inside the freshly debootstrapped rootfs (via chroot), before the rootfs is cached
# as a tarball. It makes Debian's layout look like the official images' where configs or
# volumes depend on it, and trims what no container needs. Our own entrypoints and default
# configs are NOT added here: the builder lays mindscape_ops/images/rootfs/ on top
# later, so editing them does not cost a new debootstrap.
set -eu

# Official nginx configs start with `user nginx;`; Debian only has www-data.
id nginx >/dev/null 2>&1 ||
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin nginx

# postgresql-common created a cluster in /var/lib/postgresql/15/main; the entrypoint runs
# initdb in $PGDATA instead, so that cluster is dead weight (and a confusing second config).
rm -rf /var/lib/postgresql/15 /etc/postgresql/15

# The official image patches the sample that initdb copies, so every data directory listens
# on all interfaces unless told otherwise. Same here.
sed -ri "s!^#?(listen_addresses)\s*=\s*\S+.*!\1 = '*'!" /usr/share/postgresql/15/postgresql.conf.sample
grep -q "^listen_addresses = '\*'" /usr/share/postgresql/15/postgresql.conf.sample

# The official postgres image runs with LANG=en_US.utf8, so dumps taken from it name that
# locale (CREATE DATABASE ... LOCALE 'en_US.utf8'); it must exist here for restores to work.
localedef -i en_US -c -f UTF-8 -A /usr/share/locale/locale.alias en_US.UTF-8

# Data and socket directories the official images provide (owned by the user each runs as).
install -d -o postgres -g postgres -m 3777 /var/run/postgresql
install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data
install -d -o postgres -g postgres /var/log/postgresql
install -d -o redis -g redis -m 0755 /data
install -d -o nobody -g nogroup /prometheus /alertmanager
install -d /etc/alertmanager /usr/local/etc/redis

# Binary names the official images use (bookworm has merged /usr, so /bin/x is /usr/bin/x).
ln -sf prometheus-alertmanager /usr/bin/alertmanager
ln -sf prometheus-postgres-exporter /usr/bin/postgres_exporter
ln -sf prometheus-redis-exporter /usr/bin/redis_exporter
ln -sf /usr/bin/prometheus-redis-exporter /redis_exporter
# prom/prometheus keeps its console files here (and older versions' CMD names these paths).
install -d /usr/share/prometheus
ln -sfn /etc/prometheus/consoles /usr/share/prometheus/consoles
ln -sfn /etc/prometheus/console_libraries /usr/share/prometheus/console_libraries

# nginx logs go to the container's stdout/stderr, as in the official image.
ln -sf /dev/stdout /var/log/nginx/access.log
ln -sf /dev/stderr /var/log/nginx/error.log
# Debian's default site would listen on :80 next to whatever a mounted config says.
rm -f /etc/nginx/sites-enabled/default
# The official image's temp-file directory, which configs written for it may name.
install -d /var/cache/nginx

# Trim: documentation (keeping the copyright files), translations, apt caches and lists,
# logs, and moment-timezone's 210 MB of raw tz data (Prometheus' UI uses only the bundled
# moment-timezone-with-data.min.js next to it).
find /usr/share/doc -type f ! -name copyright -delete
find /usr/share/doc -type d -empty -delete
rm -rf /usr/share/man/* /usr/share/info/* /usr/share/lintian /var/cache/apt/* \
    /var/lib/apt/lists/* /var/cache/debconf/*-old /var/lib/dpkg/*-old \
    /usr/share/javascript/moment-timezone/data
find /usr/share/locale -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
find /var/log -type f -delete
# Docker bind-mounts its own; the build host's values must not leak into the image.
: >/etc/resolv.conf
: >/etc/hostname
