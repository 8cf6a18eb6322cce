# `haoscar` in a container, for docker-compose.yml's worker (the witness machine): the package as
# users install it (npm pack, then npm install -g: compiled dist/, the workflow bundle built at
# pack time, no tsx). The command is the CLI's: `docker run haoscar:local worker --config FILE`.
FROM node:20-bookworm-slim AS pack
WORKDIR /build
COPY . .
RUN npm ci --no-audit --no-fund && npm pack

FROM node:20-bookworm-slim
COPY --from=pack /build/ha-oscar-*.tgz /tmp/
RUN npm install -g --no-audit --no-fund /tmp/ha-oscar-*.tgz && rm /tmp/ha-oscar-*.tgz
ENV NODE_ENV=production
ENTRYPOINT ["haoscar"]
CMD ["worker", "--config", "/etc/haoscar/worker.yaml"]
