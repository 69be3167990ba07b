# One image for the services (docker-compose.yml runs it once for each):
#   node --import tsx app/main.ts <auth|user|order|notification|catalogue>
# Each serves gRPC (h2c) and HTTP/1.1 on $PORT. gen/ is committed, so no build step.
FROM node:20-bookworm-slim

WORKDIR /app
ENV NODE_ENV=production \
    DATA_DIR=/data

# openssl: the tls-init job makes the local CA and Envoy's certificate with it (scripts/stack/certs.ts).
RUN apt-get update && apt-get install -y --no-install-recommends openssl && rm -rf /var/lib/apt/lists/*

# Dependencies first: this layer is reused until package-lock.json changes.
COPY package.json package-lock.json ./
# Runtime dependencies only (test/envoy/deploy.test.ts checks the services import no
# devDependency).
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY . .

# Named volumes mounted here start with this ownership: the per-service data dir
# (generated keys, secrets.json), the secrets written by the secrets-init job and the
# certificates written by the tls-init job.
RUN mkdir -p /data /run/acme-secrets /run/acme-tls && chown node:node /data /run/acme-secrets /run/acme-tls
USER node

EXPOSE 50051 50052 50053 50054 50055
CMD ["node", "--import", "tsx", "--import", "./platform/telemetry/register.ts", "app/main.ts"]
