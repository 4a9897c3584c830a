#!/bin/sh
# Container entrypoint. `serve` (the default command) serves the bundle at $MUSICREC_BUNDLE, first
# indexing $MUSICREC_CSV into it when there is no bundle yet; any other command runs `musicrec`
# with those arguments (e.g. `health 127.0.0.1:50051`, `index ...`, `query ...`).
#
#   MUSICREC_BUNDLE          bundle directory or `current` symlink   (default /data/bundles/current)
#   MUSICREC_CSV             catalog indexed at start when the bundle is missing (default /data/catalog.csv)
#   MUSICREC_PORT            gRPC port                                 (default 50051)
#   MUSICREC_METRICS_PORT    Prometheus /metrics port, empty = off     (default 9464)
#   MUSICREC_WATCH           seconds between checks of the bundle link (default 10; 0 = off)
#
# Extra arguments after `serve` go to `musicrec serve` (e.g. --token T --drain-delay 5 --log-requests).
set -eu

if [ "${1:-serve}" != "serve" ]; then
    exec musicrec "$@"
fi
[ "$#" -gt 0 ] && shift

bundle="${MUSICREC_BUNDLE:-/data/bundles/current}"
csv="${MUSICREC_CSV:-/data/catalog.csv}"

if [ ! -e "$bundle" ]; then
    if [ ! -f "$csv" ]; then
        echo "musicrec-entrypoint: no bundle at $bundle and no catalog at $csv: mount a volume at /data holding" \
             "bundles/current (made by 'musicrec index --current') or catalog.csv" >&2
        exit 2
    fi
    out="$(dirname "$bundle")/$(basename "$csv" .csv)-$(date -u +%Y%m%dT%H%M%SZ)"
    mkdir -p "$(dirname "$bundle")"
    echo "musicrec-entrypoint: no bundle at $bundle yet; indexing $csv into $out" >&2
    musicrec index "$csv" --out "$out" --current "$bundle" --quiet > /dev/null
fi

set -- --bundle "$bundle" --host 0.0.0.0 --port "${MUSICREC_PORT:-50051}" --log-format json "$@"
if [ -n "${MUSICREC_METRICS_PORT:-}" ]; then
    set -- --metrics-port "$MUSICREC_METRICS_PORT" --metrics-host 0.0.0.0 "$@"
fi
if [ "${MUSICREC_WATCH:-10}" != "0" ]; then
    set -- --watch "${MUSICREC_WATCH:-10}" "$@"
fi
exec musicrec serve "$@"
