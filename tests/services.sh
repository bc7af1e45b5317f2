#!/usr/bin/env bash
# Installs and starts the local services Weft's tests and `make run` use, on
# a Debian machine, as root. Idempotent: what is there is left alone.
#
# The test harness (tests/harness) starts its own ClickHouse, etcd and
# kube-apiserver instances on free loopback ports and installs chDB, the
# kube-apiserver build and the Pinpoint Node agent into its cache on first use;
# this script provides the Debian packages they come from and the machine's
# PostgreSQL and MariaDB.
set -euo pipefail

need_pkgs=()
command -v clickhouse-server >/dev/null || need_pkgs+=(clickhouse-server)
command -v clickhouse-client >/dev/null || need_pkgs+=(clickhouse-client)
command -v etcd >/dev/null || need_pkgs+=(etcd-server)
command -v node >/dev/null || need_pkgs+=(nodejs)
command -v npm >/dev/null || need_pkgs+=(npm)
command -v psql >/dev/null || need_pkgs+=(postgresql)
command -v mariadbd >/dev/null || need_pkgs+=(mariadb-server)

if ((${#need_pkgs[@]})); then
  echo "services: installing ${need_pkgs[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_pkgs[@]}"
fi

# The ClickHouse server `make run` writes to (distro/config.yaml), on its
# default loopback ports 9000 and 8123. Tests start instances of their own on
# free ports and never use this one.
if ! clickhouse-client --query "SELECT 1" >/dev/null 2>&1; then
  echo "services: starting ClickHouse"
  start-stop-daemon --start --oknodo --background --chuid clickhouse \
    --exec /usr/sbin/clickhouse-server -- --config-file=/etc/clickhouse-server/config.xml
  for _ in $(seq 60); do clickhouse-client --query "SELECT 1" >/dev/null 2>&1 && break; sleep 0.5; done
fi
clickhouse-client --query "SELECT 'clickhouse ' || version()"

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
  for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
fi
pg_isready -h 127.0.0.1 -p 5432

if ! mariadb-admin -uroot -h 127.0.0.1 ping >/dev/null 2>&1; then
  echo "services: starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 100); do mariadb-admin -uroot -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.2; done
fi
mariadb-admin -uroot -h 127.0.0.1 ping

# The metadata database of distro/config.yaml (k8s_metadata): role and
# database "weft", password "weft", on the local PostgreSQL.
if ! runuser -u postgres -- psql -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'weft'" | grep -q 1; then
  echo "services: creating PostgreSQL role weft"
  runuser -u postgres -- psql -q -c "CREATE ROLE weft LOGIN PASSWORD 'weft'"
fi
if ! runuser -u postgres -- psql -tAc "SELECT 1 FROM pg_database WHERE datname = 'weft'" | grep -q 1; then
  echo "services: creating PostgreSQL database weft"
  runuser -u postgres -- createdb -O weft weft
fi
