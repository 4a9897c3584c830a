#!/usr/bin/env bash
# Build the image, run it the two ways it starts (indexing a mounted CSV, then serving the mounted
# bundle), probe it (musicrec health, the image's HEALTHCHECK, /metrics, a query), stop it with
# SIGTERM and check it drained and exited 0. Needs docker or podman; CI does not run it.
#
#   deploy/smoke.sh                       # docker if its daemon answers, else podman
#   CONTAINER_RUNTIME=podman deploy/smoke.sh
#   BUILD_FLAGS="--secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt" deploy/smoke.sh
#   BUILD_FLAGS="--build-arg PYTHON_IMAGE=localhost/python:3.11" deploy/smoke.sh   # a local base image
set -euo pipefail
cd "$(dirname "$0")/.."

rt="${CONTAINER_RUNTIME:-}"
if [ -z "$rt" ]; then
    if docker info > /dev/null 2>&1; then rt=docker; elif command -v podman > /dev/null; then rt=podman; else
        echo "smoke: neither a docker daemon nor podman is available" >&2; exit 2; fi
fi
image="${IMAGE:-musicrec:smoke}"
name="musicrec-smoke-$$"
grpc_port="${GRPC_PORT:-15051}"
metrics_port="${METRICS_PORT:-19464}"
data="$(mktemp -d)"
chmod 0777 "$data"  # the image runs as uid 10001 and writes the bundle it indexes here
failures=0

empty="$(mktemp -d)"  # a data directory with neither bundle nor catalog (the last step)
chmod 0777 "$empty"
# The container (uid 10001) wrote the bundles, which the user running this may not remove: the image removes them,
# then the directories go. A cleanup that failed turned a passing run's exit status into 1 (set -e in the trap).
cleanup() {
    "$rt" rm -f "$name" > /dev/null 2>&1 || true
    "$rt" run --rm -v "$data:/data" --entrypoint sh "$image" -c 'rm -rf /data/* /data/.[!.]*' > /dev/null 2>&1 || true
    rm -rf "$data" "$empty" 2> /dev/null || echo "smoke: could not remove $data" >&2
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }
ok() { printf 'ok:   %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*"; failures=$((failures + 1)); }

wait_serving() {  # bounded poll of the probe inside the container
    for _ in $(seq 1 300); do
        if "$rt" exec "$name" musicrec health 127.0.0.1:50051 --timeout 2 > /dev/null 2>&1; then return 0; fi
        if [ "$("$rt" inspect --format '{{.State.Running}}' "$name")" != "true" ]; then
            "$rt" logs "$name" 2>&1 | tail -20; return 1; fi
        sleep 2
    done
    return 1
}

stop_and_check() {
    local t0 code
    t0=$(date +%s)
    "$rt" stop -t 30 "$name" > /dev/null
    code="$("$rt" inspect --format '{{.State.ExitCode}}' "$name")"
    [ "$code" = 0 ] && ok "SIGTERM: drained and exited 0 in $(( $(date +%s) - t0 )) s" || fail "exit code $code after SIGTERM"
    if "$rt" logs "$name" 2>&1 | grep -q '^{.*"event": "shutdown"'; then ok "shutdown logged as JSON"
    else fail "no JSON shutdown line"; "$rt" logs "$name" 2>&1 | tail -5; fi
    "$rt" rm "$name" > /dev/null
}

step "build ($rt)"
build_flags=(${BUILD_FLAGS:-})
[ "$rt" = podman ] && build_flags+=(--format docker)  # keeps HEALTHCHECK in the image
"$rt" build "${build_flags[@]}" -t "$image" .
"$rt" image inspect --format '{{.Config.User}} {{json .Config.Healthcheck.Test}} {{json .Config.ExposedPorts}}' "$image"

step "a synthetic catalog, written by the image itself (any command other than serve runs musicrec)"
"$rt" run --rm -v "$data:/data" "$image" synth --out /data/catalog.csv --tracks 3000

step "first start: no bundle, so it indexes /data/catalog.csv, then serves"
"$rt" run -d --name "$name" -p "127.0.0.1:$grpc_port:50051" -p "127.0.0.1:$metrics_port:9464" \
    -v "$data:/data" "$image" serve --drain-delay 1 > /dev/null
if wait_serving; then ok "musicrec health: SERVING"; else fail "never SERVING"; exit 1; fi
[ "$("$rt" exec "$name" id -u)" = 10001 ] && ok "runs as uid 10001" || fail "not uid 10001"
if [ "$rt" = podman ]; then
    "$rt" healthcheck run "$name" && ok "HEALTHCHECK passes" || fail "HEALTHCHECK fails"
else
    for _ in $(seq 1 60); do [ "$("$rt" inspect --format '{{.State.Health.Status}}' "$name")" = healthy ] && break; sleep 2; done
    [ "$("$rt" inspect --format '{{.State.Health.Status}}' "$name")" = healthy ] && ok "HEALTHCHECK: healthy" \
        || fail "HEALTHCHECK: $("$rt" inspect --format '{{.State.Health.Status}}' "$name")"
fi
"$rt" exec "$name" musicrec query --address 127.0.0.1:50051 info && ok "a query answers" || fail "query"
if command -v curl > /dev/null; then
    metrics="$(curl -fsS "http://127.0.0.1:$metrics_port/metrics")" || metrics=""
    grep -q '^musicrec_bundle_info{' <<< "$metrics" && ok "/metrics from the host: $(grep '^musicrec_bundle_info' <<< "$metrics")" \
        || fail "/metrics not reachable on 127.0.0.1:$metrics_port"
    grep -q 'musicrec_rpc_requests_total{grpc_code="OK",grpc_method="Check"' <<< "$metrics" && ok "health checks counted" \
        || fail "no health checks in /metrics"
fi
if [ -x .venv/bin/musicrec ]; then
    .venv/bin/musicrec health "127.0.0.1:$grpc_port" && ok "gRPC from the host" || fail "gRPC port not reachable from the host"
fi
stop_and_check

step "second start: the bundle built above is mounted, nothing is indexed"
"$rt" run -d --name "$name" -e MUSICREC_CSV=/nonexistent.csv -v "$data:/data" "$image" > /dev/null
if wait_serving; then ok "SERVING from the mounted bundle ($(ls "$data/bundles"))"; else fail "never SERVING"; fi
stop_and_check

step "no bundle and no catalog: a clear error"
out="$("$rt" run --rm -v "$empty:/data" "$image" 2>&1)" && code=0 || code=$?
[ "$code" = 2 ] && grep -q "no bundle at" <<< "$out" && ok "exit 2: $out" || fail "exit $code: $out"

echo
[ "$failures" = 0 ] && echo "smoke: all passed ($rt)" || { echo "smoke: $failures failed ($rt)"; exit 1; }
