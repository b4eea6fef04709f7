// cardinality.js: /ui/cardinality?name=&key= — series per metric name and
// per tag key and value, largest first, from the index (the tags API with
// verbose=1).
import { h, clear, api, params, setParams, qs, errorBox } from './util.js';

export function render(main) {
  const p = params();
  const st = { name: p.get('name') || '', key: p.get('key') || '' };
  const crumbs = h('div', { class: 'row', id: 'crumbs' });
  const body = h('div', { id: 'card-body' });
  main.append(h('h1', null, 'Cardinality'), crumbs, body);
  const nav = (o) => { Object.assign(st, o); setParams(st, true); show(); };
  async function show() {
    clear(crumbs);
    crumbs.append(h('a', { href: '/ui/cardinality' }, 'all names'));
    if (st.name) crumbs.append(' › ', h('a', { href: '/ui/cardinality?' + qs({ name: st.name }) }, st.name));
    if (st.key) crumbs.append(' › ', st.key);
    clear(body).append(h('p', { class: 'muted' }, 'Loading…'));
    try {
      const q = st.name ? `name,${st.name},:eq` : '';
      let rows;
      if (!st.key && !st.name) rows = await api('/api/v1/tags/name?' + qs({ verbose: 1, limit: 1000 }));
      else if (!st.key) rows = await api('/api/v1/tags?' + qs({ verbose: 1, limit: 1000, q }));
      else rows = await api('/api/v1/tags/' + encodeURIComponent(st.key) + '?' + qs({ verbose: 1, limit: 1000, q }));
      const label = (r) => (r.value !== undefined ? r.value : r.key);
      rows.sort((a, b) => b.count - a.count);
      const max = rows.length ? rows[0].count : 1;
      let total = 0;
      for (const r of rows) total += r.count;
      const what = !st.name && !st.key ? 'metric name' : !st.key ? 'tag key' : 'value of ' + st.key;
      clear(body).append(h('p', { class: 'muted' }, `${rows.length} ${what}s${rows.length >= 1000 ? ' (first 1000)' : ''}; series counted: ${total}`),
        h('table', { id: 'cardinality' }, h('thead', null, h('tr', null, h('th', null, what), h('th', { class: 'num' }, 'series'), h('th', null, ''))),
          h('tbody', null, rows.map((r) => {
            const bar = h('div', { class: 'hbar' });
            bar.style.width = Math.max(1, r.count / max * 100) + '%';
            let cell = label(r);
            if (!st.name && !st.key) cell = h('a', { href: '/ui/cardinality?' + qs({ name: r.value }) }, r.value);
            else if (!st.key) cell = h('a', { href: '/ui/cardinality?' + qs({ name: st.name, key: r.key }) }, r.key);
            return h('tr', null, h('td', null, cell), h('td', { class: 'num' }, String(r.count)), h('td', { class: 'bar-cell' }, bar));
          }))));
    } catch (e) { clear(body).append(errorBox(e)); }
  }
  body.addEventListener('click', (e) => {
    const a = e.target.closest('a');
    if (!a) return;
    e.preventDefault(); e.stopPropagation();
    const u = new URL(a.href);
    nav({ name: u.searchParams.get('name') || '', key: u.searchParams.get('key') || '' });
  });
  show();
}
