# Helios image: `docker build -t helios .`, then `docker run -p 6000:6000 -p 8080:8080 helios`.

# Build wheels for Helios and its dependencies; nothing of this stage but /wheels reaches the image.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY engine engine
COPY adapters adapters
COPY scaler scaler
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin helios
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels /wheels/helios_scaler-*.whl && rm -rf /wheels
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# Numeric user, so Kubernetes can verify runAsNonRoot.
USER 10001
# 6000: gRPC (ExternalScaler, Admin, Health, reflection). 8080: Prometheus /metrics.
EXPOSE 6000 8080
ENTRYPOINT ["helios", "serve"]
