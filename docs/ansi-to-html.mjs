#!/usr/bin/env node
// Converts the output of `tmux capture-pane -e -p` (text with SGR colour sequences) on stdin into
// an HTML page on stdout, for docs/make-screenshot.sh. Handles the SGR codes tmux emits: reset,
// bold, reverse, the 8 and 16 colours, and 256-colour foreground and background.
import { readFileSync } from 'node:fs';

const PALETTE = [
  '#1e1e1e', '#e05252', '#5fbf5f', '#d7b94a', '#5c8fe0', '#c678dd', '#4fc1c9', '#d0d0d0',
  '#707070', '#ff6e6e', '#86e086', '#f0d060', '#82aaff', '#e0a0f0', '#7fe0e8', '#ffffff',
];
const DEFAULT_FG = '#d0d0d0';
const DEFAULT_BG = '#1e1e1e';

function color256(n) {
  if (n < 16) return PALETTE[n];
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return `rgb(${v},${v},${v})`;
  }
  const i = n - 16;
  const step = (v) => (v === 0 ? 0 : 55 + v * 40);
  return `rgb(${step(Math.floor(i / 36))},${step(Math.floor(i / 6) % 6)},${step(i % 6)})`;
}

function escapeHtml(text) {
  return text.replace(/[&<>"]/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[ch]);
}

const input = readFileSync(0, 'utf8').replace(/\n$/, '');
let state = { fg: undefined, bg: undefined, bold: false, reverse: false };
const out = [];
for (const line of input.split('\n')) {
  let html = '';
  for (const part of line.split(/(\x1b\[[0-9;]*m)/)) {
    const sgr = /^\x1b\[([0-9;]*)m$/.exec(part);
    if (sgr) {
      const codes = sgr[1] === '' ? [0] : sgr[1].split(';').map(Number);
      for (let i = 0; i < codes.length; i++) {
        const code = codes[i];
        if (code === 0) state = { fg: undefined, bg: undefined, bold: false, reverse: false };
        else if (code === 1) state.bold = true;
        else if (code === 22) state.bold = false;
        else if (code === 7) state.reverse = true;
        else if (code === 27) state.reverse = false;
        else if (code >= 30 && code <= 37) state.fg = PALETTE[code - 30];
        else if (code === 39) state.fg = undefined;
        else if (code >= 40 && code <= 47) state.bg = PALETTE[code - 40];
        else if (code === 49) state.bg = undefined;
        else if (code >= 90 && code <= 97) state.fg = PALETTE[code - 90 + 8];
        else if (code >= 100 && code <= 107) state.bg = PALETTE[code - 100 + 8];
        else if ((code === 38 || code === 48) && codes[i + 1] === 5) {
          if (code === 38) state.fg = color256(codes[i + 2]);
          else state.bg = color256(codes[i + 2]);
          i += 2;
        }
      }
      continue;
    }
    if (part === '') continue;
    let fg = state.fg ?? DEFAULT_FG;
    let bg = state.bg ?? DEFAULT_BG;
    if (state.reverse) [fg, bg] = [bg, fg];
    html += `<span style="color:${fg};background:${bg}${state.bold ? ';font-weight:bold' : ''}">${escapeHtml(part)}</span>`;
  }
  out.push(html);
}
process.stdout.write(`<!doctype html>
<html><head><meta charset="utf-8"><style>
html, body { margin: 0; background: ${DEFAULT_BG}; }
pre { margin: 0; padding: 12px; font: 14px/17px "DejaVu Sans Mono", monospace; color: ${DEFAULT_FG}; }
</style></head><body><pre>${out.join('\n')}</pre></body></html>
`);
