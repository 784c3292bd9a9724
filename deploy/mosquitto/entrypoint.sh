#!/bin/sh
# Start Mosquitto with the users, ACL and certificates that Lauks renders on the host (mounted read-only
# at /lauks/broker and /lauks/tls), and reload it (SIGHUP, no restart) whenever they change, so that
# `lauks kit add` and `lauks kit revoke` take effect within a few seconds.
set -eu

AUTH=/mosquitto/auth
mkdir -p "$AUTH" /mosquitto/data

stamp() {
    cat /lauks/broker/passwd /lauks/broker/acl /lauks/tls/broker.crt /lauks/tls/broker.key 2>/dev/null | md5sum
}

install_files() {
    for f in /lauks/broker/passwd /lauks/broker/acl /lauks/tls/broker.crt /lauks/tls/broker.key; do
        if [ ! -f "$f" ]; then
            echo "lauks: $f is missing: run 'lauks deploy init' on the host first" >&2
            exit 1
        fi
        cp "$f" "$AUTH/$(basename "$f").new"
        chown mosquitto:mosquitto "$AUTH/$(basename "$f").new"
        chmod 0600 "$AUTH/$(basename "$f").new"
        mv "$AUTH/$(basename "$f").new" "$AUTH/$(basename "$f")"
    done
    chown mosquitto:mosquitto /mosquitto/data
}

install_files
last=$(stamp)
mosquitto -c /mosquitto/config/mosquitto.conf &
broker=$!
trap 'kill -TERM "$broker" 2>/dev/null; wait "$broker"; exit 0' TERM INT

while kill -0 "$broker" 2>/dev/null; do
    sleep "${LAUKS_RELOAD_CHECK_S:-3}" &
    wait $! || true
    now=$(stamp)
    if [ "$now" != "$last" ]; then
        install_files
        kill -HUP "$broker"
        echo "lauks: broker users or certificates changed; reloaded"
        last=$now
    fi
done
wait "$broker"
