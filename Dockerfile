# One image for the gateway and the API of a Lauks school server (docker-compose.yml runs
# `lauks gateway` and `lauks api` from it). Build: docker compose build.

# The browser libraries the API serves itself (web/package.json: Swagger UI for /docs, uPlot and Leaflet for the web
# app), from npm in a stage of their own, so Node stays out of the image.
FROM node:22-slim AS web-assets
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts --loglevel=error

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 lauks \
 && useradd --system --uid 10001 --gid lauks --home-dir /state --shell /usr/sbin/nologin lauks \
 && mkdir -p /state && chown lauks:lauks /state

WORKDIR /app
# The project's metadata first, so that a code change does not reinstall the dependencies.
COPY pyproject.toml README.md ./
RUN mkdir -p lauks metastore gateway api web firmware dashboards bench stack alerting \
 && for p in lauks metastore gateway api web firmware dashboards bench stack alerting; do touch "$p/__init__.py"; done \
 && pip install . && pip uninstall -y lauks
COPY lauks ./lauks
COPY metastore ./metastore
COPY gateway ./gateway
COPY api ./api
COPY web ./web
COPY firmware ./firmware
COPY dashboards ./dashboards
COPY bench ./bench
COPY stack ./stack
COPY alerting ./alerting
RUN pip install --no-deps . && lauks --help > /dev/null
# Where an installed api/docs_assets.py and web/assets.py look for them: <sys.prefix>/share/lauks, and sys.prefix is
# /usr/local here.
COPY --from=web-assets /web/node_modules/swagger-ui-dist /usr/local/share/lauks/swagger-ui-dist
COPY --from=web-assets /web/node_modules /usr/local/share/lauks/web/node_modules

USER lauks
ENV LAUKS_ENVIRONMENT=production \
    LAUKS_STATE_DIR=/state
VOLUME ["/state"]
ENTRYPOINT ["lauks"]
CMD ["--help"]
