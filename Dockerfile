# Wattline: one image for the consumer, the simulator and the jobs.
FROM python:3.11-slim
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY wattline wattline
COPY edge edge
COPY ingest ingest
COPY schemas schemas
COPY warehouse warehouse
COPY transforms transforms
COPY alerts alerts
RUN uv sync --frozen --no-dev
ENV PATH="/app/.venv/bin:$PATH"
ENTRYPOINT ["wattline"]
