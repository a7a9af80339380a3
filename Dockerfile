# Minyi's container image: Debian 12 slim with Python 3.11, the package in a virtual environment,
# run as an unprivileged user. One image for every role: web (the default command), worker
# (`minyi worker`), migrations (`minyi db upgrade`), backups (`minyi backup`).
#
#   docker build -t minyi .        (or podman build)
#
# Nothing of the office's is in it: settings come from the environment (an env file), and the
# personal-data key from a secret, never from the image.

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY channels ./channels
COPY conversation ./conversation
COPY storage ./storage
# With the `speed` extra (uvloop, hiredis; wheels, nothing to compile): the README's Speed
# figures are measured with it.
RUN python -m venv /opt/minyi \
    && /opt/minyi/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/minyi/bin/pip install --no-cache-dir '.[speed]'

FROM python:3.11-slim-bookworm
# postgresql-client: pg_dump/pg_restore for `minyi backup` and `minyi restore` (Debian 12's
# client is version 15: it dumps PostgreSQL 15 and older).
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/minyi --create-home \
       --shell /usr/sbin/nologin minyi
COPY --from=build /opt/minyi /opt/minyi
ENV PATH=/opt/minyi/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MINYI_LOG_FORMAT=json \
    MINYI_PORT=8080
USER minyi:minyi
WORKDIR /var/lib/minyi
EXPOSE 8080
# Ready means the database (and Redis, when configured) answer: GET /readyz is 200.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/readyz' % os.environ.get('MINYI_PORT', '8080'); sys.exit(0 if urllib.request.urlopen(url, timeout=2).status == 200 else 1)"]
STOPSIGNAL SIGTERM
CMD ["sh", "-c", "exec minyi serve --no-workers --host 0.0.0.0 --port \"$MINYI_PORT\""]
