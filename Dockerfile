# musicrec: the gRPC server with Prometheus metrics, as a container (README "Operating").
#
#   docker build -t musicrec .
#   docker run -p 50051:50051 -p 9464:9464 -v "$PWD/data:/data" musicrec
#
# /data holds either a bundle at /data/bundles/current (a bundle directory or a `current` symlink,
# as `musicrec index --current` makes) or a catalog CSV at /data/catalog.csv, indexed once at start
# when no bundle is there yet. See deploy/entrypoint.sh for the variables it reads.
#
# Behind a proxy that re-signs TLS, give pip its CA bundle as a build secret:
#   docker build --secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt -t musicrec .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtual environment with musicrec and its runtime dependencies only (all wheels) ---
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/musicrec
WORKDIR /src
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY indexer ./indexer
COPY server ./server
COPY musicrec ./musicrec
# fast: the new-track path's compiled kernels (numba; compiled into NUMBA_CACHE_DIR at the first start).
# --build-arg EXTRAS=fast,audio adds librosa & co. for audio clips in queries and `musicrec extract`.
ARG EXTRAS="fast"
RUN --mount=type=secret,id=pip-ca,required=false \
    if [ -f /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi; \
    /opt/musicrec/bin/pip install --only-binary=:all: --no-binary=musicrec ".${EXTRAS:+[$EXTRAS]}" \
    && /opt/musicrec/bin/pip uninstall -y pip \
    && /opt/musicrec/bin/python -m compileall -q /opt/musicrec

# --- runtime: the same base, the environment, an unprivileged user ---
FROM ${PYTHON_IMAGE}
# (NUMBA_CACHE_DIR: numba's compiled kernels, musicrec's and librosa's, go to /tmp, never the read-only image)
ENV PATH=/opt/musicrec/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    MUSICREC_PORT=50051 MUSICREC_METRICS_PORT=9464 NUMBA_CACHE_DIR=/tmp/numba
COPY --from=build /opt/musicrec /opt/musicrec
COPY deploy/entrypoint.sh /usr/local/bin/musicrec-entrypoint
RUN groupadd --system --gid 10001 musicrec \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home musicrec \
    && mkdir -p /data && chown musicrec:musicrec /data && chmod 0755 /usr/local/bin/musicrec-entrypoint
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 50051 9464
# Exit 0 only when grpc.health.v1 says SERVING (musicrec health --help lists the codes). The start
# period covers a bundle load, or indexing a CSV at first start.
HEALTHCHECK --interval=15s --timeout=5s --start-period=900s --retries=3 \
    CMD musicrec health "127.0.0.1:${MUSICREC_PORT}" --timeout 4 > /dev/null || exit 1
# Exec form all the way down (the script ends in `exec musicrec serve`), so SIGTERM from
# `docker stop` or Kubernetes reaches the server, which drains and exits 0.
ENTRYPOINT ["musicrec-entrypoint"]
CMD ["serve"]
