// live.js: the client of the streaming API (api.md "Live streaming"): one
// WebSocket per subscription set, backfill first, then one message per
// line for every step that closes.
import { token } from './util.js';

// subscribe opens a stream of q; onLine(msg) gets every timeseries
// message, onDiag(msg) diagnostics. It returns a close function.
export function subscribe({ q, step, backfill }, onLine, onDiag) {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const t = token();
  const url = `${proto}//${location.host}/api/v1/stream` + (t ? '?access_token=' + encodeURIComponent(t) : '');
  let ws, closed = false, retry = 0, timer = 0;
  const open = () => {
    ws = new WebSocket(url);
    ws.addEventListener('open', () => {
      retry = 0;
      const sub = { type: 'subscribe', id: 'ui', q, backfill };
      if (step) sub.step = step;
      ws.send(JSON.stringify(sub));
    });
    ws.addEventListener('message', (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      if (m.type === 'timeseries') onLine(m);
      else if (m.type === 'diagnostic' && onDiag) onDiag(m);
    });
    ws.addEventListener('close', () => {
      if (closed) return;
      timer = setTimeout(open, Math.min(30000, 1000 * 2 ** retry++));
    });
    ws.addEventListener('error', () => { /* close follows */ });
  };
  open();
  return () => { closed = true; clearTimeout(timer); if (ws) ws.close(); };
}

// LiveSeries merges stream messages into chart lines by line id.
export class LiveSeries {
  constructor(windowMs) { this.lines = new Map(); this.windowMs = windowMs; this.start = 0; this.step = 0; }

  // add merges one message; it returns true when the set of times grew.
  add(m) {
    const vals = m.data.values.map((v) => (typeof v === 'number' ? v : v === 'Infinity' ? Infinity : NaN));
    let l = this.lines.get(m.id);
    if (!l) { l = { id: m.id, label: m.label, tags: m.tags, points: new Map() }; this.lines.set(m.id, l); }
    for (let i = 0; i < vals.length; i++) l.points.set(m.start + i * m.step, vals[i]);
    this.step = m.step;
    this.end = Math.max(this.end || 0, m.end);
    return true;
  }

  // data returns chart data covering the window up to the newest step.
  data() {
    const step = this.step || 60000;
    const last = (this.end || Date.now()) - step;
    const n = Math.max(2, Math.floor(this.windowMs / step));
    const start = last - (n - 1) * step;
    const series = [];
    for (const l of this.lines.values()) {
      const v = new Float64Array(n).fill(NaN);
      for (const [t, x] of l.points) { const i = (t - start) / step; if (i >= 0 && i < n) v[i] = x; if (i < 0) l.points.delete(t); }
      series.push({ id: l.id, label: l.label, tags: l.tags, values: v });
    }
    series.sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
    return { series, start, step };
  }
}
