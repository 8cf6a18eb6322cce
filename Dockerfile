# `haoscar` in a container, for docker-compose.yml's worker (the witness machine). The command is
# the CLI's: `docker run haoscar:local worker --config /etc/haoscar/worker.yaml`.
FROM node:20-bookworm-slim
WORKDIR /opt/haoscar
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY tsconfig.json ./
ENV NODE_ENV=production
ENTRYPOINT ["node", "/opt/haoscar/bin/haoscar.js"]
CMD ["worker", "--config", "/etc/haoscar/worker.yaml"]
