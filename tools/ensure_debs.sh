#!/usr/bin/env bash
# Make sure the Debian tools and data pqlr drives are present: the RV32IMAC cross compiler, QEMU, the speech
# engines and voices (festival's Czech, Finnish, Italian, Catalan, Russian and Hindi voices read respelt English), real human
# speech (false accepts; KLettres and Fish Fillets NG's dialogue for training and validation negatives), noise
# recordings, American English's word list (pqlr data synth --english-words), word lists and Hunspell dictionaries
# of 34 other languages (pqlr data synth --native-negatives;
# make demo reads 17 of them),
# sox (GSM/FLAC/Ogg decoding), and what ESP-IDF's own build needs offline (picolibc, cmake, ninja: make build-c6).
# As root they are installed with apt-get; otherwise the exact command is printed and we stop.
set -euo pipefail
PKGS=(gcc-riscv64-unknown-elf binutils-riscv64-unknown-elf qemu-system-misc
      espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox
      asterisk-core-sounds-en-wav asterisk-core-sounds-es-wav asterisk-core-sounds-fr-wav
      asterisk-core-sounds-it-wav asterisk-core-sounds-ru-wav asterisk-prompt-it-menardi-wav
      asterisk-prompt-es-co asterisk-prompt-fr-armelle pocketsphinx-testdata
      festvox-czech-dita festvox-czech-krb festvox-czech-machac festvox-czech-ph festvox-suopuhe-lj
      festvox-suopuhe-mv festvox-italp16k festvox-itapc16k festvox-ca-ona-hts festvox-ru festival-hi festvox-hi-nsk
      klettres-data fillets-ng-data fillets-ng-data-cs fillets-ng-data-nl
      asterisk-moh-opsound-wav sonic-pi-samples ser2net
      wdanish wngerman wspanish wfrench witalian wportuguese wswedish wbulgarian wcatalan wnorwegian wpolish wamerican
      hunspell-el hunspell-eu hunspell-hr hunspell-hu hunspell-is hunspell-lt hunspell-lv hunspell-ro hunspell-sl
      hunspell-tr myspell-eo myspell-et myspell-ga myspell-gd hunspell-he myspell-hy hunspell-id hunspell-kk
      hunspell-ko hunspell-kmr myspell-sq hunspell-sw hunspell-uz
      picolibc-riscv64-unknown-elf cmake ninja-build git)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
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
