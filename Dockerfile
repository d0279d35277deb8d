# shardsim in one image: the node (python -m node), the coordinator (python -m cluster.coordinator) and the
# `shardsim` command (the scenario runner, `shardsim up --external`). docker-compose.yml runs one container
# per process from it; see docs/multi-host.md.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY node/ node/
COPY cluster/ cluster/
RUN pip install .
COPY scenarios/ scenarios/

# 6333: a node's REST API; 6300: the coordinator.
EXPOSE 6333 6300
CMD ["shardsim", "--help"]
