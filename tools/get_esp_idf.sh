#!/usr/bin/env bash
# ESP-IDF at a pinned release, from its public repository, with the two submodules an ESP32-C6 app needs
# (micro-ecc for the bootloader, tlsf for the heap; their commits are pinned by the release itself).
#   bash tools/get_esp_idf.sh [DEST]        (default build/esp-idf; nothing is done if DEST is already complete)
# Needs github.com. Without it, set IDF_PATH to an ESP-IDF v6.0.2 tree you have (with those two submodules).
set -euo pipefail
DEST="${1:-build/esp-idf}"
TAG="${ESP_IDF_TAG:-v6.0.2}"
REPO="${ESP_IDF_REPO:-https://github.com/espressif/esp-idf.git}"
SUBMODULES=(components/bootloader/subproject/components/micro-ecc/micro-ecc components/heap/tlsf)
complete() { [ -f "$1/tools/idf.py" ] && [ -f "$1/components/heap/tlsf/tlsf.c" ] && \
             [ -f "$1/components/bootloader/subproject/components/micro-ecc/micro-ecc/uECC.c" ]; }
if complete "$DEST"; then echo "ESP-IDF already in $DEST"; exit 0; fi
command -v git >/dev/null || { echo "get_esp_idf.sh: git is needed" >&2; exit 2; }
if ! timeout 30 git ls-remote --exit-code "$REPO" "refs/tags/$TAG" >/dev/null 2>&1; then
  echo "get_esp_idf.sh: $REPO is not reachable (or has no tag $TAG): no network to github.com? Set IDF_PATH to an ESP-IDF $TAG tree instead." >&2
  exit 3
fi
tmp="$DEST.partial"
rm -rf "$tmp"
mkdir -p "$(dirname "$DEST")"
echo "cloning ESP-IDF $TAG from $REPO (shallow) ..."
if ! git clone --quiet --depth 1 --branch "$TAG" "$REPO" "$tmp"; then
  echo "get_esp_idf.sh: cannot clone $REPO ($TAG): no network to github.com? Set IDF_PATH to an ESP-IDF $TAG tree instead." >&2
  rm -rf "$tmp"; exit 3
fi
git -C "$tmp" submodule update --quiet --init --depth 1 "${SUBMODULES[@]}"
complete "$tmp" || { echo "get_esp_idf.sh: $tmp is incomplete after the clone" >&2; exit 3; }
rm -rf "$DEST" && mv "$tmp" "$DEST"
echo "ESP-IDF $TAG in $DEST"
