#!/usr/bin/env bash
# Make sure the Debian tools pqlr drives are present: the RV32IMAC cross compiler, QEMU and espeak-ng.
# As root they are installed with apt-get; otherwise the exact command is printed and we stop.
set -euo pipefail
PKGS=(gcc-riscv64-unknown-elf binutils-riscv64-unknown-elf qemu-system-misc espeak-ng
      flite asterisk-core-sounds-en-wav pocketsphinx-testdata asterisk-moh-opsound-wav ser2net)
missing=()
command -v riscv64-unknown-elf-gcc >/dev/null || missing+=(gcc-riscv64-unknown-elf binutils-riscv64-unknown-elf)
command -v qemu-system-riscv32   >/dev/null || missing+=(qemu-system-misc)
command -v espeak-ng             >/dev/null || missing+=(espeak-ng)
# more voices, real speech for false accepts, and recorded background noise
command -v flite                 >/dev/null || missing+=(flite)
[ -d /usr/share/asterisk/sounds ]           || missing+=(asterisk-core-sounds-en-wav)
[ -d /usr/share/pocketsphinx/test/data ]    || missing+=(pocketsphinx-testdata)
[ -d /usr/share/asterisk/moh ]              || missing+=(asterisk-moh-opsound-wav)
[ -x /usr/sbin/ser2net ]                    || missing+=(ser2net)   # labgrid's exporter serves serial ports with it
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -eq 0 ]; then
    echo "pqlr: installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    echo "pqlr: missing Debian packages. Run:" >&2
    echo "  sudo apt-get install -y --no-install-recommends ${PKGS[*]}" >&2
    exit 1
fi
