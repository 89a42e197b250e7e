# The image samples/deploy/ runs (gpuadmit:0.1.0): the gpuadmit wheel (with the `kube`
# extra: the Deployment runs `--cluster kube`) in a virtual
# environment, nothing to build with at run time, user 65532, and a root filesystem that
# may be mounted read-only (bytecode compiled at build time; the rule cache under /tmp,
# which the Deployment mounts as an emptyDir).
#
#   docker build -t gpuadmit:0.1.0 .
#   docker run --rm --read-only --tmpfs /tmp gpuadmit:0.1.0 lint /usr/share/gpuadmit/samples/seed-demo-safe.yaml

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY policy/ policy/
COPY webhook/ webhook/
COPY rules/ rules/
COPY samples/ samples/
RUN python -m pip install --quiet build \
 && python -m build --wheel --outdir /dist . \
 && python -m venv /opt/gpuadmit \
 && /opt/gpuadmit/bin/pip install --quiet "$(ls /dist/gpuadmit-*.whl)[kube]" \
 && { /opt/gpuadmit/bin/pip uninstall --quiet --yes pip setuptools wheel || true; } \
 && /opt/gpuadmit/bin/python -m compileall -q /opt/gpuadmit \
 && /opt/gpuadmit/bin/gpuadmit rules list > /dev/null \
 && /opt/gpuadmit/bin/python -c "import lightkube"

FROM ${PYTHON_IMAGE}
# No package manager tools or compilers are added; pip and setuptools leave the image too.
RUN { python -m pip uninstall --quiet --yes pip setuptools wheel || true; } \
 && groupadd --gid 65532 gpuadmit \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin gpuadmit
COPY --from=build /opt/gpuadmit /opt/gpuadmit
COPY --from=build /src/samples /usr/share/gpuadmit/samples
ENV PATH=/opt/gpuadmit/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GPUADMIT_CACHE_DIR=/tmp/gpuadmit
LABEL org.opencontainers.image.title="gpuadmit" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.source="https://github.com/gpuadmit/gpuadmit" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["gpuadmit"]
CMD ["--help"]
