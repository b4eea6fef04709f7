// editor.js: the ASL editor (autocomplete from /api/v1/expr/complete,
// the error shown inline at the word it names) and the time range picker.
import { h, clear, api, debounce, qs } from './util.js';

// aslEditor returns {el, input, value(), setValue(), check()}; onRun is
// called on Ctrl/Cmd+Enter.
export function aslEditor(initial, onRun, opts = {}) {
  const id = opts.id || 'q';
  const input = h('textarea', { class: 'asl', id, spellcheck: 'false', autocomplete: 'off', 'aria-label': 'ASL expression',
    'aria-autocomplete': 'list', 'aria-controls': id + '-complete', placeholder: 'name,sps,:eq,(,nf.app,),:by' });
  input.value = initial || '';
  const list = h('ul', { class: 'complete hidden', id: id + '-complete', role: 'listbox' });
  const err = h('div', { class: 'error hidden', id: id + '-error', role: 'alert' });
  const el = h('div', { class: 'editor' }, input, list, err);
  let items = [], sel = 0, reqSeq = 0;

  const hide = () => { list.classList.add('hidden'); items = []; input.setAttribute('aria-expanded', 'false'); };
  const show = () => {
    clear(list);
    items.forEach((it, i) => {
      const li = h('li', { role: 'option', id: `${id}-opt-${i}`, 'aria-selected': i === sel ? 'true' : 'false' },
        h('span', { class: 'mono' }, it.text), it.hint ? h('span', { class: 'sig' }, it.hint) : null);
      li.addEventListener('mousedown', (e) => { e.preventDefault(); accept(i); });
      list.append(li);
    });
    if (!items.length) { hide(); return; }
    list.classList.remove('hidden');
    input.setAttribute('aria-expanded', 'true');
    input.setAttribute('aria-activedescendant', `${id}-opt-${sel}`);
  };
  const accept = (i) => {
    const it = items[i];
    if (!it) return;
    const pos = input.selectionStart;
    const before = input.value.slice(0, pos), after = input.value.slice(pos);
    const cut = before.lastIndexOf(',') + 1;
    input.value = before.slice(0, cut) + it.text + after;
    const np = cut + it.text.length;
    input.setSelectionRange(np, np);
    hide();
    input.dispatchEvent(new Event('input'));
    input.focus();
  };
  // Verdicts on the program before the word being typed, by its text: it
  // changes only when a comma is typed.
  const runs = new Map();
  const complete = debounce(async () => {
    const my = ++reqSeq;
    const before = input.value.slice(0, input.selectionStart);
    const done = before.slice(0, Math.max(0, before.lastIndexOf(',')));
    try {
      if (!runs.has(done)) {
        if (runs.size > 100) runs.clear();
        runs.set(done, (await api('/api/v1/ui/check?' + qs({ q: done, partial: 1 }))).ok);
      }
      if (!runs.get(done)) { if (my === reqSeq) hide(); return; }
      const r = await api('/api/v1/expr/complete?' + qs({ q: before }));
      if (my !== reqSeq) return;
      items = [];
      for (const w of r.words || []) items.push({ text: w.name, hint: w.signature + ' — ' + (w.summary || '') });
      for (const k of r.keys || []) items.push({ text: k, hint: 'tag key' });
      for (const v of r.values || []) items.push({ text: v, hint: r.key ? 'value of ' + r.key : 'tag value' });
      items = items.slice(0, 50);
      sel = 0;
      if (document.activeElement === input) show();
    } catch { hide(); }
  }, 120);
  const check = async () => {
    const q = input.value.trim();
    if (!q) { err.classList.add('hidden'); return true; }
    try {
      const bad = await checkExpr(q);
      if (bad) { showError(bad, q); return false; }
      err.classList.add('hidden');
      input.removeAttribute('aria-invalid');
      return true;
    } catch (e) {
      showError(e, q);
      return false;
    }
  };
  const showError = (e, q) => {
    clear(err);
    const b = e.body || {};
    err.append(h('div', null, e.message));
    if (typeof b.position === 'number' && b.word) {
      const pos = b.position;
      // The expression with the bad word marked where it is.
      err.append(h('div', { class: 'mono' }, q.slice(0, pos), h('mark', null, q.slice(pos, pos + b.word.length) || b.word), q.slice(pos + b.word.length)));
    }
    err.classList.remove('hidden');
    input.setAttribute('aria-invalid', 'true');
  };
  const checkLater = debounce(check, 400);
  input.addEventListener('input', () => { complete(); checkLater(); });
  input.addEventListener('click', complete);
  input.addEventListener('blur', () => setTimeout(hide, 100));
  input.addEventListener('keydown', (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') { e.preventDefault(); hide(); onRun && onRun(); return; }
    if (list.classList.contains('hidden')) {
      if (e.key === ' ' && e.ctrlKey) { e.preventDefault(); complete(); }
      return;
    }
    if (e.key === 'ArrowDown') { e.preventDefault(); sel = (sel + 1) % items.length; show(); }
    else if (e.key === 'ArrowUp') { e.preventDefault(); sel = (sel - 1 + items.length) % items.length; show(); }
    else if (e.key === 'Tab' || e.key === 'Enter') { e.preventDefault(); accept(sel); }
    else if (e.key === 'Escape') { e.preventDefault(); hide(); }
  });
  return { el, input, value: () => input.value.trim(), setValue: (v) => { input.value = v; }, check, showError };
}

// checkExpr lints q with /api/v1/ui/check (always a 200, so typing logs
// no failed request); it resolves to null or an error with the word and
// its position in body.
export async function checkExpr(q) {
  const r = await api('/api/v1/ui/check?' + qs({ q }));
  if (r.ok) return null;
  const e = new Error(r.message);
  e.body = { param: 'q', message: r.message, word: r.word, position: r.position, token: r.token };
  return e;
}

const ranges = [['5m', 'e-5m'], ['15m', 'e-15m'], ['1h', 'e-1h'], ['3h', 'e-3h'], ['12h', 'e-12h'], ['1d', 'e-1d'], ['1w', 'e-1w']];

// timePicker edits s, e and step (the graph API's syntax); onChange({s,e,step}).
export function timePicker(state, onChange) {
  const sel = h('select', { 'aria-label': 'Time range', id: 'range' });
  for (const [label, s] of ranges) sel.append(h('option', { value: s }, 'last ' + label));
  sel.append(h('option', { value: 'custom' }, 'custom'));
  const s = h('input', { id: 's', size: 16, 'aria-label': 'Start (s)', value: state.s || 'e-1h' });
  const e = h('input', { id: 'e', size: 16, 'aria-label': 'End (e)', value: state.e || 'now' });
  const step = h('input', { id: 'step', size: 5, 'aria-label': 'Step', placeholder: 'step', value: state.step || '' });
  const sync = () => { const m = ranges.find((r) => r[1] === s.value && (e.value === 'now' || e.value === '')); sel.value = m ? m[1] : 'custom'; };
  sync();
  const fire = () => onChange({ s: s.value.trim(), e: e.value.trim(), step: step.value.trim() });
  sel.addEventListener('change', () => { if (sel.value !== 'custom') { s.value = sel.value; e.value = 'now'; fire(); } });
  for (const i of [s, e, step]) i.addEventListener('change', () => { sync(); fire(); });
  const el = h('span', { class: 'row' }, sel, h('label', { for: 's' }, 's'), s, h('label', { for: 'e' }, 'e'), e, h('label', { for: 'step' }, 'step'), step);
  return { el, set(v) { s.value = v.s; e.value = v.e; sync(); } };
}
