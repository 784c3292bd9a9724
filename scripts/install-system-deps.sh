#!/usr/bin/env bash
# Installs the Debian packages Lauks runs on (Mosquitto, its clients, InfluxDB 1.x, Node.js) and tests with
# (strace; PostgreSQL, for the metadata store's tests; Chromium, for the browser tests) if any is missing.
# Fast when everything is there: it only looks.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
missing=()
command -v mosquitto >/dev/null || missing+=(mosquitto)
command -v mosquitto_pub >/dev/null || missing+=(mosquitto-clients)
command -v influxd >/dev/null || missing+=(influxdb)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v strace >/dev/null || missing+=(strace)  # the secret-file tests watch how files are created
command -v openssl >/dev/null || missing+=(openssl)  # lauks tls init
# The browser tests (tests/web) drive it through Playwright: Playwright's own browser download cannot work here
command -v chromium >/dev/null || missing+=(chromium)
# The tests start their own PostgreSQL server from Debian's programs (off PATH, in /usr/lib/postgresql/<version>/bin)
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing Debian packages: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root (or sudo) to apt-get install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's packages may start their own services; Lauks runs its own on other ports, so that is harmless.
