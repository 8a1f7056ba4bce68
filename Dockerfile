# Embargo daemon image: Node 20 + GnuPG, runs as a non-root user; config mounted at /config, state in the /data volume.
FROM node:20-bookworm-slim AS dependencies
WORKDIR /app
# Build tools only in this stage, in case better-sqlite3 has no prebuilt binary for the platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# tsx is a runtime dependency: the daemon runs its TypeScript directly, there is no build step.
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production
RUN apt-get update \
 && apt-get install -y --no-install-recommends gnupg ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=dependencies /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY bin ./bin
COPY src ./src
# The shipped demo config, for reference (`docker run ... cat /app/config/server.yaml`); the daemon reads /config.
COPY config ./config
# The image's `node` user (uid 1000) owns the data volume; the config is read-only to it.
RUN mkdir -p /data /config && chown node:node /data
USER node
# server.yaml in /config should say `dataDir: /data` (or ../data) and listen on 0.0.0.0 to be reachable from outside.
VOLUME /data
EXPOSE 2525 8025
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "bin/embargo.js", "serve", "--config", "/config"]
