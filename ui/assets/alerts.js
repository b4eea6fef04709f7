// alerts.js: /ui/alerts?tab=rules|alerts|history|silences|notifications
// and one rule's page /ui/alerts/{rule}?s=&e= with its signal, firing
// intervals and the backtest of an edited rule on the same chart.
import { h, clear, api, params, setParams, qs, errorBox, fmtTime, fmtNum } from './util.js';
import { Chart, fromV2 } from './chart.js';
import { aslEditor, timePicker } from './editor.js';

export function render(main, rule) { return rule ? renderRule(main, rule) : renderList(main); }

// list finds the array in an API answer whatever its envelope.
function list(r, ...keys) {
  if (Array.isArray(r)) return r;
  if (!r || typeof r !== 'object') return [];
  for (const k of keys) if (Array.isArray(r[k])) return r[k];
  if (r.data) return list(r.data, ...keys);
  for (const v of Object.values(r)) if (Array.isArray(v)) return v;
  return [];
}

// rules flattens the rules answer into [{group, rule:{alert,expr,...}, health, instances}].
async function fetchRules() {
  const r = await api('/api/v1/alerting/rules');
  const out = [];
  for (const x of list(r, 'rules', 'groups')) {
    if (x.rule) out.push(x);
    else if (Array.isArray(x.rules)) for (const y of x.rules) out.push(y.rule ? y : { group: x.name, rule: y, health: y.health, instances: y.instances || y.alerts || [] });
    else if (x.alert || x.name) out.push({ group: x.group || '', rule: { alert: x.alert || x.name, expr: x.expr || x.query }, health: x.health, instances: x.instances || x.alerts || [] });
  }
  return out;
}

const time = (v) => (typeof v === 'number' ? fmtTime(v) : v ? fmtTime(Date.parse(v)) : '');
const labelText = (l) => Object.entries(l || {}).map(([k, v]) => `${k}=${v}`).join(', ');
const badge = (s) => h('span', { class: 'badge ' + String(s || '').toLowerCase() }, String(s || '—'));
const tabs = ['rules', 'alerts', 'history', 'silences', 'notifications'];

function renderList(main) {
  const p = params();
  const st = { tab: tabs.includes(p.get('tab')) ? p.get('tab') : 'rules' };
  const bar = h('div', { class: 'tabs', role: 'tablist' });
  const body = h('div', { id: 'alerts-body' });
  main.append(h('h1', null, 'Alerts'), bar, body);
  const show = () => {
    clear(bar);
    for (const t of tabs) {
      const b = h('button', { type: 'button', class: 'ghost', role: 'tab', id: 'tab-' + t, 'aria-selected': String(t === st.tab), 'aria-pressed': String(t === st.tab) }, t);
      b.addEventListener('click', () => { st.tab = t; setParams({ tab: t === 'rules' ? '' : t }); show(); });
      bar.append(b);
    }
    clear(body).append(h('p', { class: 'muted' }, 'Loading…'));
    ({ rules, alerts, history, silences, notifications })[st.tab](body, (t) => { st.tab = t; setParams({ tab: t }); show(); }).catch((e) => clear(body).append(errorBox(e)));
  };
  show();
}

async function rules(body) {
  const rs = await fetchRules();
  clear(body);
  if (!rs.length) { body.append(h('p', { class: 'muted' }, 'No rules. Add rule files with --rules-dir or PUT /api/v1/alerting/rules/{group}.')); return; }
  body.append(h('table', { id: 'rules' }, h('thead', null, h('tr', null, h('th', null, 'group'), h('th', null, 'rule'), h('th', null, 'health'),
    h('th', null, 'instances'), h('th', null, 'expression'))), h('tbody', null, rs.map((r) => {
    const counts = {};
    for (const i of r.instances || []) counts[i.state] = (counts[i.state] || 0) + 1;
    return h('tr', null, h('td', null, r.group || ''), h('td', null, h('a', { href: '/ui/alerts/' + encodeURIComponent(r.rule.alert) }, r.rule.alert)),
      h('td', null, badge(r.health)), h('td', null, Object.entries(counts).map(([s, n]) => h('span', null, badge(s), ' ' + n + ' '))),
      h('td', { class: 'mono' }, r.rule.expr));
  }))));
}

async function alerts(body, goTab) {
  const as = list(await api('/api/v1/alerting/alerts'), 'alerts');
  clear(body);
  const form = h('div', { id: 'silence-form' });
  if (!as.length) body.append(h('p', { class: 'muted' }, 'Nothing is pending or firing.'));
  else body.append(h('table', { id: 'alert-list' }, h('thead', null, h('tr', null, h('th', null, 'rule'), h('th', null, 'state'), h('th', null, 'labels'),
    h('th', null, 'summary'), h('th', { class: 'num' }, 'value'), h('th', null, 'active since'), h('th', null, ''))),
  h('tbody', null, as.map((a) => {
    const b = h('button', { type: 'button', class: 'ghost silence-btn' }, 'Silence');
    b.addEventListener('click', () => silenceForm(form, Object.entries(a.labels || {}).map(([name, value]) => ({ name, value, isRegex: false, isEqual: true })), () => goTab('silences')));
    return h('tr', null, h('td', null, h('a', { href: '/ui/alerts/' + encodeURIComponent(a.rule || (a.labels || {}).alertname) }, a.rule || (a.labels || {}).alertname)),
      h('td', null, badge(a.state)), h('td', { class: 'mono' }, labelText(a.labels)), h('td', null, (a.annotations || {}).summary || ''),
      h('td', { class: 'num' }, fmtNum(a.value)), h('td', null, time(a.activeAt)), h('td', null, b));
  }))));
  body.append(form);
}

// parseMatchers reads "a=b, c=~d.*, e!=f" into silence matchers.
export function parseMatchers(text) {
  const out = [];
  for (const part of text.split(',')) {
    const m = /^\s*([^=!~\s]+)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$/.exec(part);
    if (m) out.push({ name: m[1], value: m[3], isRegex: m[2].includes('~'), isEqual: !m[2].startsWith('!') });
  }
  return out;
}

const matcherText = (ms) => ms.map((m) => m.name + (m.isRegex ? (m.isEqual === false ? '!~' : '=~') : (m.isEqual === false ? '!=' : '=')) + m.value).join(', ');

function silenceForm(box, matchers, done) {
  clear(box);
  const ms = h('input', { id: 'silence-matchers', size: 60, value: matcherText(matchers), 'aria-label': 'Matchers' });
  const dur = h('select', { id: 'silence-duration', 'aria-label': 'Duration' });
  for (const [l, ms2] of [['1h', 3600e3], ['2h', 7200e3], ['4h', 4 * 3600e3], ['1d', 86400e3], ['1w', 7 * 86400e3]]) dur.append(h('option', { value: String(ms2) }, l));
  dur.value = String(7200e3);
  const by = h('input', { id: 'silence-by', value: localStorage.getItem('sextant.user') || '', placeholder: 'your name', 'aria-label': 'Created by', required: true });
  const comment = h('input', { id: 'silence-comment', size: 40, placeholder: 'why', 'aria-label': 'Comment', required: true });
  const preview = h('button', { type: 'button', class: 'ghost', id: 'silence-preview' }, 'Preview');
  const out = h('div', { id: 'silence-affected' });
  const form = h('form', { class: 'panel' }, h('h2', null, 'New silence'), h('div', { class: 'row' }, h('label', { for: 'silence-matchers' }, 'Matchers'), ms),
    h('div', { class: 'row' }, h('label', { for: 'silence-duration' }, 'For'), dur, by, comment, preview, h('button', { type: 'submit', id: 'silence-create' }, 'Create silence')), out);
  box.append(form);
  const body = () => {
    const now = Date.now();
    return { matchers: parseMatchers(ms.value), startsAt: new Date(now).toISOString(), endsAt: new Date(now + +dur.value).toISOString(), createdBy: by.value.trim(), comment: comment.value.trim() };
  };
  preview.addEventListener('click', async () => {
    clear(out);
    try {
      const r = list(await api('/api/v1/alerting/silences/preview', { method: 'POST', body: body() }), 'alerts', 'affected');
      out.append(h('p', null, `${r.length} alerts would be silenced:`), h('ul', null, r.map((a) => h('li', { class: 'mono' }, labelText(a.labels || a)))));
    } catch (e) { out.append(errorBox(e)); }
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clear(out);
    try {
      localStorage.setItem('sextant.user', by.value.trim());
      const r = await api('/api/v1/alerting/silences', { method: 'POST', body: body() });
      out.append(h('p', { role: 'status', id: 'silence-created' }, 'Silence created: ' + (r.silenceID || r.id || '')));
      if (done) done();
    } catch (err) { out.append(errorBox(err)); }
  });
  ms.focus();
}

async function history(body) {
  const p = params();
  const tr = list(await api('/api/v1/alerting/history?' + qs({ rule: p.get('rule') || '', s: p.get('s') || 'e-1d', e: p.get('e') || '' })), 'history', 'transitions');
  clear(body);
  if (!tr.length) { body.append(h('p', { class: 'muted' }, 'No transitions in the last day.')); return; }
  body.append(h('table', { id: 'history' }, h('thead', null, h('tr', null, h('th', null, 'at'), h('th', null, 'rule'), h('th', null, 'labels'), h('th', null, 'from'), h('th', null, 'to'))),
    h('tbody', null, tr.slice().reverse().map((t) => h('tr', null, h('td', null, time(t.at)), h('td', null, t.rule || (t.labels || {}).alertname || ''),
      h('td', { class: 'mono' }, labelText(t.labels)), h('td', null, badge(t.from)), h('td', null, badge(t.to)))))));
}

async function silences(body) {
  const ss = list(await api('/api/v1/alerting/silences'), 'silences');
  clear(body);
  const form = h('div');
  const nb = h('button', { type: 'button', id: 'new-silence' }, 'New silence');
  nb.addEventListener('click', () => silenceForm(form, [], () => silences(body)));
  body.append(h('div', { class: 'row' }, nb), form);
  if (!ss.length) { body.append(h('p', { class: 'muted' }, 'No silences.')); return; }
  body.append(h('table', { id: 'silences' }, h('thead', null, h('tr', null, h('th', null, 'matchers'), h('th', null, 'state'), h('th', null, 'starts'), h('th', null, 'ends'), h('th', null, 'by'), h('th', null, 'comment'), h('th', null, ''))),
    h('tbody', null, ss.map((s) => {
      const exp = h('button', { type: 'button', class: 'ghost' }, 'Expire');
      exp.addEventListener('click', async () => { try { await api('/api/v1/alerting/silences/' + encodeURIComponent(s.id), { method: 'DELETE' }); silences(body); } catch (e) { body.append(errorBox(e)); } });
      return h('tr', null, h('td', { class: 'mono' }, matcherText(s.matchers || [])), h('td', null, badge((s.status || {}).state)), h('td', null, time(s.startsAt)),
        h('td', null, time(s.endsAt)), h('td', null, s.createdBy || ''), h('td', null, s.comment || ''), h('td', null, (s.status || {}).state === 'expired' ? '' : exp));
    }))));
}

async function notifications(body) {
  const ns = list(await api('/api/v1/alerting/notifications'), 'notifications', 'deliveries');
  clear(body);
  if (!ns.length) { body.append(h('p', { class: 'muted' }, 'No notifications sent yet.')); return; }
  body.append(h('table', { id: 'notifications' }, h('thead', null, h('tr', null, h('th', null, 'at'), h('th', null, 'receiver'), h('th', null, 'integration'), h('th', null, 'status'), h('th', null, 'outcome'), h('th', { class: 'num' }, 'attempts'), h('th', null, 'alerts'), h('th', null, 'error'))),
    h('tbody', null, ns.slice().reverse().map((n) => h('tr', null, h('td', null, time(n.at)), h('td', null, n.receiver || ''), h('td', null, n.integration || ''), h('td', null, badge(n.status)),
      h('td', null, badge(n.outcome)), h('td', { class: 'num' }, String(n.attempts || 0)), h('td', null, String((n.alerts || []).length)), h('td', null, n.error || n.reason || ''))))));
}

// intervals turns firing [{start,end}] into a vspan line over data's steps.
function vspan(data, firing, label, color) {
  const n = data.series[0] ? data.series[0].values.length : Math.round((data.end - data.start) / data.step);
  const v = new Float64Array(n);
  for (const f of firing) {
    const a = Math.max(0, Math.floor((f.start - data.start) / data.step)), b = Math.min(n - 1, Math.ceil(((f.end || data.end) - data.start) / data.step));
    for (let i = a; i <= b; i++) v[i] = 1;
  }
  return { label, values: v, lineStyle: 'vspan', alpha: '40', color };
}

// firingFrom rebuilds firing intervals of a rule from its transitions.
function firingFrom(trs, now) {
  const open = new Map(), out = [];
  for (const t of trs.slice().sort((a, b) => a.at - b.at)) {
    const k = labelText(t.labels);
    if (t.to === 'firing') open.set(k, t.at);
    else if (open.has(k)) { out.push({ labels: t.labels, start: open.get(k), end: t.at }); open.delete(k); }
  }
  for (const [, s] of open) out.push({ start: s, end: now });
  return out;
}

function renderRule(main, name) {
  const p = params();
  const st = { s: p.get('s') || 'e-6h', e: p.get('e') || 'now' };
  const info = h('div', { id: 'rule-info' }, h('p', { class: 'muted' }, 'Loading…'));
  const chartBox = h('div', { id: 'rule-chart' });
  const msg = h('div');
  const picker = timePicker(st, (v) => { st.s = v.s; st.e = v.e; setParams({ s: st.s, e: st.e === 'now' ? '' : st.e }); draw(); });
  main.append(h('h1', null, 'Rule ', h('span', { class: 'mono' }, name)), h('div', { class: 'row' }, picker.el), info, msg, chartBox);
  const chart = new Chart(chartBox, {});
  let rule = null, base = null, backtest = [];
  const ed = aslEditor('', () => runBacktest(), { id: 'rule-expr' });
  const forIn = h('input', { id: 'rule-for', size: 6, 'aria-label': 'for', placeholder: 'for' });
  const btn = h('button', { type: 'button', id: 'backtest' }, 'Backtest edited rule');
  const btOut = h('div', { id: 'backtest-out' });

  async function draw() {
    clear(msg);
    try {
      const [g, hist] = await Promise.all([
        api('/api/v1/graph?' + qs({ q: rule.expr, s: st.s, e: st.e, format: 'v2.json' })),
        api('/api/v1/alerting/history?' + qs({ rule: name, s: st.s, e: st.e })).catch(() => []),
      ]);
      base = fromV2(g);
      const firing = firingFrom(list(hist, 'history', 'transitions'), Date.now());
      base.firingCount = firing.length;
      show(firing);
    } catch (e) { msg.append(errorBox(e)); }
  }
  function show(firing) {
    const d = Object.assign({}, base, { series: base.series.slice() });
    if (firing.length) d.series.push(vspan(base, firing, 'firing', 'd62728'));
    if (backtest.length) d.series.push(vspan(base, backtest, 'backtest firing', 'ff7f0e'));
    chart.setData(d);
    base.lastFiring = firing;
  }
  async function runBacktest() {
    clear(btOut);
    // Only the rule's own fields: the rules answer adds its state beside them.
    const r = {};
    for (const k of ['alert', 'expr', 'for', 'keep_firing_for', 'nodata', 'labels', 'annotations']) if (rule[k] !== undefined) r[k] = rule[k];
    r.expr = ed.value();
    if (forIn.value.trim()) r.for = forIn.value.trim(); else delete r.for;
    try {
      const res = await api('/api/v1/alerting/backtest', { method: 'POST', body: { rule: r, s: st.s, e: st.e } });
      backtest = res.firing || [];
      const g = await api('/api/v1/graph?' + qs({ q: r.expr, s: st.s, e: st.e, format: 'v2.json' }));
      const edited = fromV2(g);
      for (const s of edited.series) { s.label = 'edited: ' + s.label; s.color = undefined; }
      const keepFiring = base.lastFiring || [];
      base = Object.assign({}, base, { series: base.series.filter((s) => !s.label.startsWith('edited: ')).concat(edited.series) });
      show(keepFiring);
      btOut.append(h('p', { role: 'status' }, `Backtest: ${backtest.length} firing intervals, ${(res.transitions || []).length} transitions, ${res.notifications || 0} notifications.`));
    } catch (e) { btOut.append(errorBox(e)); if (e.body && e.body.word) ed.showError(e, ed.value()); }
  }
  btn.addEventListener('click', runBacktest);
  (async () => {
    try {
      const rs = await fetchRules();
      const r = rs.find((x) => x.rule.alert === name);
      if (!r) throw new Error('no rule named ' + name);
      rule = r.rule;
      clear(info).append(h('table', { class: 'kv' }, h('tbody', null,
        h('tr', null, h('td', null, 'group'), h('td', null, r.group || '')), h('tr', null, h('td', null, 'health'), h('td', null, badge(r.health))),
        h('tr', null, h('td', null, 'expression'), h('td', { class: 'mono' }, rule.expr)), h('tr', null, h('td', null, 'for'), h('td', null, String(rule.for || '0'))),
        h('tr', null, h('td', null, 'labels'), h('td', { class: 'mono' }, labelText(rule.labels))),
        h('tr', null, h('td', null, 'instances'), h('td', null, (r.instances || []).map((i) => h('div', null, badge(i.state), ' ', labelText(i.labels))))))),
      h('h2', null, 'Edit and backtest'), ed.el, h('div', { class: 'row' }, forIn, btn), btOut);
      ed.setValue(rule.expr);
      forIn.value = rule.for ? String(rule.for) : '';
      await draw();
    } catch (e) { clear(info).append(errorBox(e)); }
  })();
  return () => chart.destroy();
}
