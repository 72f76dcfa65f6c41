# One image per service, from one file:
#   docker build --build-arg SERVICE=ranking -t creatormesh/ranking:dev .
#   docker build --build-arg SERVICE=video_diffusion --build-arg TORCH=cuda -t creatormesh/video_diffusion:dev-cuda .
# The builder stage turns the repo's distributions (protos, the kit, the one service) into wheels, pinned by
# constraints.txt; the final stage installs only those wheels and their dependencies, with no compiler, no pip cache
# and no source tree. TORCH=cpu takes PyTorch's CPU wheel; TORCH=cuda the PyPI build, which carries the CUDA runtime
# libraries itself (the node's NVIDIA driver comes in through the container toolkit). Services without torch ignore it.
# The base is pinned to an exact Python and Debian release; CI's image build resolves it to a digest.
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ARG SERVICE
ARG TORCH=cpu
ARG EXTRAS=""
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY constraints.txt ./
COPY protos/ protos/
COPY services/common/ services/common/
COPY services/${SERVICE}/ services/${SERVICE}/
RUN test -n "${SERVICE}" && test -f "services/${SERVICE}/pyproject.toml" \
    || { echo "build with --build-arg SERVICE=<one of services/>"; exit 1; }
# Wheels of the local distributions and of everything the service needs, at the versions of constraints.txt. torch
# comes from PyTorch's CPU index for TORCH=cpu (2.13.0+cpu sorts above PyPI's 2.13.0) and from PyPI for TORCH=cuda.
RUN if [ "${TORCH}" = "cpu" ]; then export PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu; fi; \
    python -m pip wheel -w /wheels -c constraints.txt \
      ./protos ./services/common "./services/${SERVICE}${EXTRAS:+[${EXTRAS}]}"

FROM ${PYTHON_IMAGE} AS final
ARG SERVICE
ARG TORCH=cpu
LABEL org.opencontainers.image.title="creatormesh-${SERVICE}" \
      org.opencontainers.image.source="https://github.com/creatormesh/creatormesh" \
      org.opencontainers.image.description="creatormesh ${SERVICE} service (torch: ${TORCH})"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CREATORMESH_SERVICE=${SERVICE} \
    CREATORMESH_GRPC_HOST=0.0.0.0 CREATORMESH_GRPC_PORT=50051 CREATORMESH_METRICS_PORT=9464 \
    CREATORMESH_LOG_FORMAT=json \
    HOME=/tmp HF_HOME=/tmp/hf MPLCONFIGDIR=/tmp/matplotlib NUMBA_CACHE_DIR=/tmp/numba \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    set -eux; \
    python -m pip install --no-index --find-links /wheels /wheels/*.whl; \
    python -m pip uninstall -y pip setuptools wheel; \
    useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app; \
    mkdir -p /srv/creatormesh && chown app:app /srv/creatormesh
# The service's relative paths (.creatormesh/...) live under the working directory: the chart mounts an emptyDir
# (or a volume) there, and /tmp, so the root filesystem can be read-only.
WORKDIR /srv/creatormesh
USER 10001:10001
EXPOSE 50051 9464
STOPSIGNAL SIGTERM
ENTRYPOINT ["creatormesh", "serve"]
