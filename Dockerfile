# syntax=docker/dockerfile:1
# The bot as a container: built with every dependency, run with the production ones and the compiled dist/ only.
# Not built or run on the machine this was written on (no container daemon there): test/container/verify-image-steps.ts
# replays these steps in a fresh directory in CI (see README, "Running it in a container"). Each RUN holds commands
# that script knows; teach it any new one.

# --- build: dev dependencies (TypeScript) and `npm run build` ---------------------------------------------------
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# a local package (`file:`) that npm ci links from here
COPY src/services/safety/tfjs-slim/ src/services/safety/tfjs-slim/
# prepare (the build) needs the sources, which come next: install first, so this layer is cached across code changes
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src/ src/
RUN npm run build

# --- run: production dependencies, dist/, an init, an unprivileged user ------------------------------------------
FROM node:24-bookworm-slim
# tini as PID 1: forwards SIGTERM to node (whose handler drains running jobs) and reaps zombies.
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
COPY src/services/safety/tfjs-slim/ src/services/safety/tfjs-slim/
# npm ci runs `prepare`; with dist/ already there and no sources to build (production install) it keeps this build
COPY scripts/prepare.mjs scripts/
COPY --from=build /app/dist/ dist/
# TypeScript comes along as i18next's optional peer (npm keeps `devOptional` packages with --omit=dev); the run stage
# compiles nothing, so it is removed.
RUN npm ci --omit=dev --no-audit --no-fund && rm -rf node_modules/typescript node_modules/.bin/tsc node_modules/.bin/tsserver && npm cache clean --force
# The code stays root's (read-only to the bot); only data/ is the bot's.
RUN mkdir -p data && chown node:node data
USER node
# The SQLite store (the default STORE_URL) lives here: keep it on a volume across container upgrades.
VOLUME ["/app/data"]
# /healthz for the HEALTHCHECK, on loopback: the check runs inside the container, and /metrics (which shows the
# Segmind balance) is not offered to other containers unless the operator sets HTTP_HOST=0.0.0.0.
ENV HTTP_PORT=8080 HTTP_HOST=127.0.0.1
# Queued jobs are saved and running ones get SHUTDOWN_GRACE_SECONDS (default 30) to finish: stop with a longer
# timeout than docker's 10 s (`docker stop -t 45`; compose.yaml sets stop_grace_period).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["node", "dist/scripts/healthcheck.js"]
ENTRYPOINT ["/usr/bin/tini", "--"]
# node itself, not `npm start`: npm does not forward signals reliably.
CMD ["node", "--enable-source-maps", "dist/index.js"]
