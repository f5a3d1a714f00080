#!/usr/bin/env bash
# Prepare an offline ESP-IDF build with Debian's RISC-V toolchain (shared/TOOLCHAIN.md has the facts).
#   bash tools/idf_offline/setup.sh IDF_PATH [WORK]     (WORK default: build/idf-offline)
# Writes WORK/env.sh; `source WORK/env.sh` then `pqlr build --board esp32c6` runs ESP-IDF's idf.py with:
#   riscv32-esp-elf-* wrappers → riscv64-unknown-elf-* (tools/idf_offline/gcc_wrapper.py), ESP-IDF's core Python
#   requirements in WORK/venv (from the package index), replacement components for what Debian lacks (C++ runtime,
#   mbedTLS submodule, 1/2-byte atomics), and sdkconfig additions for Debian's picolibc.
# Needs: gcc-riscv64-unknown-elf, picolibc-riscv64-unknown-elf, cmake, ninja-build (tools/ensure_debs.sh --idf).
set -euo pipefail
IDF="$(cd "${1:?usage: setup.sh IDF_PATH [WORK]}" && pwd)"
WORK="$(mkdir -p "${2:-build/idf-offline}" && cd "${2:-build/idf-offline}" && pwd)"
HERE="$(cd "$(dirname "$0")" && pwd)"
for f in tools/idf.py components/heap/tlsf/tlsf.c components/bootloader/subproject/components/micro-ecc/micro-ecc/uECC.c; do
  [ -e "$IDF/$f" ] || { echo "setup.sh: $IDF/$f missing: ESP-IDF tree incomplete (tools/get_esp_idf.sh fetches it with its submodules)" >&2; exit 2; }
done
for t in riscv64-unknown-elf-gcc cmake ninja; do
  command -v "$t" >/dev/null || { echo "setup.sh: $t missing: bash tools/ensure_debs.sh --idf" >&2; exit 2; }
done
[ -f /usr/lib/picolibc/riscv64-unknown-elf/picolibc.specs ] || { echo "setup.sh: picolibc missing: apt-get install picolibc-riscv64-unknown-elf" >&2; exit 2; }

mkdir -p "$WORK/bin" "$WORK/stubs"
for t in gcc g++ c++ cpp cc ar ranlib nm objcopy objdump readelf size strip as ld addr2line c++filt gcc-ar gcc-nm gcc-ranlib elfedit strings; do
  ln -sf "$HERE/gcc_wrapper.py" "$WORK/bin/riscv32-esp-elf-$t"
done
riscv64-unknown-elf-ar rc "$WORK/stubs/libstdc++.a"          # an empty C++ runtime, for CMake's C++ compiler check

if [ ! -x "$WORK/venv/bin/python" ]; then
  python3 -m venv "$WORK/venv"
  "$WORK/venv/bin/python" -m pip install -q --upgrade pip
  "$WORK/venv/bin/python" -m pip install -q -r "$IDF/tools/requirements/requirements.core.txt"
fi

cat > "$WORK/env.sh" <<ENV
# source me: ESP-IDF $(cat "$IDF/version.txt" 2>/dev/null || basename "$IDF") built offline with Debian's toolchain
export IDF_PATH="$IDF"
export IDF_PYTHON="$WORK/venv/bin/python"
export IDF_PYTHON_ENV_PATH="$WORK/venv"
export IDF_PYTHON_CHECK_CONSTRAINTS=no
export IDF_COMPONENT_MANAGER=0
export IDF_TOOLS_PATH="$WORK/idf-tools"
export PQLR_IDF_STUBS="$WORK/stubs"
export PQLR_IDF_EXTRA_COMPONENTS="$HERE/components"
export SDKCONFIG_DEFAULTS="sdkconfig.defaults;$HERE/offline.defaults"
export PATH="$WORK/bin:\$PATH"
ENV
echo "offline ESP-IDF ready: source $WORK/env.sh"
