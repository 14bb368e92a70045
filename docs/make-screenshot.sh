#!/bin/sh
# Makes docs/tui.png: the dashboard on captures/story.pcap, drawn in a 120x40 tmux pane,
# captured with its colours, turned into HTML and rendered to PNG by headless Chromium.
# Needs tmux, Chromium (Debian package "chromium") and the DejaVu fonts; run after npm run build.
set -eu
cd "$(dirname "$0")/.."
socket=mt-screenshot-$$
work=$(mktemp -d)
trap 'tmux -L "$socket" kill-server 2>/dev/null || true; rm -rf "$work"' EXIT

tmux -L "$socket" new-session -d -x 120 -y 40 \
  "LANG=C.UTF-8 TERM=xterm-256color node dist/cli/main.js read captures/story.pcap --config captures/story.yaml --tui --speed 0"
tries=0
until tmux -L "$socket" capture-pane -p | grep -q 'end of capture'; do
  tries=$((tries + 1))
  if [ "$tries" -gt 100 ]; then echo "make-screenshot: the dashboard did not finish the capture" >&2; exit 1; fi
  sleep 0.2
done
tmux -L "$socket" capture-pane -e -N -p > "$work/screen.ansi"
node docs/ansi-to-html.mjs < "$work/screen.ansi" > "$work/screen.html"
chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
  --hide-scrollbars --window-size=1040,710 --screenshot="$work/tui.png" "file://$work/screen.html" 2>/dev/null
cp "$work/tui.png" docs/tui.png
echo "wrote docs/tui.png"
