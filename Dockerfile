# ragan in a container: CUDA-enabled TensorFlow, `ragan` as the entrypoint, runs as a non-root user.
#
#   docker build -t ragan .
#   docker run --gpus all --user "$(id -u):$(id -g)" -v "$PWD:/work" ragan train dcgan --data /work/prepared --out /work/runs
#
# Build arguments:
#   BASE_IMAGE          any image with python3 = Python 3.11 (the pins in requirements.txt need it). The default, TensorFlow's official GPU image,
#                       brings TensorFlow, CUDA and cuDNN; when the base already has the pinned
#                       TensorFlow it is used as is, not reinstalled. `tensorflow/tensorflow:2.21.0`
#                       gives a smaller CPU-only image.
#   TENSORFLOW_EXTRAS   for a base without CUDA (e.g. python:3.11-slim-bookworm), "and-cuda" installs
#                       TensorFlow's CUDA/cuDNN wheels from PyPI instead.
#   PIP_FIND_LINKS, PIP_NO_INDEX
#                       standard pip settings for offline builds from a local wheel folder, e.g.
#                       buildah bud --volume "$PWD/wheels:/wheels:ro" \
#                         --build-arg PIP_FIND_LINKS=/wheels --build-arg PIP_NO_INDEX=1 .
#                       Build arguments are not kept in the image's environment.
#
# See docker/README.md for GPUs, docker compose with an MLflow server, and Apptainer/Singularity.

ARG BASE_IMAGE=tensorflow/tensorflow:2.21.0-gpu

# One stage: every dependency is a ready-made wheel, so a separate build stage would leave nothing
# behind (no compilers, no caches: PIP_NO_CACHE_DIR) and would only copy the 3 GB environment once more.
FROM ${BASE_IMAGE}
ARG TENSORFLOW_EXTRAS=""
ARG PIP_FIND_LINKS
ARG PIP_NO_INDEX
LABEL org.opencontainers.image.title="ragan" \
      org.opencontainers.image.description="GAN data augmentation for medical images (Keras 3 on TensorFlow)" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

# --system-site-packages: the base image's TensorFlow (and its CUDA set-up) satisfies the pinned
# `tensorflow==...` requirement, so pip keeps it instead of downloading it again. Some bases lack
# ensurepip; their own pip, seen through the system site-packages, then installs into the venv.
RUN python3 -m venv --system-site-packages /opt/ragan \
    || python3 -m venv --system-site-packages --without-pip /opt/ragan

# Dependencies first, in their own layer, so that editing ragan's code does not reinstall them.
COPY requirements.txt /tmp/ragan-src/
RUN /opt/ragan/bin/python -m pip install -r /tmp/ragan-src/requirements.txt \
        ${TENSORFLOW_EXTRAS:+"tensorflow[${TENSORFLOW_EXTRAS}]"}

COPY setup.py README.md /tmp/ragan-src/
COPY ragan /tmp/ragan-src/ragan
RUN /opt/ragan/bin/python -m pip install --no-deps /tmp/ragan-src \
    && rm -rf /tmp/ragan-src \
    && /opt/ragan/bin/ragan --version

# TensorFlow's CUDA wheels (TENSORFLOW_EXTRAS=and-cuda) put their libraries under
# site-packages/nvidia/*/lib, and TensorFlow's own search path misses some of them: register them
# all with the dynamic linker. With a CUDA base image there are none and this writes an empty file.
# The user is uid 1000, the usual first user of a Linux desktop, so that files written to a mounted
# folder belong to them; it is named ragan unless the base already has a uid 1000 (ubuntu:24.04 has).
# HOME is writable by any uid because `docker run --user "$(id -u):$(id -g)"` and Apptainer run as
# the caller's uid.
RUN find /opt/ragan/lib -type d -path '*/site-packages/nvidia/*/lib' > /etc/ld.so.conf.d/ragan-nvidia-wheels.conf \
    && ldconfig \
    && if ! getent passwd 1000 > /dev/null; then \
         useradd --uid 1000 --user-group --home-dir /home/ragan --no-create-home ragan; fi \
    && mkdir -p /home/ragan /work \
    && chmod 1777 /home/ragan \
    && chown 1000:1000 /work

# Runs and their MLflow store live in the mounted /work: `ragan train` defaults to an SQLite store
# inside the run directory (RUN_DIR/mlflow.db); set MLFLOW_TRACKING_URI to use a server instead.
ENV PATH="/opt/ragan/bin:${PATH}" \
    HOME=/home/ragan \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib
# Numeric, so that `docker run`, Kubernetes' runAsNonRoot and Apptainer need not look the name up.
USER 1000:1000
WORKDIR /work
VOLUME ["/work"]
ENTRYPOINT ["ragan"]
CMD ["--help"]
