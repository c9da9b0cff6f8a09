#!/usr/bin/env bash
# Installs what sideeye-tui needs from the host: Debian's BCC (never PyPI's unrelated
# "bcc") and kernel headers that BCC can find. Idempotent; quiet when all is present.
set -euo pipefail

need=()
[ -d /usr/lib/python3/dist-packages/bcc ] || need+=(python3-bpfcc bpfcc-tools)
ls -d /usr/src/linux-headers-*-amd64 >/dev/null 2>&1 || need+=(linux-headers-amd64)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages ${need[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q "${need[@]}" >/dev/null
fi

# The running kernel ships no headers; BCC looks in /lib/modules/$(uname -r)/build
# (arch part) and .../source (common part). The Debian headers of another release work
# for uprobe programs (only pt_regs matters).
mods="/lib/modules/$(uname -r)"
if [ "$(id -u)" = 0 ] && [ ! -e "$mods/source/include/linux/kconfig.h" ]; then
  hdr=$(ls -d /usr/src/linux-headers-*-amd64 | sort -V | tail -n 1)
  common=${hdr%-amd64}-common
  mkdir -p "$mods"
  ln -sfn "$hdr" "$mods/build"
  ln -sfn "$common" "$mods/source"
  echo "setup: linked $mods/build -> $hdr and $mods/source -> $common"
fi
