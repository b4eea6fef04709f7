// chart.js: our own canvas time-series chart. Lines, areas, stacks,
// vertical spans and heatmaps on up to two y axes, as the graph API's styles say; a
// legend with each line's statistics (DOM text), a hover read-out, drag to
// zoom and exemplar markers. The plot is canvas; everything read is text.
import { h, clear, fmtNum, fmtTime, palette, cssVar, zonedParts } from './util.js';

const M = { top: 10, bottom: 22, left: 56, right: 14 };

// niceTicks returns about n round values covering [lo, hi].
function niceTicks(lo, hi, n) {
  if (!(hi > lo)) { hi = lo + 1; }
  const raw = (hi - lo) / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / mag;
  const step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

const timeSteps = [1e3, 5e3, 15e3, 30e3, 60e3, 300e3, 900e3, 1800e3, 3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3, 86400e3, 7 * 86400e3];

function timeLabel(t, span, tz) {
  const z = zonedParts(t, tz);
  const p = (n) => String(n).padStart(2, '0');
  if (span > 2 * 86400e3) return `${p(z.mo)}-${p(z.d)} ${p(z.h)}:${p(z.mi)}`;
  if (span < 300e3) return `${p(z.h)}:${p(z.mi)}:${p(z.s)}`;
  return `${p(z.h)}:${p(z.mi)}`;
}

// stats of one line's values, as the graph API's legend shows them.
export function lineStats(values) {
  let n = 0, sum = 0, min = Infinity, max = -Infinity, last = NaN;
  for (const v of values) {
    if (Number.isNaN(v)) continue;
    n++; sum += v; if (v < min) min = v; if (v > max) max = v; last = v;
  }
  return n ? { avg: sum / n, min, max, last, total: sum, count: n } : { avg: NaN, min: NaN, max: NaN, last: NaN, total: NaN, count: 0 };
}

// toValues turns the API's values (numbers, "NaN", "Infinity") into a Float64Array.
export function toValues(arr) {
  const out = new Float64Array(arr.length);
  for (let i = 0; i < arr.length; i++) {
    const v = arr[i];
    out[i] = typeof v === 'number' ? v : v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : NaN;
  }
  return out;
}

// Chart draws series into container. Options: onZoom(startMs, endMs),
// onExemplar(exemplar), legend (default true).
export class Chart {
  constructor(container, opts = {}) {
    this.opts = opts;
    this.box = h('div', { class: 'chart' });
    this.canvas = h('canvas', { role: 'img', 'aria-label': 'chart' });
    this.overlay = h('canvas', { 'aria-hidden': 'true' });
    this.overlay.classList.add('overlay');
    this.readout = h('div', { class: 'readout', hidden: true, role: 'status' });
    this.box.append(this.canvas, this.overlay, this.readout);
    this.legend = h('table', { class: 'legend' });
    container.append(this.box);
    if (opts.legend !== false) container.append(this.legend);
    this.series = [];
    this.exemplars = [];
    this.markers = [];
    this.hidden = new Set();
    this.canvas.sextantChart = this;
    this._bind();
    this._ro = new ResizeObserver(() => this.draw());
    this._ro.observe(this.box);
    this._onTheme = () => this.draw();
    window.addEventListener('sextant:theme', this._onTheme);
  }

  destroy() { this._ro.disconnect(); window.removeEventListener('sextant:theme', this._onTheme); }

  // setData replaces the lines: series [{label, values, color, lineStyle,
  // lineWidth, axis, alpha, tags}], start/step in ms.
  setData({ series, start, step, end }) {
    this.series = series;
    this.start = start;
    this.step = step;
    let n = 0;
    for (const s of series) n = Math.max(n, s.values.length);
    void end;
    this.n = n;
    this.end = start + Math.max(1, n - 1) * step;
    let next = [0, 0];
    for (const s of series) {
      if (!s.color) { const a = s.axis || 0; s.color = palette[(next[a]++ + a * 5) % palette.length]; }
      else if (!s.color.startsWith('#')) s.color = '#' + s.color.slice(-6);
    }
    // The heatmap of an axis is one picture in the first heatmap line's
    // colour; its lines' legend swatches say so.
    const heat = [null, null];
    for (const s of series) {
      if (s.lineStyle !== 'heatmap') continue;
      const a = s.axis ? 1 : 0;
      s.color = heat[a] || (heat[a] = s.color);
    }
    this.draw();
    this._legend();
  }

  setExemplars(list) { this.exemplars = list || []; this.draw(); }

  draw() {
    const t0 = performance.now();
    const dpr = window.devicePixelRatio || 1;
    const W = this.box.clientWidth, H = this.box.clientHeight;
    if (!W || !H) return;
    for (const c of [this.canvas, this.overlay]) {
      if (c.width !== Math.round(W * dpr) || c.height !== Math.round(H * dpr)) { c.width = Math.round(W * dpr); c.height = Math.round(H * dpr); }
    }
    const ctx = this.canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    const axes = this._axes();
    const right = axes[1] ? 56 : M.right;
    const pw = W - M.left - right, ph = H - M.top - M.bottom;
    this.plot = { x: M.left, y: M.top, w: pw, h: ph, W, H };
    const fg = cssVar('--axis') || '#555', grid = cssVar('--grid') || '#eee';
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = fg;
    ctx.strokeStyle = grid;
    ctx.lineWidth = 1;
    // Time axis.
    const span = this.end - this.start;
    let ts = timeSteps.find((s) => span / s <= Math.max(2, pw / 90)) || timeSteps[timeSteps.length - 1];
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (let t = Math.ceil(this.start / ts) * ts; t <= this.end; t += ts) {
      const x = this.xOf(t);
      ctx.beginPath(); ctx.moveTo(Math.round(x) + 0.5, M.top); ctx.lineTo(Math.round(x) + 0.5, M.top + ph); ctx.stroke();
      ctx.fillText(timeLabel(t, span, this.opts.tz), x, M.top + ph + 4);
    }
    // Y axes.
    for (let a = 0; a < 2; a++) {
      const ax = axes[a];
      if (!ax) continue;
      ctx.textAlign = a === 0 ? 'right' : 'left';
      ctx.textBaseline = 'middle';
      for (const v of niceTicks(ax.lo, ax.hi, Math.max(2, Math.floor(ph / 40)))) {
        const y = this.yOf(v, a);
        if (a === 0) { ctx.beginPath(); ctx.moveTo(M.left, Math.round(y) + 0.5); ctx.lineTo(M.left + pw, Math.round(y) + 0.5); ctx.stroke(); }
        ctx.fillText(fmtNum(v), a === 0 ? M.left - 4 : M.left + pw + 4, y);
      }
    }
    ctx.save();
    ctx.beginPath(); ctx.rect(M.left, M.top, pw, ph); ctx.clip();
    this._heatmaps(ctx, pw, ph);
    const stackBase = [null, null];
    this.series.forEach((s, i) => {
      if (this.hidden.has(i) || s.lineStyle === 'heatmap') return;
      const a = s.axis || 0;
      const vals = s.values;
      ctx.globalAlpha = s.alpha ? parseInt(s.alpha, 16) / 255 : 1;
      ctx.strokeStyle = s.color; ctx.fillStyle = s.color;
      ctx.lineWidth = s.lineWidth || 1;
      const x0 = this.xOf(this.start), dx = this.step / (this.end - this.start) * pw;
      if (s.lineStyle === 'vspan') {
        for (let j = 0; j < vals.length; j++) {
          const v = vals[j];
          if (v && !Number.isNaN(v)) ctx.fillRect(x0 + j * dx, M.top, Math.max(1, dx), ph);
        }
        ctx.globalAlpha = 1;
        return;
      }
      let base = null;
      let y = vals;
      if (s.lineStyle === 'stack') {
        base = stackBase[a] || new Float64Array(vals.length);
        y = new Float64Array(vals.length);
        for (let j = 0; j < vals.length; j++) y[j] = base[j] + (Number.isNaN(vals[j]) ? 0 : vals[j]);
        stackBase[a] = y;
      }
      if (s.lineStyle === 'area' || s.lineStyle === 'stack') {
        if (!s.alpha) ctx.globalAlpha = 0.45;
        ctx.beginPath();
        const zero = this.yOf(0, a);
        let open = false, firstX = 0;
        for (let j = 0; j < y.length; j++) {
          const v = y[j];
          const x = x0 + j * dx;
          if (Number.isNaN(v) || (s.lineStyle === 'area' && Number.isNaN(vals[j]))) {
            if (open) { ctx.lineTo(x - dx, zero); ctx.closePath(); open = false; }
            continue;
          }
          const yy = this.yOf(v, a);
          if (!open) { firstX = x; ctx.moveTo(x, base ? this.yOf(base[j], a) : zero); open = true; }
          ctx.lineTo(x, yy);
        }
        if (open) ctx.lineTo(x0 + (y.length - 1) * dx, zero);
        ctx.fill();
        void firstX;
        ctx.globalAlpha = 1;
      }
      ctx.beginPath();
      let pen = false;
      for (let j = 0; j < y.length; j++) {
        const v = y[j];
        if (Number.isNaN(vals[j]) || !Number.isFinite(v)) { pen = false; continue; }
        const x = x0 + j * dx, yy = this.yOf(v, a);
        if (pen) ctx.lineTo(x, yy); else { ctx.moveTo(x, yy); pen = true; }
      }
      ctx.stroke();
      ctx.globalAlpha = 1;
    });
    ctx.restore();
    // Exemplar markers: a diamond at the line's value, clickable.
    this.markers = [];
    ctx.fillStyle = cssVar('--crit') || '#d62728';
    ctx.strokeStyle = cssVar('--bg') || '#fff';
    for (const ex of this.exemplars) {
      if (ex.t < this.start || ex.t > this.end) continue;
      const x = this.xOf(ex.t);
      const yv = Number.isFinite(ex.y) ? this.yOf(ex.y, ex.axis || 0) : M.top + 6;
      const y = Math.min(Math.max(yv, M.top + 4), M.top + ph - 4);
      ctx.beginPath(); ctx.moveTo(x, y - 5); ctx.lineTo(x + 5, y); ctx.lineTo(x, y + 5); ctx.lineTo(x - 5, y); ctx.closePath();
      ctx.fill(); ctx.stroke();
      this.markers.push({ x, y, ex });
    }
    this.lastDrawMs = performance.now() - t0;
  }

  // _heatmaps draws the heatmap lines of each axis as the graph API's PNG
  // does (Atlas's :heatmap): the axis is cut into rows about 6 px high, each
  // step's column counts how many lines have a value in each row, and a
  // cell's opacity grows with the log of its count, so a band where most
  // lines sit stands out from the few outliers. this.heatmapCells records
  // the cells drawn per axis (read by the browser tests).
  _heatmaps(ctx, pw, ph) {
    this.heatmapCells = [0, 0];
    const x0 = this.xOf(this.start), dx = this.step / (this.end - this.start) * pw;
    for (let a = 0; a < 2; a++) {
      const lines = this.series.filter((s, i) => !this.hidden.has(i) && s.lineStyle === 'heatmap' && (s.axis ? 1 : 0) === a);
      if (!lines.length) continue;
      const ax = this._ax[a] || this._ax[0];
      const rows = Math.max(1, Math.floor(ph / 6)), n = Math.max(...lines.map((s) => s.values.length));
      const counts = new Uint32Array(n * rows);
      let most = 0;
      for (const s of lines) {
        s.values.forEach((v, j) => {
          if (!Number.isFinite(v) || ax.hi === ax.lo) return;
          const r = Math.floor((v - ax.lo) / (ax.hi - ax.lo) * rows);
          if (r < 0 || r > rows) return;
          const k = j * rows + Math.min(r, rows - 1);
          counts[k]++;
          if (counts[k] > most) most = counts[k];
        });
      }
      if (!most) continue;
      ctx.fillStyle = lines[0].color;
      const cellH = ph / rows;
      for (let j = 0; j < n; j++) {
        for (let r = 0; r < rows; r++) {
          const k = counts[j * rows + r];
          if (!k) continue;
          ctx.globalAlpha = (40 + 215 * Math.log1p(k) / Math.log1p(most)) / 255;
          // Whole-pixel edges, so neighbouring cells meet without the
          // seams antialiasing would leave between them.
          const xa = Math.round(x0 + (j - 0.5) * dx), xb = Math.round(x0 + (j + 0.5) * dx);
          const ya = Math.round(M.top + ph - (r + 1) * cellH), yb = Math.round(M.top + ph - r * cellH);
          ctx.fillRect(xa, ya, Math.max(1, xb - xa), Math.max(1, yb - ya));
          this.heatmapCells[a]++;
        }
      }
      ctx.globalAlpha = 1;
    }
  }

  // xOf maps a time to a pixel.
  xOf(t) { return M.left + (t - this.start) / (this.end - this.start) * this.plot.w; }

  yOf(v, a) {
    const ax = this._ax[a] || this._ax[0];
    return M.top + this.plot.h - (v - ax.lo) / (ax.hi - ax.lo) * this.plot.h;
  }

  _axes() {
    const ax = [null, null];
    const stack = [null, null];
    this.series.forEach((s, i) => {
      if (this.hidden.has(i) || s.lineStyle === 'vspan') return;
      const a = s.axis ? 1 : 0;
      const r = ax[a] || (ax[a] = { lo: Infinity, hi: -Infinity });
      let vals = s.values;
      if (s.lineStyle === 'stack') {
        const base = stack[a] || new Float64Array(vals.length);
        const y = new Float64Array(vals.length);
        for (let j = 0; j < vals.length; j++) y[j] = base[j] + (Number.isNaN(vals[j]) ? 0 : vals[j]);
        stack[a] = y; vals = y;
      }
      if (s.lineStyle === 'area' || s.lineStyle === 'stack') { r.lo = Math.min(r.lo, 0); r.hi = Math.max(r.hi, 0); }
      for (const v of vals) { if (Number.isFinite(v)) { if (v < r.lo) r.lo = v; if (v > r.hi) r.hi = v; } }
    });
    for (const r of ax) {
      if (!r) continue;
      if (!Number.isFinite(r.lo)) { r.lo = 0; r.hi = 1; }
      if (r.lo === r.hi) { r.lo = r.lo > 0 ? 0 : r.lo - 1; r.hi = r.hi + (r.hi === 0 ? 1 : Math.abs(r.hi) * 0.1); }
      const t = niceTicks(r.lo, r.hi, 5);
      const st = t.length > 1 ? t[1] - t[0] : 1;
      if (r.lo > 0 && r.lo < (r.hi - r.lo)) r.lo = 0; else r.lo = Math.floor(r.lo / st) * st;
      r.hi = Math.ceil(r.hi / st) * st;
    }
    if (!ax[0]) ax[0] = ax[1] ? { lo: ax[1].lo, hi: ax[1].hi } : { lo: 0, hi: 1 };
    this._ax = ax;
    return ax;
  }

  _legend() {
    clear(this.legend);
    if (!this.series.length) { this.legend.append(h('tr', null, h('td', { class: 'muted' }, 'No data'))); return; }
    this.legend.append(h('thead', null, h('tr', null, h('th', null, 'line'), h('th', { class: 'num' }, 'avg'),
      h('th', { class: 'num' }, 'min'), h('th', { class: 'num' }, 'max'), h('th', { class: 'num' }, 'last'))));
    const body = h('tbody');
    const max = 50;
    this.series.slice(0, max).forEach((s, i) => {
      const st = lineStats(s.values);
      const sw = h('span', { class: 'swatch' });
      sw.style.background = s.color;
      const tr = h('tr', { tabindex: '0', title: 'Click or Enter to hide/show' },
        h('td', null, sw, s.label + (s.axis ? ' (right axis)' : '')), h('td', { class: 'num' }, fmtNum(st.avg)),
        h('td', { class: 'num' }, fmtNum(st.min)), h('td', { class: 'num' }, fmtNum(st.max)), h('td', { class: 'num' }, fmtNum(st.last)));
      const toggle = () => { if (this.hidden.has(i)) this.hidden.delete(i); else this.hidden.add(i); tr.classList.toggle('off'); this.draw(); };
      tr.addEventListener('click', toggle);
      tr.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); toggle(); } });
      body.append(tr);
    });
    if (this.series.length > max) body.append(h('tr', null, h('td', { class: 'muted' }, `… ${this.series.length - max} more`)));
    this.legend.append(body);
  }

  _bind() {
    const ov = this.overlay;
    ov.addEventListener('mousemove', (e) => this._hover(e));
    ov.addEventListener('mouseleave', () => { this.readout.hidden = true; if (!this._drag) this._clearOverlay(); });
    ov.addEventListener('mousedown', (e) => { if (e.button === 0) this._drag = { x0: this._px(e).x, x1: this._px(e).x }; });
    window.addEventListener('mouseup', (e) => {
      if (!this._drag) return;
      const d = this._drag; this._drag = null;
      this._clearOverlay();
      if (Math.abs(d.x1 - d.x0) > 4 && this.opts.onZoom) {
        const t = (x) => this.start + (Math.min(Math.max(x, M.left), M.left + this.plot.w) - M.left) / this.plot.w * (this.end - this.start);
        this.opts.onZoom(Math.round(t(Math.min(d.x0, d.x1))), Math.round(t(Math.max(d.x0, d.x1))));
        return;
      }
      if (e.target === ov) this._click(this._px(e));
    });
  }

  _px(e) { const r = this.overlay.getBoundingClientRect(); return { x: e.clientX - r.left, y: e.clientY - r.top }; }

  _click(p) {
    let best = null, bd = 64;
    for (const m of this.markers) { const d = (m.x - p.x) ** 2 + (m.y - p.y) ** 2; if (d <= bd) { bd = d; best = m; } }
    if (best && this.opts.onExemplar) this.opts.onExemplar(best.ex);
  }

  _clearOverlay() {
    const c = this.overlay.getContext('2d');
    c.setTransform(1, 0, 0, 1, 0, 0);
    c.clearRect(0, 0, this.overlay.width, this.overlay.height);
  }

  _hover(e) {
    if (!this.plot || !this.series.length) return;
    const p = this._px(e);
    const dpr = window.devicePixelRatio || 1;
    const c = this.overlay.getContext('2d');
    this._clearOverlay();
    c.setTransform(dpr, 0, 0, dpr, 0, 0);
    if (this._drag) {
      this._drag.x1 = p.x;
      c.fillStyle = 'rgba(100,140,200,0.25)';
      c.fillRect(Math.min(this._drag.x0, p.x), M.top, Math.abs(p.x - this._drag.x0), this.plot.h);
    }
    const n = this.n;
    const j = Math.round((p.x - M.left) / this.plot.w * (n - 1));
    if (j < 0 || j >= n) { this.readout.hidden = true; return; }
    const x = this.xOf(this.start + j * this.step);
    c.strokeStyle = cssVar('--axis'); c.beginPath(); c.moveTo(x + 0.5, M.top); c.lineTo(x + 0.5, M.top + this.plot.h); c.stroke();
    const rows = [];
    this.series.forEach((s, i) => { if (!this.hidden.has(i)) rows.push([s, s.values[j]]); });
    rows.sort((a, b) => (Number.isNaN(b[1]) ? -Infinity : b[1]) - (Number.isNaN(a[1]) ? -Infinity : a[1]));
    clear(this.readout);
    this.readout.append(h('div', { class: 'muted' }, fmtTime(this.start + j * this.step, this.opts.tz)));
    for (const [s, v] of rows.slice(0, 8)) {
      const sw = h('span', { class: 'swatch' }); sw.style.background = s.color;
      this.readout.append(h('div', null, sw, fmtNum(v) + '  ' + s.label));
    }
    if (rows.length > 8) this.readout.append(h('div', { class: 'muted' }, `… ${rows.length - 8} more`));
    this.readout.hidden = false;
    const left = p.x + 14 + 300 > this.plot.W ? Math.max(0, p.x - 320) : p.x + 14;
    this.readout.style.left = left + 'px';
    this.readout.style.top = M.top + 'px';
  }
}

// fromV2 turns a graph API v2.json answer into chart data.
export function fromV2(msgs) {
  const meta = msgs.find((m) => m.type === 'graph-metadata') || {};
  const series = msgs.filter((m) => m.type === 'timeseries').map((m) => ({
    id: m.id, label: m.label, tags: m.tags, axis: m.axis || 0, lineStyle: m.lineStyle, lineWidth: m.lineWidth,
    color: m.color, alpha: m.alpha, values: toValues(m.data.values),
  }));
  return { series, start: meta.startTime, end: meta.endTime, step: meta.step };
}
