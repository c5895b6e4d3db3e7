# One image for all five Authport processes. The default command runs the gateway; compose (or
# any orchestrator) runs the others from the same image with `python -m services.store`,
# `python -m services.auth`, `python -m services.proxy` or `python -m services.dashboard`.
# The base is pinned to an exact release (Python 3.11.11 on Debian 12); to pin it by digest too,
# `docker pull` it and write `python:3.11.11-slim-bookworm@sha256:<digest>` (this repository's CI
# has no Docker engine to read one).
FROM python:3.11.11-slim-bookworm

# pg_dump and pg_restore, for `authport admin backup|restore` against Postgres (docs/backup.md).
RUN apt-get update \
 && apt-get install --yes --no-install-recommends postgresql-client-15 \
 && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Dependencies first, from the runtime lock file (exact versions, every file's hash checked: see
# requirements/ and `make lock`), so that editing the code does not reinstall them.
COPY requirements/runtime.txt /build/requirements.txt
RUN pip install --require-hashes -r /build/requirements.txt

# Then the project itself, as a regular (non-editable) install; the sources are not kept, so
# `python -m …` always runs the installed package.
COPY pyproject.toml /build/pyproject.toml
COPY common /build/common
COPY gateway /build/gateway
COPY services /build/services
COPY authport /build/authport
RUN pip install --no-deps /build && rm -rf /build

RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin authport \
 && mkdir -p /app/data && chown -R authport:authport /app
WORKDIR /app
USER authport

# Only the gateway is meant to be published; the services listen on 3010-3012 inside the network.
EXPOSE 3003

# Fits the default command (the gateway); compose sets a check per service.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=5 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('SERVER_PORT', '3003') + '/healthz', timeout=3)"]

CMD ["python", "-m", "gateway"]
