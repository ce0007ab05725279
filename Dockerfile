# syntax=docker/dockerfile:1
# edu-scorer worker image: `docker build -t edu-scorer .` at the repository root.
# Runs `scorer worker` by default; `docker run edu-scorer migrate` runs the DB migrations.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# .dockerignore lets in only the package sources, pyproject.toml, constraints.txt and README.md; the image
# gets the versions the test suite passed with.
COPY . .
RUN pip install --upgrade pip && pip install -c constraints.txt .

FROM python:3.11-slim
LABEL org.opencontainers.image.title="edu-scorer" \
      org.opencontainers.image.description="Event-streaming real-time student scorer (faust worker)" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SCORER_WEB_PORT=6066 \
    SCORER_WEB_BIND=0.0.0.0 \
    SCORER_STATE_DIR=/var/lib/scorer/state
RUN groupadd --system --gid 10001 scorer \
 && useradd --system --uid 10001 --gid scorer --home-dir /var/lib/scorer --create-home \
        --shell /usr/sbin/nologin scorer \
 && mkdir -p /var/lib/scorer/state \
 && chown -R scorer:scorer /var/lib/scorer
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /var/lib/scorer
EXPOSE 6066
# Liveness only (/healthz); readiness (/readyz) also needs Kafka, Redis and Postgres up. Over HTTPS when the
# worker serves it (SCORER_WEB_TLS_*): its own loopback, so the certificate's name is not checked.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, ssl, urllib.request; tls = bool(os.environ.get('SCORER_WEB_TLS_CERT_FILE')); urllib.request.urlopen('%s://127.0.0.1:%s/healthz' % ('https' if tls else 'http', os.environ.get('SCORER_WEB_PORT', '6066')), timeout=4, context=ssl._create_unverified_context() if tls else None)"]
ENTRYPOINT ["scorer"]
CMD ["worker"]
