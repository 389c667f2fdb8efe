#!/usr/bin/env bash
# Installs Debian's NVRTC (CUDA 11.8, from the non-free component) so kernels compile without a GPU.
# Idempotent; exits 0 when NVRTC is already loadable.
set -euo pipefail
if ldconfig -p 2>/dev/null | grep -qE 'libnvrtc\.so\.(11\.2|12|13)'; then exit 0; fi
[ "$(id -u)" = 0 ] || { echo "install-nvrtc: not root, skipping" >&2; exit 1; }
command -v apt-get >/dev/null || { echo "install-nvrtc: no apt-get, skipping" >&2; exit 1; }
src=/etc/apt/sources.list.d/tmca-nonfree.sources
if ! grep -rqs "non-free" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  uris=$(grep -h '^URIs:' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1 | cut -d' ' -f2-)
  signed=$(grep -h '^Signed-By:' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1 | cut -d' ' -f2-)
  printf 'Types: deb\nURIs: %s\nSuites: bookworm\nComponents: non-free\nSigned-By: %s\n' \
    "${uris:-http://deb.debian.org/debian}" "${signed:-/usr/share/keyrings/debian-archive-keyring.gpg}" > "$src"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q libnvrtc11.2 libnvrtc-builtins11.8 >/dev/null
