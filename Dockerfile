# Embargo daemon image: Node 20 + GnuPG, runs as a non-root user; config mounted at /config, state in the /data volume.
FROM node:20-bookworm-slim AS build
WORKDIR /app
# Build tools only in this stage, in case better-sqlite3 has no prebuilt binary for the platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
# npm ci runs the prepare script, which compiles src/ into dist/; then the compiler and other dev dependencies go.
RUN npm ci --no-audit --no-fund \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production
# Every `embargo` command (serve, and `docker exec … embargo queue`) reads the mounted config, not the demo one.
ENV EMBARGO_CONFIG=/config
RUN apt-get update \
 && apt-get install -y --no-install-recommends gnupg ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json package-lock.json ./
COPY bin ./bin
# The shipped demo config, for reference (`docker run ... cat /app/config/server.yaml`); the daemon reads /config.
COPY config ./config
RUN ln -s /app/bin/embargo.js /usr/local/bin/embargo \
 && mkdir -p /data /config && chown node:node /data
USER node
# server.yaml in /config should say `dataDir: /data` and listen on 0.0.0.0 to be reachable from outside.
# The relay (relay.host) is the host's MTA: on Docker's default bridge that is the host's bridge address
# (172.17.0.1, or host.docker.internal with `--add-host=host.docker.internal:host-gateway`), and that MTA
# must listen there and accept mail from the container's network (Postfix: inet_interfaces, mynetworks).
VOLUME /data
EXPOSE 2525 8025
# /healthz answers 200 once the daemon is up; the port is http.port from server.yaml (EMBARGO_HTTP_PORT if not 8025).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.EMBARGO_HTTP_PORT||8025)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "bin/embargo.js", "serve"]
