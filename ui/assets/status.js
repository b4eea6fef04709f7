// status.js: /ui/status?filter= — build, settings in force and Sextant's
// own metrics (its /metrics page, filterable).
import { h, clear, api, params, setParams, errorBox } from './util.js';

export function render(main) {
  const info = h('div', { id: 'status-info' });
  const filter = h('input', { id: 'metrics-filter', size: 30, placeholder: 'filter self-metrics', 'aria-label': 'Filter self-metrics', value: params().get('filter') || '' });
  const metrics = h('div', { id: 'self-metrics' });
  main.append(h('h1', null, 'Status'), info, h('h2', null, 'Self-metrics'), h('div', { class: 'row' }, filter,
    h('a', { href: '/ui/explore?q=nf.app,sextant,:eq,(,name,),:by&s=e-1h' }, 'graph them')), metrics);
  const kv = (o) => h('table', { class: 'kv' }, h('tbody', null, Object.entries(o || {}).map(([k, v]) =>
    h('tr', null, h('td', null, k), h('td', { class: 'mono' }, typeof v === 'object' ? JSON.stringify(v) : String(v))))));
  let rows = [];
  const draw = () => {
    const f = filter.value.trim().toLowerCase();
    setParams({ filter: f });
    clear(metrics).append(h('table', { id: 'metrics' }, h('tbody', null, rows.filter((r) => !f || r[0].toLowerCase().includes(f)).slice(0, 500).map((r) =>
      h('tr', null, h('td', { class: 'mono' }, r[0]), h('td', { class: 'num' }, r[1]))))));
  };
  filter.addEventListener('input', draw);
  (async () => {
    try {
      const s = await api('/api/v1/status');
      for (const [k, v] of Object.entries(s)) info.append(h('h2', null, k), v && typeof v === 'object' ? kv(v) : h('p', null, String(v)));
    } catch (e) { info.append(errorBox(e)); }
    try {
      const text = await api('/metrics', {}, true);
      rows = text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => { const i = l.lastIndexOf(' '); return [l.slice(0, i), l.slice(i + 1)]; });
      draw();
    } catch (e) { metrics.append(errorBox(e)); }
  })();
}
