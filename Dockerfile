# syntax=docker/dockerfile:1
# Build: wheels for the gateway (its hot-path modules compiled with Cython, setup.py) and
# its dependencies (pyscard compiles against PC/SC lite).
FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential swig libpcsclite-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY gateway ./gateway
COPY adapters ./adapters
COPY terminology ./terminology
COPY conformance ./conformance
COPY profiles ./profiles
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Run: redis-server for the embedded default, the PC/SC client library for card readers
# (pcscd itself runs on the host or in a sidecar with the readers), a non-root user.
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server libpcsclite1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 gateway
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER gateway
WORKDIR /home/gateway
ENV GATEWAY_HOST=0.0.0.0 GATEWAY_PORT=8080 GATEWAY_DATA_DIR=/home/gateway/var
VOLUME ["/home/gateway/var"]
EXPOSE 8080 2575
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz')" || exit 1
ENTRYPOINT ["gateway"]
CMD ["serve", "--mllp-port", "2575"]
