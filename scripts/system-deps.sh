#!/usr/bin/env bash
# Debian packages Nudge's tests and demo need: PostgreSQL server binaries (tests start their own
# throwaway server on 127.0.0.1), Chromium (the browser tests drive it through Playwright) and
# promtool from Prometheus (CI checks the alert rules with it). Installs only what is missing;
# needs root (or sudo) and apt.
set -euo pipefail

missing=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v chromium >/dev/null || missing+=(chromium)
command -v promtool >/dev/null || missing+=(prometheus)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "system-deps: please install: ${missing[*]} (no apt-get on this machine)" >&2
    exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
