// explore.js: the Explore view — /ui/explore?q=&s=&e=&step=&tz=&view=&live=
import { h, clear, api, params, setParams, qs, go, fmtTime, fmtNum, errorBox, parseDuration } from './util.js';
import { Chart, fromV2 } from './chart.js';
import { aslEditor, timePicker, checkExpr } from './editor.js';
import { subscribe, LiveSeries } from './live.js';

export function render(main) {
  const p = params();
  const state = { q: p.get('q') || '', s: p.get('s') || 'e-1h', e: p.get('e') || 'now', step: p.get('step') || '',
    tz: p.get('tz') || '', w: p.get('w') || '', view: p.get('view') || 'chart', live: p.get('live') === '1' };
  const save = (push) => setParams({ q: state.q, s: state.s, e: state.e === 'now' ? '' : state.e, step: state.step, tz: state.tz, w: state.w,
    view: state.view === 'chart' ? '' : state.view, live: state.live ? '1' : '' }, push);
  const editor = aslEditor(state.q, () => run(true));
  const picker = timePicker(state, (v) => { Object.assign(state, v); run(true); });
  const runBtn = h('button', { type: 'button', id: 'run', title: 'Run (Ctrl+Enter)' }, 'Run');
  const liveBtn = h('button', { type: 'button', class: 'ghost', id: 'live', 'aria-pressed': String(state.live), title: 'Stream new steps as they close' }, 'Live');
  const tabChart = h('button', { type: 'button', class: 'ghost', id: 'tab-chart', 'aria-pressed': 'true' }, 'Chart');
  const tabTable = h('button', { type: 'button', class: 'ghost', id: 'tab-table', 'aria-pressed': 'false' }, 'Table');
  const links = h('span', { class: 'row' });
  const status = h('div', { class: 'muted', id: 'status', role: 'status' });
  const msg = h('div');
  const chartBox = h('div', { id: 'chart-box' });
  const tableBox = h('div', { id: 'table-box', class: 'hidden' });
  const exList = h('div', { id: 'exemplars' });
  main.append(h('h1', null, 'Explore'), editor.el,
    h('div', { class: 'row' }, runBtn, picker.el, liveBtn, h('span', { class: 'grow' }), h('span', { class: 'tabs' }, tabChart, tabTable), links),
    msg, status, chartBox, tableBox, exList);
  const chart = new Chart(chartBox, {
    tz: state.tz,
    onZoom: (s, e) => { state.s = String(s); state.e = String(e); picker.set(state); run(true); },
    onExemplar: (ex) => go('/ui/traces/' + ex.traceID),
  });
  let data = null, stop = null, seq = 0;

  const setView = (v) => {
    state.view = v;
    tabChart.setAttribute('aria-pressed', String(v === 'chart'));
    tabTable.setAttribute('aria-pressed', String(v === 'table'));
    chartBox.classList.toggle('hidden', v !== 'chart');
    tableBox.classList.toggle('hidden', v !== 'table');
    if (v === 'table') drawTable();
    save(false);
  };
  tabChart.addEventListener('click', () => setView('chart'));
  tabTable.addEventListener('click', () => setView('table'));
  runBtn.addEventListener('click', () => run(true));
  liveBtn.addEventListener('click', () => { state.live = !state.live; liveBtn.setAttribute('aria-pressed', String(state.live)); run(true); });

  function drawTable() {
    clear(tableBox);
    if (!data || !data.series.length) { tableBox.append(h('p', { class: 'muted' }, 'No data')); return; }
    const cols = data.series.slice(0, 20);
    const t = h('table', { id: 'values' });
    t.append(h('thead', null, h('tr', null, h('th', null, 'time'), cols.map((s) => h('th', { class: 'num' }, s.label)))));
    const body = h('tbody');
    const n = cols[0].values.length;
    for (let i = n - 1; i >= Math.max(0, n - 500); i--) {
      body.append(h('tr', null, h('td', { class: 'mono' }, fmtTime(data.start + i * data.step)), cols.map((s) => h('td', { class: 'num' }, fmtNum(s.values[i])))));
    }
    t.append(body);
    tableBox.append(t, n > 500 ? h('p', { class: 'muted' }, 'Newest 500 steps; the CSV link has them all.') : null);
  }

  function setLinks() {
    clear(links);
    if (!state.q) return;
    const base = { q: state.q, s: state.s, e: state.e, step: state.step, tz: state.tz };
    links.append(h('a', { href: '/api/v1/graph?' + qs(Object.assign({}, base, { format: 'png' })), target: '_blank', id: 'link-png' }, 'PNG'),
      h('a', { href: '/api/v1/graph?' + qs(Object.assign({}, base, { format: 'svg' })), target: '_blank', id: 'link-svg' }, 'SVG'),
      h('a', { href: '/api/v1/graph?' + qs(Object.assign({}, base, { format: 'csv' })), target: '_blank', id: 'link-csv' }, 'CSV'));
  }

  async function exemplars(my) {
    clear(exList);
    if (!/span\./.test(state.q)) return;
    try {
      const r = await api('/api/v1/exemplars?' + qs({ q: state.q, s: state.s, e: state.e, step: data.step ? data.step / 1000 + 's' : state.step }));
      if (my !== seq) return;
      const list = [];
      for (const line of r.lines || []) {
        const s = data.series.find((x) => x.label === line.legend);
        for (const ex of line.exemplars || []) {
          let y = NaN;
          if (s) { const i = Math.round((ex.timestamp - data.start) / data.step); y = s.values[i]; }
          list.push({ t: ex.timestamp, y, axis: s ? s.axis : 0, traceID: ex.traceID, spanID: ex.spanID, label: line.legend, duration: ex.duration, operation: ex.operation, service: ex.service });
        }
      }
      chart.setExemplars(list);
      if (list.length) {
        const top = list.slice().sort((a, b) => b.duration - a.duration).slice(0, 10);
        exList.append(h('h2', null, `Exemplars (${list.length}; the slowest)`), h('ul', null, top.map((ex) =>
          h('li', null, h('a', { href: '/ui/traces/' + ex.traceID, class: 'exemplar' }, ex.traceID.slice(0, 16)),
            ` ${ex.service || ''} ${ex.operation || ''} ${fmtNum(ex.duration)}s at ${fmtTime(ex.t)}`))));
      }
    } catch { /* exemplars are optional: span metrics only */ }
  }

  async function run(push) {
    const my = ++seq;
    state.q = editor.value();
    save(push);
    setLinks();
    if (stop) { stop(); stop = null; }
    clear(msg);
    if (!state.q) { status.textContent = 'Type an expression, then Run (Ctrl+Enter).'; chart.setData({ series: [], start: Date.now() - 3600e3, step: 60e3 }); return; }
    if (state.live) return runLive(my);
    status.textContent = 'Loading…';
    const t0 = performance.now();
    try {
      const bad = await checkExpr(state.q);
      if (my !== seq) return;
      if (bad) { status.textContent = ''; editor.showError(bad, state.q); chart.setData({ series: [], start: Date.now() - 3600e3, step: 60e3 }); return; }
    } catch { /* the graph API reports it */ }
    try {
      const r = await api('/api/v1/graph?' + qs({ q: state.q, s: state.s, e: state.e, step: state.step, tz: state.tz, w: state.w || Math.min(4000, Math.max(100, Math.round(chartBox.clientWidth))) || '', format: 'v2.json' }));
      if (my !== seq) return;
      data = fromV2(r);
      chart.setData(data);
      if (state.view === 'table') drawTable();
      status.textContent = `${data.series.length} lines × ${data.series[0] ? data.series[0].values.length : 0} steps of ${data.step / 1000}s · ${Math.round(performance.now() - t0)} ms`;
      exemplars(my);
    } catch (e) {
      if (my !== seq) return;
      status.textContent = '';
      if (e.body && e.body.param === 'q') editor.showError(e, state.q); else msg.append(errorBox(e));
    }
  }

  function runLive(my) {
    // The window and backfill follow s when it is relative to the end (e-15m).
    const m = /^e-(.+)$/.exec(state.s);
    const windowMs = (m && parseDuration(m[1])) || 3600e3;
    const ls = new LiveSeries(windowMs);
    status.textContent = 'Live: waiting for the backfill…';
    let pending = false;
    stop = subscribe({ q: state.q, step: state.step || undefined, backfill: Math.round(windowMs / 1000) + 's' }, (m) => {
      if (my !== seq) return;
      ls.add(m);
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        data = ls.data();
        chart.setData(data);
        if (state.view === 'table') drawTable();
        status.textContent = `Live: ${data.series.length} lines, newest step ${fmtTime(data.start + (data.series[0] ? data.series[0].values.length - 1 : 0) * data.step)}`;
      });
    }, (d) => { if (d.level === 'error') { clear(msg); msg.append(errorBox(new Error(d.message))); } else status.textContent = 'Live: ' + d.message; });
  }

  setView(state.view);
  run(false);
  return () => { seq++; if (stop) stop(); chart.destroy(); };
}
