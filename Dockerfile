# The one lacewing image: every control-plane component (`lacewing controller <name>`), the
# sidecar proxy (`lacewing proxy`) and its init step (`lacewing proxy-init`) run from it.
#
# `make image` builds it with buildah, one image per architecture (linux/amd64, linux/arm64),
# with no registry: image/build.sh makes the base (Debian bookworm from the machine's own apt
# sources: the Essential set, python3 and iptables, no apt, no compilers) and the build context
# (lacewing and its dependencies' wheels installed for that architecture into dist-packages/,
# already compiled to .pyc), then runs
#   buildah bud --platform linux/ARCH --pull=never --build-arg BASE=<that base> -f Dockerfile CTX
# There is no RUN step, so building for another architecture needs no emulation.
ARG BASE
FROM ${BASE}
# Debian's python3 looks in /usr/local/lib/python3.11/dist-packages; lacewing's launcher is the
# console script pip writes, with its interpreter line pointed at /usr/bin/python3.
COPY dist-packages/ /usr/local/lib/python3.11/dist-packages/
COPY bin/lacewing /usr/local/bin/lacewing
# iptables (nft and legacy back ends) comes with the base, for proxy-init. uid/gid 2102
# (`lacewing`) is in the base's /etc/passwd: the proxy runs as 2102 (proxy-init exempts that uid
# from redirection); the pod spec sets runAsUser for each container, this is the proxy's default.
USER 2102:2102
ENTRYPOINT ["lacewing"]
CMD ["--help"]
