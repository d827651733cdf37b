#!/usr/bin/env bash
# Build lacewing's container image for linux/amd64 and linux/arm64 on this machine, with no
# container registry: only the package registries the machine is configured for (its apt
# sources for Debian, its pip index for wheels). Run as root (`make image`).
#
# How it works, per architecture (ARCH is a Debian name: amd64, arm64):
#   1. base   mmdebstrap makes a Debian bookworm root file system from this machine's apt
#             sources: the Essential set plus python3 and iptables (no apt, no compilers), without
#             man pages, docs (copyright files stay), locales; uid/gid 2102 `lacewing` added.
#             Foreign-architecture maintainer scripts run under qemu-user-static (binfmt_misc).
#             buildah commits it as localhost/lacewing-image-base:ARCH-KEY, KEY a hash of the
#             recipe, so a warm build reuses it (IMAGE_REBUILD_BASE=1 rebuilds it, e.g. to take
#             Debian security updates).
#   2. python lacewing's wheel (pure Python, LACEWING_BUILD=pure, built once) and its dependencies' manylinux wheels
#             for ARCH are installed by this machine's pip (`--target --platform`) into
#             build/image/ctx-ARCH/dist-packages; debug info is stripped from their shared
#             objects (binutils for ARCH, here only) and the Python is compiled to .pyc here
#             (bytecode does not depend on the architecture; the image's Python and ours must be
#             the same 3.X).
#   3. image  buildah builds ../Dockerfile (no RUN step, so no emulation) FROM the base with that
#             context and saves it as build/image/lacewing-VERSION-ARCH.tar, a docker-archive
#             whose one name is NAME:VERSION (the image `lacewing install` renders), plus a
#             gzip'd copy; the image is then dropped from buildah's storage (the base stays).
#   4. smoke  image/archive.py runs `lacewing version` from that tarball as a container would
#             (entrypoint, user 2102, chroot, no network; arm64 through qemu) and checks it.
#
# Knobs (environment): IMAGE_ARCHES ("amd64 arm64"), IMAGE_NAME (ghcr.io/lacewing-mesh/lacewing),
# IMAGE_APT_SOURCES (a sources file; default this machine's Debian sources), IMAGE_REBUILD_BASE=1,
# PYTHON (the host python3.11 with pip).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/build/image"
ARCHES="${IMAGE_ARCHES:-amd64 arm64}"
NAME="${IMAGE_NAME:-ghcr.io/lacewing-mesh/lacewing}"
PYTHON="${PYTHON:-python3}"
SUITE=bookworm
PYVER=3.11 # bookworm's python3
PACKAGES=python3,iptables
BASE_REPO=localhost/lacewing-image-base

die() { echo "image/build.sh: $*" >&2; exit 1; }
say() { echo "==> $*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
mb() { awk -v n="$1" 'BEGIN { printf "%5.1f MB", n / 1e6 }'; }

# --- what the build needs -------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "needs root (mmdebstrap and buildah run as root here)"
for tool in mmdebstrap:mmdebstrap buildah:buildah arch-test:arch-test unshare:util-linux \
    qemu-aarch64-static:qemu-user-static update-binfmts:binfmt-support \
    x86_64-linux-gnu-strip:binutils-x86-64-linux-gnu aarch64-linux-gnu-strip:binutils-aarch64-linux-gnu; do
    command -v "${tool%%:*}" >/dev/null \
        || die "${tool%%:*} is missing: apt-get install ${tool##*:}"
done
command -v "$PYTHON" >/dev/null || die "$PYTHON is missing: set PYTHON to a python$PYVER with pip"
"$PYTHON" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$PYVER'.split('.'))))" \
    || die "$PYTHON is not Python $PYVER (the image's); set PYTHON to a python$PYVER with pip"

# Foreign architectures run through binfmt_misc; a fresh VM may have it unmounted or disabled.
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc \
        || die "cannot mount binfmt_misc: arm64 steps need it (modprobe binfmt_misc)"
fi
for arch in $ARCHES; do
    case "$arch" in
        amd64) qemu=qemu-x86_64 ;;
        arm64) qemu=qemu-aarch64 ;;
        *) die "unsupported architecture '$arch' (amd64, arm64)" ;;
    esac
    if [ "$(dpkg --print-architecture)" != "$arch" ] \
        && [ ! -e "/proc/sys/fs/binfmt_misc/$qemu" ]; then
        update-binfmts --enable "$qemu" || die "cannot register $qemu with binfmt_misc"
    fi
done

SOURCES="${IMAGE_APT_SOURCES:-}"
if [ -z "$SOURCES" ]; then
    for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
        if [ -s "$f" ]; then SOURCES="$f"; break; fi
    done
fi
[ -n "$SOURCES" ] && [ -s "$SOURCES" ] || die "no apt sources: set IMAGE_APT_SOURCES to a sources file"

mkdir -p "$OUT"
START=$(now)

# --- lacewing's wheel, once ------------------------------------------------------------------
t=$(now)
rm -rf "$OUT/dist" "$OUT/src" && mkdir -p "$OUT/dist" "$OUT/src"
# From a copy of the sources, so that setuptools' build/ and egg-info stay out of the checkout.
cp -r "$ROOT/pyproject.toml" "$ROOT/setup.py" "$ROOT/README.md" "$ROOT/src" "$OUT/src/"
find "$OUT/src" -name __pycache__ -prune -exec rm -rf {} +
find "$OUT/src" -name '*.so' -delete # an editable install's compiled modules
# One wheel serves both architectures, so it is the pure-Python build (LACEWING_BUILD=pure): the
# image's proxy says so at start and in `lacewing version` (mypyc wheels per architecture would
# need a cross compiler and arm64 Python headers here).
LACEWING_BUILD=pure "$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$OUT/dist" "$OUT/src" 2>"$OUT/wheel.log" \
    || die "building lacewing's wheel failed: see $OUT/wheel.log"
rm -rf "$OUT/src"
WHEEL=$(ls "$OUT"/dist/lacewing-*.whl)
VERSION=$(basename "$WHEEL" | cut -d- -f2)
say "wheel $(basename "$WHEEL") ($(since "$t"))"

SUMMARY=()
for arch in $ARCHES; do
    case "$arch" in amd64) march=x86_64 ;; arm64) march=aarch64 ;; esac

    # --- 1. base ---------------------------------------------------------------------------
    t=$(now)
    MMDEB=(--variant=essential --include="$PACKAGES" --architectures="$arch"
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
        --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*'
        --customize-hook='echo "lacewing:x:2102:2102:lacewing:/nonexistent:/usr/sbin/nologin" >>"$1/etc/passwd"'
        --customize-hook='echo "lacewing:x:2102:" >>"$1/etc/group"'
        --customize-hook='rm -rf "$1"/var/cache/debconf/*-old "$1"/var/log/* "$1"/var/lib/apt/lists/*'
        "$SUITE")
    key=$(printf '%s\n' "${MMDEB[@]}" | sha256sum | cut -c1-12)
    base="$BASE_REPO:$arch-$key"
    if [ "${IMAGE_REBUILD_BASE:-0}" = 1 ] || ! buildah inspect --type image "$base" >/dev/null 2>&1; then
        mmdebstrap --quiet "${MMDEB[@]}" "$OUT/base-$arch.tar" "$SOURCES" >"$OUT/base-$arch.log" 2>&1 \
            || die "mmdebstrap ($arch) failed: see $OUT/base-$arch.log"
        ctr=$(buildah from --arch "$arch" scratch)
        buildah add --quiet "$ctr" "$OUT/base-$arch.tar" / >/dev/null
        buildah config --os linux --arch "$arch" \
            --label "org.opencontainers.image.description=Debian $SUITE: Essential, $PACKAGES" "$ctr"
        buildah commit --quiet --rm "$ctr" "$base" >/dev/null
        rm -f "$OUT/base-$arch.tar"
        say "$arch base $base built ($(since "$t"))"
    else
        say "$arch base $base reused ($(since "$t"))"
    fi

    # --- 2. python -------------------------------------------------------------------------
    t=$(now)
    ctx="$OUT/ctx-$arch"
    rm -rf "$ctx" && mkdir -p "$ctx/bin"
    "$PYTHON" -m pip install --quiet --no-compile --target "$ctx/dist-packages" \
        --only-binary=:all: --implementation cp --python-version "$PYVER" \
        --abi "cp${PYVER/./}" --abi abi3 --abi none \
        --platform "manylinux_2_28_$march" --platform "manylinux2014_$march" \
        --platform "manylinux_2_17_$march" --platform "manylinux1_$march" \
        "$WHEEL" >"$ctx.log" 2>&1 || die "pip for $arch failed: see $ctx.log"
    # The console script pip wrote names our interpreter; the image's is /usr/bin/python3.
    sed '1s|^#!.*|#!/usr/bin/python3|' "$ctx/dist-packages/bin/lacewing" >"$ctx/bin/lacewing"
    chmod 755 "$ctx/bin/lacewing"
    rm -rf "$ctx/dist-packages/bin"
    # Wheels ship shared objects with debug info (uvloop's is 13 MB of which 12 are debug info).
    find "$ctx/dist-packages" -name '*.so' -exec "$march-linux-gnu-strip" --strip-debug {} +
    # The user 2102 cannot write bytecode into the image: compile it here, paths as in the image.
    "$PYTHON" -m compileall -q -j0 --invalidation-mode unchecked-hash -s "$ctx/dist-packages" \
        -p "/usr/local/lib/python$PYVER/dist-packages" "$ctx/dist-packages" >/dev/null \
        || die "compiling $arch bytecode failed"
    say "$arch python packages: $(du -sh "$ctx/dist-packages" | cut -f1) ($(since "$t"))"

    # --- 3. image --------------------------------------------------------------------------
    t=$(now)
    buildah bud --quiet --platform "linux/$arch" --pull=never --layers=false \
        --iidfile "$OUT/iid-$arch" --build-arg BASE="$base" -f "$ROOT/Dockerfile" "$ctx" \
        >"$OUT/bud-$arch.log" 2>&1 || die "buildah bud ($arch) failed: see $OUT/bud-$arch.log"
    iid=$(cat "$OUT/iid-$arch")
    got=$(buildah inspect --type image --format '{{.OCIv1.Architecture}}' "$iid")
    [ "$got" = "$arch" ] || die "the $arch image has architecture '$got'"
    tarball="$OUT/lacewing-$VERSION-$arch.tar"
    rm -f "$tarball" "$tarball.gz"
    # Pushed by id, untagged, so that NAME:VERSION is the archive's only name.
    buildah push --quiet "$iid" "docker-archive:$tarball:$NAME:$VERSION" >/dev/null
    buildah rmi "$iid" >/dev/null
    gzip -6 -k "$tarball"
    say "$arch image -> $(basename "$tarball") ($(since "$t"))"

    # --- 4. smoke --------------------------------------------------------------------------
    t=$(now)
    out=$("$PYTHON" "$ROOT/image/archive.py" run "$tarball" version 2>"$OUT/smoke-$arch.log") \
        || die "lacewing version failed in $(basename "$tarball"): see $OUT/smoke-$arch.log"
    echo "$out" | grep -qx "Client version: $VERSION" \
        || die "lacewing version in $(basename "$tarball") printed '$out', not 'Client version: $VERSION'"
    say "$arch smoke: lacewing version: $(echo "$out" | head -1) ($(since "$t"))"

    SUMMARY+=("$arch  $(basename "$tarball")  $(mb "$(stat -c %s "$tarball")"), gzip'd $(mb \
        "$(stat -c %s "$tarball.gz")")")
done

say "done in $(since "$START"):"
printf '    %s\n' "${SUMMARY[@]}"
