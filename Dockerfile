# One image for web, workers and beat (docker-compose.yml picks the command).
FROM node:20-slim AS frontend
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
COPY pyproject.toml README.md ./
COPY config/ config/
COPY annotation/ annotation/
COPY models_serving/ models_serving/
COPY training_jobs/ training_jobs/
# The CUDA build of torch from PyPI; the GPU worker uses it, the others run it on CPU.
RUN pip install --no-cache-dir torch==2.13.0 && pip install --no-cache-dir .
COPY manage.py ./
COPY --from=frontend /src/frontend/dist frontend/dist
