# Helios image: `docker build -t helios:0.1.0 .`, then
# `docker run -p 6000:6000 -p 6001:6001 -p 8080:8080 helios:0.1.0`.
# Both stages use one base, pinned to its full Python version (3.11.13, Debian bookworm).

# Build stage: a virtualenv with the locked dependencies (hash-checked: a changed file fails the build)
# and Helios itself. Only /opt/helios reaches the final image.
FROM python:3.11.13-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/helios
WORKDIR /src
COPY requirements.lock ./
RUN /opt/helios/bin/pip install --require-hashes --only-binary=:all: -r requirements.lock
COPY pyproject.toml README.md ./
COPY engine engine
COPY adapters adapters
COPY scaler scaler
# --no-deps: every dependency came from the lock above.
RUN /opt/helios/bin/pip install --no-deps . \
    && /opt/helios/bin/pip uninstall -y pip

# Final stage: the interpreter and the virtualenv; no compilers, no pip, no build files.
FROM python:3.11.13-slim-bookworm
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin helios
COPY --from=build /opt/helios /opt/helios
ENV PATH=/opt/helios/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# Numeric user, so Kubernetes can verify runAsNonRoot.
USER 10001:10001
# 6000: gRPC (ExternalScaler, Admin, health, reflection; TLS when configured).
# 6001: plaintext gRPC health only, for kubelet probes. 8080: Prometheus /metrics.
EXPOSE 6000 6001 8080
# helios serve stops gracefully on SIGTERM: health turns NOT_SERVING, in-flight calls finish within
# server.shutdown_grace. Exec form, so the signal reaches helios and not a shell.
STOPSIGNAL SIGTERM
ENTRYPOINT ["helios", "serve"]
