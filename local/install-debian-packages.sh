#!/usr/bin/env bash
# Install the Debian/Ubuntu packages given as arguments, only those missing; fast when none is.
# Runs apt-get update once, and only when something must be installed. Uses sudo when not root.
set -euo pipefail

missing=()
for package in "$@"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-debian-packages: apt-get not found; install these yourself: ${missing[*]}" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-debian-packages: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi

echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"

# We want the prometheus and alertmanager binaries, not the system services the packages enable
# (they would hold ports 9090/9093 that the local stack uses). Stop only what we just installed.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  for package in "${missing[@]}"; do
    case "$package" in
      prometheus|prometheus-alertmanager)
        "${sudo[@]}" systemctl disable --now "$package" >/dev/null 2>&1 || true
        echo "disabled the $package system service (the local stack runs its own)"
        ;;
    esac
  done
fi
