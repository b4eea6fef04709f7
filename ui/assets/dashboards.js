// dashboards.js: the list (/ui/dashboards) and one dashboard
// (/ui/dashboards/{id}?s=&e=&var-NAME=&live=0&edit=1): a grid of panels,
// variables filled from tag values, live by default, edited in place,
// imported and exported as JSON.
import { h, clear, api, params, setParams, qs, go, errorBox, fmtNum } from './util.js';
import { Chart, fromV2, lineStats } from './chart.js';
import { aslEditor, timePicker, checkExpr } from './editor.js';
import { subscribe, LiveSeries } from './live.js';

export function render(main, id) { return id ? renderOne(main, id) : renderList(main); }

const idRe = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function slug(title) { return title.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 64) || 'dashboard'; }

function renderList(main) {
  const list = h('div', { id: 'dashboards' }, h('p', { class: 'muted' }, 'Loading…'));
  const title = h('input', { id: 'new-title', size: 30, placeholder: 'Title', 'aria-label': 'New dashboard title', required: true });
  const create = h('form', { class: 'row', id: 'new-dashboard' }, title, h('button', { type: 'submit' }, 'New dashboard'));
  const file = h('input', { type: 'file', id: 'import-file', accept: 'application/json,.json', 'aria-label': 'Import a dashboard JSON file' });
  const msg = h('div');
  main.append(h('h1', null, 'Dashboards'), create, h('div', { class: 'row' }, h('label', { for: 'import-file' }, 'Import JSON'), file), msg, list);
  create.addEventListener('submit', async (e) => {
    e.preventDefault();
    const t = title.value.trim();
    if (!t) return;
    const id = slug(t) + '-' + Date.now().toString(36);
    try {
      await api('/api/v1/dashboards/' + id, { method: 'PUT', body: { title: t, variables: [], panels: [] } });
      go('/ui/dashboards/' + id + '?edit=1');
    } catch (err) { clear(msg).append(errorBox(err)); }
  });
  file.addEventListener('change', async () => {
    const f = file.files[0];
    if (!f) return;
    try {
      const d = JSON.parse(await f.text());
      const id = d.id && idRe.test(d.id) ? d.id : slug(d.title || 'imported') + '-' + Date.now().toString(36);
      delete d.id;
      await api('/api/v1/dashboards/' + id, { method: 'PUT', body: d });
      go('/ui/dashboards/' + id);
    } catch (err) { clear(msg).append(errorBox(err)); }
  });
  (async () => {
    try {
      const r = await api('/api/v1/dashboards');
      clear(list);
      if (!r.dashboards.length) { list.append(h('p', { class: 'muted' }, 'No dashboards yet.')); return; }
      list.append(h('table', null, h('thead', null, h('tr', null, h('th', null, 'title'), h('th', null, 'id'), h('th', { class: 'num' }, 'panels'))),
        h('tbody', null, r.dashboards.map((d) => h('tr', null, h('td', null, h('a', { href: '/ui/dashboards/' + encodeURIComponent(d.id) }, d.title || d.id)),
          h('td', { class: 'mono' }, d.id), h('td', { class: 'num' }, String(d.panels)))))));
    } catch (e) { clear(list).append(errorBox(e)); }
  })();
}

function renderOne(main, id) {
  const p = params();
  const st = { s: p.get('s') || 'e-1h', e: p.get('e') || 'now', live: p.get('live') !== '0', edit: p.get('edit') === '1', vars: {} };
  for (const [k, v] of p) if (k.startsWith('var-')) st.vars[k.slice(4)] = v;
  const save = () => {
    const o = { s: st.s === 'e-1h' ? '' : st.s, e: st.e === 'now' ? '' : st.e, live: st.live ? '' : '0', edit: st.edit ? '1' : '' };
    for (const [k, v] of Object.entries(st.vars)) o['var-' + k] = v;
    setParams(o);
  };
  const head = h('h1', { id: 'dash-title' }, 'Dashboard');
  const bar = h('div', { class: 'row' });
  const vars = h('div', { class: 'row', id: 'variables' });
  const msg = h('div');
  const grid = h('div', { class: 'grid', id: 'panels' });
  main.append(head, bar, vars, msg, grid);
  let dash = null, panels = [], dead = false;

  const picker = timePicker(st, (v) => { st.s = v.s; st.e = v.e; save(); drawPanels(); });
  const liveBtn = h('button', { type: 'button', class: 'ghost', id: 'live', 'aria-pressed': String(st.live) }, 'Live');
  const editBtn = h('button', { type: 'button', class: 'ghost', id: 'edit', 'aria-pressed': String(st.edit) }, 'Edit');
  const saveBtn = h('button', { type: 'button', id: 'save', class: st.edit ? '' : 'hidden' }, 'Save');
  const addBtn = h('button', { type: 'button', class: 'ghost' + (st.edit ? '' : ' hidden'), id: 'add-panel' }, 'Add panel');
  const addVar = h('button', { type: 'button', class: 'ghost' + (st.edit ? '' : ' hidden'), id: 'add-variable' }, 'Add variable');
  const exportA = h('a', { id: 'export', download: id + '.json', href: '#' }, 'Export JSON');
  const del = h('button', { type: 'button', class: 'ghost', id: 'delete' }, 'Delete');
  bar.append(picker.el, liveBtn, editBtn, addBtn, addVar, saveBtn, h('span', { class: 'grow' }), exportA, del);
  liveBtn.addEventListener('click', () => { st.live = !st.live; liveBtn.setAttribute('aria-pressed', String(st.live)); save(); drawPanels(); });
  editBtn.addEventListener('click', () => {
    st.edit = !st.edit; editBtn.setAttribute('aria-pressed', String(st.edit));
    for (const b of [saveBtn, addBtn, addVar]) b.classList.toggle('hidden', !st.edit);
    save(); drawVars(); drawPanels();
  });
  addBtn.addEventListener('click', () => { dash.panels.push({ title: 'New panel', q: '', s: '', e: '', step: '', type: 'line', w: 6, h: 4 }); drawPanels(); });
  addVar.addEventListener('click', () => { dash.variables.push({ name: 'app', key: 'nf.app' }); drawVars(); });
  saveBtn.addEventListener('click', async () => {
    clear(msg);
    try {
      dash = await api('/api/v1/dashboards/' + encodeURIComponent(id), { method: 'PUT', body: dash });
      msg.append(h('p', { class: 'muted', role: 'status', id: 'saved' }, 'Saved.'));
      exportLink();
    } catch (e) { msg.append(errorBox(e)); }
  });
  del.addEventListener('click', async () => {
    if (!confirm('Delete this dashboard?')) return;
    try { await api('/api/v1/dashboards/' + encodeURIComponent(id), { method: 'DELETE' }); go('/ui/dashboards'); } catch (e) { clear(msg).append(errorBox(e)); }
  });
  const exportLink = () => {
    if (exportA.href.startsWith('blob:')) URL.revokeObjectURL(exportA.href);
    exportA.href = URL.createObjectURL(new Blob([JSON.stringify(Object.assign({ id }, dash), null, 2)], { type: 'application/json' }));
  };

  function drawVars() {
    clear(vars);
    dash.variables.forEach((v, i) => {
      if (st.edit) {
        const name = h('input', { size: 8, value: v.name, 'aria-label': 'variable name' });
        const key = h('input', { size: 10, value: v.key, 'aria-label': 'tag key' });
        const q = h('input', { size: 18, value: v.query || '', placeholder: 'query (optional)', 'aria-label': 'restricting query' });
        const rm = h('button', { type: 'button', class: 'ghost' }, '×');
        name.addEventListener('change', () => { v.name = name.value.trim(); });
        key.addEventListener('change', () => { v.key = key.value.trim(); });
        q.addEventListener('change', () => { v.query = q.value.trim(); });
        rm.addEventListener('click', () => { dash.variables.splice(i, 1); drawVars(); });
        vars.append(h('span', { class: 'panel row' }, '$', name, '=', key, q, rm));
        return;
      }
      const sel = h('select', { id: 'var-' + v.name, 'aria-label': 'variable ' + v.name }, h('option', { value: '' }, 'any'));
      vars.append(h('label', { for: 'var-' + v.name }, '$' + v.name), sel);
      api('/api/v1/tags/' + encodeURIComponent(v.key) + '?' + qs({ q: v.query || '', limit: 1000 })).then((vals) => {
        for (const x of vals) sel.append(h('option', { value: x }, x));
        sel.value = st.vars[v.name] || v.default || '';
      }).catch(() => {});
      sel.addEventListener('change', () => { st.vars[v.name] = sel.value; save(); drawPanels(); });
    });
  }

  // expand replaces $name with the chosen value; with none chosen the
  // clause name,$name,:eq becomes name,:has (any value).
  const expand = (q) => {
    let out = q;
    for (const v of dash.variables) {
      const val = st.vars[v.name] || v.default || '';
      if (val) out = out.split('$' + v.name).join(val);
      else out = out.split(`${v.key},$${v.name},:eq`).join(`${v.key},:has`).split('$' + v.name).join('');
    }
    return out;
  };

  function drawPanels() {
    for (const pn of panels) pn.stop();
    panels = [];
    clear(grid);
    if (!dash.panels.length) grid.append(h('p', { class: 'muted span-w-12' }, st.edit ? 'No panels: Add panel.' : 'No panels yet: Edit, then Add panel.'));
    dash.panels.forEach((pd, i) => panels.push(panel(pd, i)));
  }

  function panel(pd, i) {
    const box = h('section', { class: 'panel span-w-' + Math.min(12, Math.max(1, pd.w || 6)), 'aria-label': pd.title || 'panel' });
    const title = h('h3', null, h('span', { class: 'grow' }, pd.title || pd.q));
    box.append(title);
    grid.append(box);
    let stop = () => {};
    if (st.edit) {
      const t = h('input', { value: pd.title, 'aria-label': 'panel title', class: 'panel-title' });
      const ed = aslEditor(pd.q, () => { pd.q = ed.value(); drawPanels(); }, { id: 'panel-q-' + i });
      const type = h('select', { 'aria-label': 'panel type' });
      for (const x of ['line', 'area', 'stack', 'table', 'stat']) type.append(h('option', { value: x }, x));
      type.value = pd.type || 'line';
      const w = h('input', { type: 'number', min: 1, max: 12, value: pd.w || 6, 'aria-label': 'width (of 12)', size: 3 });
      const rm = h('button', { type: 'button', class: 'ghost' }, 'Remove');
      const apply = h('button', { type: 'button', class: 'ghost' }, 'Apply');
      t.addEventListener('change', () => { pd.title = t.value; });
      ed.input.addEventListener('change', () => { pd.q = ed.value(); });
      type.addEventListener('change', () => { pd.type = type.value; });
      w.addEventListener('change', () => { pd.w = Math.min(12, Math.max(1, +w.value || 6)); });
      rm.addEventListener('click', () => { dash.panels.splice(i, 1); drawPanels(); });
      apply.addEventListener('click', () => { pd.q = ed.value(); drawPanels(); });
      clear(title).append(t);
      box.append(ed.el, h('div', { class: 'row' }, type, w, apply, rm));
    }
    if (!pd.q) return { stop };
    const body = h('div');
    box.append(body);
    const q = expand(pd.q);
    const type = pd.type || 'line';
    let chart = null;
    const show = (data) => {
      if (type === 'line' || type === 'area' || type === 'stack') {
        if (type !== 'line') for (const s of data.series) if (!s.lineStyle || s.lineStyle === 'line') s.lineStyle = type;
        if (!chart) {
          chart = new Chart(body, { legend: true, onZoom: (s, e) => { st.s = String(s); st.e = String(e); picker.set(st); save(); drawPanels(); } });
          chart.box.style.height = Math.min(24, Math.max(2, pd.h || 4)) * 50 + 'px';
        }
        chart.setData(data);
        return;
      }
      clear(body);
      if (type === 'stat') {
        for (const s of data.series.slice(0, 4)) body.append(h('div', { class: 'stat' }, h('strong', null, fmtNum(lineStats(s.values).last)), ' ', s.label));
        return;
      }
      body.append(h('table', null, h('tbody', null, data.series.map((s) => { const x = lineStats(s.values); return h('tr', null, h('td', null, s.label), h('td', { class: 'num' }, fmtNum(x.last)), h('td', { class: 'num' }, fmtNum(x.max))); }))));
    };
    const s = pd.s || st.s, e = pd.e || st.e;
    let dead = false;
    checkExpr(q).then((bad) => {
      if (bad) throw bad;
      return api('/api/v1/graph?' + qs({ q, s, e, step: pd.step, format: 'v2.json' }));
    }).then((r) => {
      if (dead) return;
      show(fromV2(r));
      if (st.live && e === 'now') {
        const m = /^e-(\d+\w+)$/.exec(s);
        const ls = new LiveSeries(chart ? chart.end - chart.start : 3600e3);
        let pending = false;
        const close = subscribe({ q, step: pd.step || undefined, backfill: m ? m[1] : '1h' }, (msg) => {
          ls.add(msg);
          if (pending || dead) return;
          pending = true;
          requestAnimationFrame(() => { pending = false; if (!dead) show(ls.data()); });
        });
        stop = () => { dead = true; close(); };
      }
    }).catch((err) => { if (!dead) body.append(errorBox(err)); });
    return { stop: () => { dead = true; stop(); if (chart) chart.destroy(); } };
  }

  (async () => {
    try {
      dash = await api('/api/v1/dashboards/' + encodeURIComponent(id));
      if (dead) return;
      dash.variables = dash.variables || [];
      dash.panels = dash.panels || [];
      head.textContent = dash.title || id;
      document.title = (dash.title || id) + ' · Sextant';
      exportLink();
      drawVars();
      drawPanels();
    } catch (e) { msg.append(errorBox(e)); }
  })();
  return () => { dead = true; for (const pn of panels) pn.stop(); };
}
