# Portico gateway image. Build: docker build -t portico .   Run: see docker-compose.yml / README.
FROM node:22-slim

WORKDIR /app

# Dependencies first (cached layer); scripts are skipped because `prepare` needs the sources.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts

# Sources (see .dockerignore), compiled to dist/, then dev dependencies dropped.
COPY . .
RUN npm run build && npm prune --omit=dev && npm cache clean --force

# Embedded database, generated secret and development keys live under /var/lib/portico
# (mount a volume there); with DATABASE_URL set only the certs dir is used.
# MALLOC_ARENA_MAX: see README "Memory of a server process".
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=2 \
    PORT=8080 \
    PORTICO_DATA_DIR=/var/lib/portico/data \
    PORTICO_CERTS_DIR=/var/lib/portico/certs
RUN mkdir -p /var/lib/portico/data /var/lib/portico/certs && chown -R node:node /var/lib/portico
USER node
VOLUME ["/var/lib/portico"]
EXPOSE 8080

HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"

# A bounded heap: V8 grows an unbounded one to ~4x what is live (src/cluster/heap.ts).
CMD ["node", "--max-old-space-size=1536", "bin/portico.js", "serve"]
