// traces.js: trace search (/ui/traces?service=&operation=&tags=&minDuration=&lookback=),
// one trace's waterfall (/ui/traces/{id}) and the comparison of two
// (/ui/traces/compare?a=&b=). Span names and attributes are only ever text.
import { h, clear, api, params, setParams, qs, go, fmtDur, fmtTime, errorBox, serviceColor, cssVar, debounce } from './util.js';
import { Waterfall, buildTrace } from './waterfall.js';

export function render(main, arg) {
  if (location.pathname === '/ui/traces/compare') return renderCompare(main);
  if (arg) return renderTrace(main, arg);
  return renderSearch(main);
}

// parseTags reads "k=v k2=~re" into exact and regex objects.
export function parseTags(text) {
  const exact = {}, regex = {};
  const re = /([^\s=~]+)(=~|=)("([^"]*)"|\S*)/g;
  let m;
  while ((m = re.exec(text))) {
    const v = m[4] !== undefined ? m[4] : m[3];
    if (m[2] === '=~') regex[m[1]] = v; else exact[m[1]] = v;
  }
  return { exact, regex };
}

function tagsText(tags, tagsRegex) {
  const parts = [];
  const q = (v) => (/\s/.test(v) ? `"${v}"` : v);
  try { for (const [k, v] of Object.entries(JSON.parse(tags || '{}'))) parts.push(`${k}=${q(v)}`); } catch { parts.push(tags); }
  try { for (const [k, v] of Object.entries(JSON.parse(tagsRegex || '{}'))) parts.push(`${k}=~${q(v)}`); } catch { /* ignore */ }
  return parts.join(' ');
}

function renderSearch(main) {
  const p = params();
  const st = {};
  for (const k of ['service', 'operation', 'tags', 'tagsRegex', 'minDuration', 'maxDuration', 'minTraceDuration', 'maxTraceDuration', 'lookback', 'limit']) st[k] = p.get(k) || '';
  const svc = h('select', { id: 'service', 'aria-label': 'Service' }, h('option', { value: '' }, 'service…'));
  const op = h('select', { id: 'operation', 'aria-label': 'Operation' }, h('option', { value: '' }, 'all operations'));
  const tags = h('input', { id: 'tags', size: 34, placeholder: 'http.status_code=500 http.route=~/api/.*', 'aria-label': 'Attribute filters', value: tagsText(st.tags, st.tagsRegex) });
  const minD = h('input', { id: 'minDuration', size: 7, placeholder: 'min span', 'aria-label': 'Minimum span duration', value: st.minDuration });
  const maxD = h('input', { id: 'maxDuration', size: 7, placeholder: 'max span', 'aria-label': 'Maximum span duration', value: st.maxDuration });
  const minT = h('input', { id: 'minTraceDuration', size: 7, placeholder: 'min trace', 'aria-label': 'Minimum trace duration', value: st.minTraceDuration });
  const maxT = h('input', { id: 'maxTraceDuration', size: 7, placeholder: 'max trace', 'aria-label': 'Maximum trace duration', value: st.maxTraceDuration });
  const lookback = h('select', { id: 'lookback', 'aria-label': 'Lookback' });
  for (const l of ['15m', '1h', '3h', '12h', '1d', '2d', '7d']) lookback.append(h('option', { value: l }, 'last ' + l));
  lookback.value = st.lookback || '1h';
  const limit = h('input', { id: 'limit', size: 4, 'aria-label': 'Limit', value: st.limit || '20' });
  const form = h('form', { class: 'row', id: 'search' }, svc, op, tags, minD, maxD, minT, maxT, lookback, limit, h('button', { type: 'submit' }, 'Find traces'));
  const out = h('div', { id: 'results' });
  const compareBtn = h('button', { type: 'button', class: 'ghost', id: 'compare', disabled: true }, 'Compare selected');
  main.append(h('h1', null, 'Traces'), form, out);

  const loadOps = async (service, keep) => {
    clear(op).append(h('option', { value: '' }, 'all operations'));
    if (!service) return;
    try {
      const r = await api('/api/services/' + encodeURIComponent(service) + '/operations');
      for (const o of (r.data || []).slice().sort()) op.append(h('option', { value: o }, o));
      if (keep) op.value = keep;
    } catch { /* the list stays empty */ }
  };
  (async () => {
    try {
      const r = await api('/api/services');
      for (const s of (r.data || []).slice().sort()) svc.append(h('option', { value: s }, s));
      if (st.service) { svc.value = st.service; await loadOps(st.service, st.operation); }
    } catch (e) { out.append(errorBox(e)); }
  })();
  svc.addEventListener('change', () => loadOps(svc.value));
  form.addEventListener('submit', (e) => { e.preventDefault(); search(true); });

  let seq = 0;
  async function search(push) {
    const my = ++seq;
    const t = parseTags(tags.value);
    const q = { service: svc.value || st.service, operation: op.value || (push ? '' : st.operation),
      tags: Object.keys(t.exact).length ? JSON.stringify(t.exact) : '', tagsRegex: Object.keys(t.regex).length ? JSON.stringify(t.regex) : '',
      minDuration: minD.value.trim(), maxDuration: maxD.value.trim(), minTraceDuration: minT.value.trim(), maxTraceDuration: maxT.value.trim(),
      lookback: lookback.value, limit: limit.value.trim() || '20' };
    setParams(q, push);
    clear(out);
    if (!q.service) { out.append(h('p', { class: 'muted' }, 'Pick a service to search its traces.')); return; }
    out.append(h('p', { class: 'muted' }, 'Searching…'));
    try {
      const r = await api('/api/traces?' + qs(q));
      if (my !== seq) return;
      showResults((r.data || []).map(summarize));
    } catch (e) {
      if (my !== seq) return;
      clear(out).append(errorBox(e));
    }
  }

  function showResults(list) {
    clear(out);
    if (!list.length) { out.append(h('p', { class: 'muted', id: 'no-results' }, 'No traces match.')); return; }
    const canvas = h('canvas', { class: 'scatter', id: 'scatter', role: 'img', 'aria-label': 'Trace durations over time' });
    const selected = new Set();
    compareBtn.addEventListener('click', () => { const [a, b] = [...selected]; go('/ui/traces/compare?' + qs({ a, b })); });
    const rows = list.map((t) => {
      const cb = h('input', { type: 'checkbox', 'aria-label': 'select ' + t.id });
      cb.addEventListener('change', () => { if (cb.checked) selected.add(t.id); else selected.delete(t.id); compareBtn.disabled = selected.size !== 2; });
      return h('tr', null, h('td', null, cb),
        h('td', null, h('a', { href: '/ui/traces/' + t.id, class: 'trace-link' }, t.root)),
        h('td', null, t.services.join(', ')), h('td', { class: 'num' }, String(t.spans)), h('td', { class: 'num' }, String(t.errors)),
        h('td', { class: 'num' }, fmtDur(t.duration)), h('td', { class: 'mono' }, fmtTime(t.start / 1000)));
    });
    out.append(h('div', { class: 'chart scatter' }, canvas), h('div', { class: 'row' }, h('span', { class: 'muted' }, `${list.length} traces`), compareBtn),
      h('table', { id: 'trace-list' }, h('thead', null, h('tr', null, h('th', null, ''), h('th', null, 'trace'), h('th', null, 'services'),
        h('th', { class: 'num' }, 'spans'), h('th', { class: 'num' }, 'errors'), h('th', { class: 'num' }, 'duration'), h('th', null, 'start'))), h('tbody', null, rows)));
    drawScatter(canvas, list);
  }
  search(false);
  return () => { seq++; };
}

// summarize reduces a Jaeger trace to a list row.
function summarize(t) {
  let start = Infinity, end = 0, errors = 0, root = null;
  const ids = new Set(t.spans.map((s) => s.spanID));
  for (const s of t.spans) {
    start = Math.min(start, s.startTime); end = Math.max(end, s.startTime + s.duration);
    if ((s.tags || []).some((x) => x.key === 'error' && (x.value === true || x.value === 'true'))) errors++;
    const parent = (s.references || []).find((r) => r.refType === 'CHILD_OF' && ids.has(r.spanID));
    if (!parent && (!root || s.startTime < root.startTime)) root = s;
  }
  const services = [...new Set(t.spans.map((s) => (t.processes[s.processID] || {}).serviceName || '?'))].sort();
  const rs = root ? (t.processes[root.processID] || {}).serviceName + ': ' + root.operationName : t.traceID;
  return { id: t.traceID, root: rs, services, spans: t.spans.length, errors, start, duration: end - start };
}

function drawScatter(canvas, list) {
  const draw = () => {
    const dpr = window.devicePixelRatio || 1;
    const W = canvas.clientWidth, H = canvas.clientHeight;
    if (!W) return;
    canvas.width = W * dpr; canvas.height = H * dpr;
    const c = canvas.getContext('2d');
    c.setTransform(dpr, 0, 0, dpr, 0, 0);
    let t0 = Infinity, t1 = 0, d1 = 0;
    for (const t of list) { t0 = Math.min(t0, t.start); t1 = Math.max(t1, t.start); d1 = Math.max(d1, t.duration); }
    if (t1 === t0) { t0 -= 1e6; t1 += 1e6; }
    const L = 60, B = 18, pw = W - L - 24, ph = H - B - 16;
    c.fillStyle = cssVar('--axis'); c.font = '11px system-ui';
    c.textAlign = 'right'; c.fillText(fmtDur(d1), L - 4, 14); c.fillText('0', L - 4, 8 + ph);
    c.textAlign = 'left'; c.fillText(fmtTime(t0 / 1000), L, H - 4); c.textAlign = 'right'; c.fillText(fmtTime(t1 / 1000), W - 10, H - 4);
    canvas._pts = [];
    for (const t of list) {
      const x = L + (t.start - t0) / (t1 - t0) * pw, y = 8 + ph - t.duration / (d1 || 1) * ph;
      c.fillStyle = t.errors ? cssVar('--error') : serviceColor(t.services[0] || '');
      c.globalAlpha = 0.75;
      c.beginPath(); c.arc(x, y, Math.min(10, 3 + Math.sqrt(t.spans)), 0, 2 * Math.PI); c.fill();
      canvas._pts.push({ x, y, id: t.id });
    }
    c.globalAlpha = 1;
  };
  draw();
  canvas.addEventListener('click', (e) => {
    const r = canvas.getBoundingClientRect(), x = e.clientX - r.left, y = e.clientY - r.top;
    let best = null, bd = 100;
    for (const p of canvas._pts || []) { const d = (p.x - x) ** 2 + (p.y - y) ** 2; if (d < bd) { bd = d; best = p; } }
    if (best) go('/ui/traces/' + best.id);
  });
}

function renderTrace(main, id) {
  const p = params();
  const body = h('div', null, h('p', { class: 'muted' }, 'Loading trace ' + id + '…'));
  main.append(h('h1', null, 'Trace ', h('span', { class: 'mono' }, id)), body);
  let wf = null, dead = false;
  (async () => {
    try {
      const r = await api('/api/traces/' + encodeURIComponent(id));
      if (dead) return;
      const t = (r.data || [])[0];
      if (!t) throw new Error('trace ' + id + ' not found');
      clear(body);
      wf = new Waterfall(body, buildTrace(t), {
        span: p.get('span') || '', filter: p.get('filter') || '', find: p.get('find') || '', crit: p.get('crit') === '1',
        onState: (s) => setParams({ span: s.span, filter: s.filter, find: s.find, crit: s.crit ? '1' : '' }),
      });
    } catch (e) { clear(body).append(errorBox(e)); }
  })();
  return () => { dead = true; if (wf) wf.destroy(); };
}

function renderCompare(main) {
  const p = params();
  const a = p.get('a') || '', b = p.get('b') || '';
  const ia = h('input', { id: 'trace-a', size: 34, value: a, 'aria-label': 'Trace A' });
  const ib = h('input', { id: 'trace-b', size: 34, value: b, 'aria-label': 'Trace B' });
  const form = h('form', { class: 'row' }, h('label', { for: 'trace-a' }, 'A'), ia, h('label', { for: 'trace-b' }, 'B'), ib, h('button', { type: 'submit' }, 'Compare'));
  const out = h('div', { id: 'compare-out' });
  form.addEventListener('submit', (e) => { e.preventDefault(); go('/ui/traces/compare?' + qs({ a: ia.value.trim(), b: ib.value.trim() })); });
  main.append(h('h1', null, 'Compare traces'), form, out);
  if (!a || !b) { out.append(h('p', { class: 'muted' }, 'Give two trace ids.')); return; }
  (async () => {
    try {
      const [ra, rb] = await Promise.all([api('/api/traces/' + encodeURIComponent(a)), api('/api/traces/' + encodeURIComponent(b))]);
      const ta = buildTrace(ra.data[0]), tb = buildTrace(rb.data[0]);
      const key = (s) => s.service + ' ' + s.op;
      const agg = new Map();
      for (const [t, side] of [[ta, 0], [tb, 1]]) {
        for (const s of t.spans) {
          const k = key(s);
          const g = agg.get(k) || { service: s.service, op: s.op, n: [0, 0], d: [0, 0] };
          g.n[side]++; g.d[side] += s.duration;
          agg.set(k, g);
        }
      }
      const rows = [...agg.values()].sort((x, y) => Math.abs(y.d[1] - y.d[0]) - Math.abs(x.d[1] - x.d[0]));
      const diff = (x, y, f) => { const d = y - x; return h('td', { class: 'num ' + (d > 0 ? 'diff-pos' : d < 0 ? 'diff-neg' : '') }, (d > 0 ? '+' : '') + f(d)); };
      out.append(h('p', null, `A: ${ta.spans.length} spans, ${fmtDur(ta.duration)} · B: ${tb.spans.length} spans, ${fmtDur(tb.duration)}`),
        h('table', { id: 'compare-table' }, h('thead', null, h('tr', null, h('th', null, 'service'), h('th', null, 'operation'),
          h('th', { class: 'num' }, 'spans A'), h('th', { class: 'num' }, 'spans B'), h('th', { class: 'num' }, 'Δ spans'),
          h('th', { class: 'num' }, 'time A'), h('th', { class: 'num' }, 'time B'), h('th', { class: 'num' }, 'Δ time'))),
        h('tbody', null, rows.map((g) => h('tr', null, h('td', null, g.service), h('td', null, g.op),
          h('td', { class: 'num' }, String(g.n[0])), h('td', { class: 'num' }, String(g.n[1])), diff(g.n[0], g.n[1], String),
          h('td', { class: 'num' }, fmtDur(g.d[0])), h('td', { class: 'num' }, fmtDur(g.d[1])), diff(g.d[0], g.d[1], (d) => (d < 0 ? '-' : '') + fmtDur(Math.abs(d))))))));
    } catch (e) { out.append(errorBox(e)); }
  })();
  void debounce;
}
