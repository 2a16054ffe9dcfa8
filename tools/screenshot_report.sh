#!/usr/bin/env bash
# Render a run's report.html in headless Chromium and save a full-page PNG, to check that it shows
# every picture. Needs Debian's chromium (apt-get install chromium).
#   tools/screenshot_report.sh runs/NAME [out.png] [height-in-pixels]
set -euo pipefail
run=${1:?usage: tools/screenshot_report.sh RUN [OUT.png] [HEIGHT]}
out=${2:-$run/report.png}
height=${3:-6000}
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$profile" --hide-scrollbars \
  --window-size=1200,"$height" --screenshot="$out" "file://$(realpath "$run/report.html")" >/dev/null 2>&1
echo "$out"
