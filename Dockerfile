# syntax=docker/dockerfile:1
# graphserve: an OVMS-compatible image-generation server.
#
#   docker build -t graphserve .
#   docker run -p 8000:8000 -v $PWD/models:/models:ro graphserve \
#     --rest_port 8000 --model_path /models/sd-turbo --model_name sd-turbo
#
# The ONNX Runtime backend (CPU) is always in. For Intel hosts, the OpenVINO
# backend needs Node >= 21 and downloads its runtime at install time:
#   docker build --build-arg NODE_IMAGE=node:22-bookworm-slim --build-arg OPENVINO=true -t graphserve:openvino .
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# Scripts run later (prepare builds from sources not copied yet).
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json ./
COPY proto proto
COPY src src
COPY calculators calculators
COPY web web
RUN npx tsc -p tsconfig.json && npm run build:web

FROM ${NODE_IMAGE} AS runtime
ARG OPENVINO=false
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# Runtime dependencies only; onnxruntime-node ships every platform's binaries
# (about 290 MB), of which the image keeps its own (node_modules: 357 → 114 MB).
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts \
 && if [ "$OPENVINO" = "true" ]; then npm install --no-save --no-audit --no-fund openvino-genai-node openvino-node; fi \
 && arch="$(node -p process.arch)" \
 && find node_modules/onnxruntime-node/bin -mindepth 2 -maxdepth 2 -type d ! -path "*/linux" -exec rm -rf {} + \
 && find node_modules/onnxruntime-node/bin -mindepth 3 -maxdepth 3 -type d ! -name "$arch" -exec rm -rf {} + \
 && npm cache clean --force
COPY --from=build /app/dist/src dist/src
COPY --from=build /app/dist/calculators dist/calculators
COPY --from=build /app/dist/web dist/web
COPY proto proto
COPY graphs graphs
# The built-in demo model (`graphserve demo`), served in place.
COPY models/demo models/demo
# Models are mounted here (read-only is enough: graphserve never writes a served model).
RUN mkdir -p /models && chown node:node /models
VOLUME /models
USER node
EXPOSE 8000
# node is PID 1 (no init): the kernel drops signals PID 1 has no handler for, so
# graphserve handles SIGTERM/SIGINT on every path: the server drains for
# --shutdown_grace_seconds (default 30); a --pull stops at once (exit 143/130),
# keeping what was downloaded for the next run.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/dist/src/cli/main.js"]
CMD ["--rest_port", "8000", "--config_path", "/models/config.json"]
