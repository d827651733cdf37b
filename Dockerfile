# The one lacewing image: every control-plane component (`lacewing controller <name>`), the
# sidecar proxy (`lacewing proxy`) and its init step (`lacewing proxy-init`) run from it.
# Pure Python on a multi-arch base, so one build serves linux/amd64 and linux/arm64:
#   docker buildx build --platform linux/amd64,linux/arm64 -t <registry>/lacewing:<tag> .
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
# iptables (nft and legacy back ends) for proxy-init; nothing else from the distribution.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
 && groupadd --gid 2102 lacewing && useradd --uid 2102 --gid 2102 --no-create-home lacewing
# The proxy runs as uid 2102 (proxy-init exempts that uid from redirection); the pod spec
# sets runAsUser for each container, this is the default for the proxy.
USER 2102:2102
ENTRYPOINT ["lacewing"]
CMD ["--help"]
