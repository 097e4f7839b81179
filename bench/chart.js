'use strict';
// Charts of a benchmark's samples as a PNG: a page of Chart.js canvases (chart.js from
// node_modules) in headless Chromium (Debian's, /usr/bin/chromium, driven by playwright-core as
// the browser spec does), screenshotted. Nothing is fetched: the page is built in memory.
const { existsSync, mkdirSync } = require('node:fs');
const { dirname, join } = require('node:path');

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHART_JS = join(__dirname, '..', 'node_modules/chart.js/dist/chart.umd.js');

/** A colour per series index, distinguishable and printable. */
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#17becf', '#bcbd22'];

const escapeHtml = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

/**
 * Renders `panels` (Chart.js configurations: plain JSON, no callbacks) in a grid of `columns`
 * under `title` (and `subtitle`), each `panelWidth` × `panelHeight` CSS pixels, to the PNG at
 * `png`. Animations are switched off so the screenshot shows the finished charts.
 */
async function renderChartsPng({ title, subtitle = '', panels, png, columns = 2, panelWidth = 820, panelHeight = 400 }) {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`);
  const { chromium } = require('playwright-core');
  const width = columns * panelWidth + (columns + 1) * 16;
  const html = `<!doctype html><html><head><meta charset="utf-8"><style>
    body { margin: 0; padding: 12px 16px 16px; font: 15px system-ui, 'DejaVu Sans', sans-serif; color: #222; background: #fff; width: ${width - 32}px; }
    h1 { font-size: 20px; margin: 0 0 2px; } p { margin: 0 0 10px; color: #555; }
    .grid { display: grid; grid-template-columns: repeat(${columns}, ${panelWidth}px); gap: 16px; }
    .panel { border: 1px solid #ddd; border-radius: 4px; padding: 4px; width: ${panelWidth - 10}px; height: ${panelHeight}px; }
  </style></head><body><h1>${escapeHtml(title)}</h1><p>${escapeHtml(subtitle)}</p><div class="grid">${panels
    .map((_, i) => `<div class="panel"><canvas id="c${i}" width="${panelWidth - 10}" height="${panelHeight}"></canvas></div>`)
    .join('')}</div></body></html>`;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width, height: 400 }, deviceScaleFactor: 1 });
    const errors = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.setContent(html);
    await page.addScriptTag({ path: CHART_JS });
    await page.evaluate((configs) => {
      /* global Chart */
      Chart.defaults.animation = false;
      Chart.defaults.responsive = false;
      Chart.defaults.font.size = 13;
      configs.forEach((cfg, i) => new Chart(document.getElementById(`c${i}`), cfg));
    }, panels);
    if (errors.length) throw new Error(`chart page: ${errors.join('; ')}`);
    mkdirSync(dirname(png), { recursive: true });
    await page.screenshot({ path: png, fullPage: true });
  } finally {
    await browser.close();
  }
}

module.exports = { renderChartsPng, PALETTE };
