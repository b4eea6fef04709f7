// waterfall.js: one trace as a virtualized waterfall. Only the rows in
// view exist in the DOM, so a trace of 50 000 spans scrolls as smoothly
// as one of 50. Collapse, filter (matching spans only), find, the critical
// path, and a details pane with attributes, events and links.
import { h, clear, fmtDur, fmtTime, serviceColor, qs } from './util.js';

const ROW = 22;

// buildTrace turns a Jaeger API trace into spans in depth-first order.
export function buildTrace(t) {
  const byID = new Map();
  const spans = t.spans.map((s) => {
    const proc = t.processes[s.processID] || {};
    const tags = s.tags || [];
    const x = { id: s.spanID, op: s.operationName, service: proc.serviceName || '?', ptags: proc.tags || [], start: s.startTime, duration: s.duration,
      end: s.startTime + s.duration, tags, logs: s.logs || [], refs: s.references || [], children: [], depth: 0, parent: null, crit: false,
      error: tags.some((k) => (k.key === 'error' && (k.value === true || k.value === 'true')) || (k.key === 'otel.status_code' && k.value === 'ERROR')),
      kind: (tags.find((k) => k.key === 'span.kind') || {}).value || '' };
    byID.set(x.id, x);
    return x;
  });
  const roots = [];
  for (const s of spans) {
    const ref = s.refs.find((r) => r.refType === 'CHILD_OF' && byID.has(r.spanID)) || s.refs.find((r) => byID.has(r.spanID));
    if (ref && ref.spanID !== s.id) { s.parent = byID.get(ref.spanID); s.parent.children.push(s); } else roots.push(s);
  }
  const order = [];
  const byStart = (a, b) => a.start - b.start;
  roots.sort(byStart);
  const stack = roots.slice().reverse();
  for (const r of stack) r.depth = 0;
  while (stack.length) {
    const s = stack.pop();
    s.index = order.length;
    order.push(s);
    s.children.sort(byStart);
    for (let i = s.children.length - 1; i >= 0; i--) { s.children[i].depth = s.depth + 1; stack.push(s.children[i]); }
  }
  let start = Infinity, end = 0;
  for (const s of order) { if (s.start < start) start = s.start; if (s.end > end) end = s.end; }
  const trace = { id: t.traceID, spans: order, roots, start, end, duration: end - start, services: [...new Set(order.map((s) => s.service))].sort() };
  markCritical(trace);
  return trace;
}

// markCritical marks the spans on the critical path: from each root, the
// child that finished last before the cursor, then the one before it, ...
function markCritical(trace) {
  const stack = trace.roots.map((r) => [r, r.end]);
  while (stack.length) {
    const [s, until] = stack.pop();
    s.crit = true;
    let cursor = Math.min(s.end, until);
    const kids = s.children.slice().sort((a, b) => b.end - a.end);
    for (const c of kids) {
      if (c.start >= cursor) continue;
      stack.push([c, cursor]);
      cursor = c.start;
    }
  }
}

function matches(s, text) {
  if (!text) return false;
  const t = text.toLowerCase();
  if (s.op.toLowerCase().includes(t) || s.service.toLowerCase().includes(t) || s.id.includes(t)) return true;
  for (const k of s.tags) if (k.key.toLowerCase().includes(t) || String(k.value).toLowerCase().includes(t)) return true;
  return false;
}

const atlasSafe = (v) => v.replace(/[^-._A-Za-z0-9^~]/g, '_');

// Waterfall renders trace into container; opts: span, filter, find, crit
// (initial state) and onState(state) when it changes.
export class Waterfall {
  constructor(container, trace, opts = {}) {
    const t0 = performance.now();
    this.trace = trace;
    this.opts = opts;
    this.collapsed = new Set();
    this.state = { span: opts.span || '', filter: opts.filter || '', find: opts.find || '', crit: !!opts.crit };
    this.filterIn = h('input', { id: 'wf-filter', size: 22, placeholder: 'filter spans', 'aria-label': 'Show only spans matching', value: this.state.filter });
    this.findIn = h('input', { id: 'wf-find', size: 22, placeholder: 'find in trace (Enter: next)', 'aria-label': 'Find in trace', value: this.state.find });
    this.findCount = h('span', { class: 'muted', id: 'wf-find-count', role: 'status' });
    const crit = h('input', { type: 'checkbox', id: 'wf-crit', checked: this.state.crit });
    const collapseAll = h('button', { type: 'button', class: 'ghost', id: 'wf-collapse' }, 'Collapse all');
    const expandAll = h('button', { type: 'button', class: 'ghost', id: 'wf-expand' }, 'Expand all');
    const cmp = h('a', { href: '/ui/traces/compare?' + qs({ a: trace.id }) }, 'Compare with…');
    this.scroller = h('div', { class: 'wf', id: 'waterfall', tabindex: '0', role: 'tree', 'aria-label': 'Spans' });
    this.spacer = h('div', { class: 'wf-spacer' });
    this.scroller.append(this.spacer);
    this.details = h('aside', { class: 'details', id: 'details', hidden: true, 'aria-label': 'Span details' });
    const errs = trace.spans.filter((s) => s.error).length;
    container.append(
      h('div', { class: 'trace-head' }, h('span', null, `${trace.spans.length} spans`), h('span', null, `${trace.services.length} services: ${trace.services.join(', ')}`),
        h('span', null, 'duration ' + fmtDur(trace.duration)), h('span', null, 'started ' + fmtTime(trace.start / 1000)), errs ? h('span', { class: 'badge error' }, errs + ' errors') : null, cmp),
      h('div', { class: 'row' }, this.filterIn, this.findIn, this.findCount, h('label', null, crit, ' critical path'), collapseAll, expandAll),
      h('div', { class: 'wf-wrap' }, this.scroller, this.details));
    this.filterIn.addEventListener('input', () => { this.state.filter = this.filterIn.value; this.rebuild(); this.emit(); });
    this.findIn.addEventListener('input', () => { this.state.find = this.findIn.value; this.findAt = -1; this.refind(); this.paint(); this.emit(); });
    this.findIn.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); this.nextFound(e.shiftKey ? -1 : 1); } });
    crit.addEventListener('change', () => { this.state.crit = crit.checked; this.paint(); this.emit(); });
    collapseAll.addEventListener('click', () => { for (const s of trace.spans) if (s.children.length && s.depth > 0) this.collapsed.add(s.id); this.rebuild(); });
    expandAll.addEventListener('click', () => { this.collapsed.clear(); this.rebuild(); });
    this.scroller.addEventListener('scroll', () => this.schedule());
    this.scroller.addEventListener('keydown', (e) => this.key(e));
    this.spacer.addEventListener('click', (e) => this.click(e));
    this._ro = new ResizeObserver(() => this.schedule());
    this._ro.observe(this.scroller);
    this.refind();
    this.rebuild();
    if (this.state.span) { const s = trace.spans.find((x) => x.id === this.state.span); if (s) this.select(s, true); }
    this.readyMs = performance.now() - t0;
    container.dataset.readyAt = String(performance.now());
    this.scroller.sextantWaterfall = this;
  }

  destroy() { this._ro.disconnect(); }

  emit() { if (this.opts.onState) this.opts.onState(this.state); }

  // rebuild recomputes the visible rows after a collapse or filter change.
  rebuild() {
    const spans = this.trace.spans;
    const rows = [];
    if (this.state.filter) {
      for (const s of spans) if (matches(s, this.state.filter)) rows.push(s);
    } else {
      for (let i = 0; i < spans.length; i++) {
        const s = spans[i];
        rows.push(s);
        if (this.collapsed.has(s.id)) {
          // Skip the subtree: it is contiguous in depth-first order.
          let j = i + 1;
          while (j < spans.length && spans[j].depth > s.depth) j++;
          i = j - 1;
        }
      }
    }
    this.rows = rows;
    this.spacer.style.height = rows.length * ROW + 'px';
    this.paint();
  }

  refind() {
    this.found = new Set();
    if (this.state.find) for (const s of this.trace.spans) if (matches(s, this.state.find)) this.found.add(s.id);
    this.findCount.textContent = this.state.find ? `${this.found.size} found` : '';
  }

  nextFound(dir) {
    if (!this.found.size) return;
    const list = this.trace.spans.filter((s) => this.found.has(s.id));
    const cur = this.selected ? list.findIndex((s) => s.index > this.selected.index - (dir < 0 ? 1 : 0)) : -1;
    let i = dir > 0 ? (this.selected ? list.findIndex((s) => s.index > this.selected.index) : 0) : (cur <= 0 ? list.length - 1 : cur - 1);
    if (i < 0) i = 0;
    const s = list[i];
    this.findCount.textContent = `${i + 1} of ${list.length}`;
    this.reveal(s);
    this.select(s, true);
  }

  // reveal expands the span's ancestors so it has a row.
  reveal(s) {
    let changed = false;
    for (let p = s.parent; p; p = p.parent) if (this.collapsed.delete(p.id)) changed = true;
    if (changed) this.rebuild();
  }

  schedule() {
    if (this._raf) return;
    this._raf = requestAnimationFrame(() => { this._raf = 0; this.paint(); });
  }

  // paint renders the rows in view (and a few around them). Row elements
  // are recycled: scrolling updates text and positions, it creates nothing.
  paint() {
    const top = this.scroller.scrollTop, height = this.scroller.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW) - 8), last = Math.min(this.rows.length, Math.ceil((top + height) / ROW) + 8);
    const span = this.trace.duration || 1;
    const pool = this.pool || (this.pool = []);
    while (pool.length < last - first) {
      const r = { row: h('div', { class: 'wf-row', role: 'treeitem' }), name: h('div', { class: 'wf-name' }),
        tog: h('span', { class: 'wf-tog', role: 'button' }), svc: h('span', { class: 'wf-svc' }), op: h('span', { class: 'wf-op' }),
        area: h('div', { class: 'wf-bar-area' }), bar: h('div', { class: 'wf-bar' }), dur: h('span', { class: 'wf-dur' }) };
      r.name.append(r.tog, r.svc, r.op);
      r.area.append(r.bar, r.dur);
      r.row.append(r.name, r.area);
      this.spacer.append(r.row);
      pool.push(r);
    }
    for (let k = 0; k < pool.length; k++) {
      const r = pool[k], i = first + k;
      if (i >= last) { r.row.hidden = true; continue; }
      const s = this.rows[i];
      r.row.hidden = false;
      r.row.dataset.i = String(i);
      r.row.setAttribute('aria-level', String(s.depth + 1));
      r.row.style.top = i * ROW + 'px';
      r.row.classList.toggle('sel', this.selected === s);
      r.row.classList.toggle('found', this.found.has(s.id));
      r.name.style.paddingLeft = Math.min(s.depth, 40) * 12 + 'px';
      if (s.children.length && !this.state.filter) {
        const c = this.collapsed.has(s.id);
        r.tog.textContent = c ? '▸' : '▾';
        r.tog.dataset.tog = s.id;
        r.tog.setAttribute('aria-expanded', String(!c));
        r.tog.setAttribute('aria-label', c ? 'expand' : 'collapse');
      } else {
        r.tog.textContent = '';
        delete r.tog.dataset.tog;
        r.tog.removeAttribute('aria-expanded');
        r.tog.removeAttribute('aria-label');
      }
      r.svc.textContent = s.service;
      r.svc.style.color = serviceColor(s.service);
      r.op.textContent = s.op;
      r.name.title = s.service + ': ' + s.op;
      r.bar.className = 'wf-bar' + (s.error ? ' err' : '') + (this.state.crit && s.crit ? ' crit' : '');
      const l = (s.start - this.trace.start) / span * 100, w = s.duration / span * 100;
      r.bar.style.left = l + '%'; r.bar.style.width = w + '%'; r.bar.style.background = serviceColor(s.service);
      r.dur.textContent = fmtDur(s.duration);
      if (l + w > 80) { r.dur.style.left = ''; r.dur.style.right = (100 - l) + '%'; } else { r.dur.style.right = ''; r.dur.style.left = `calc(${l + w}% + 4px)`; }
    }
  }

  click(e) {
    const tog = e.target.closest('[data-tog]');
    const row = e.target.closest('.wf-row');
    if (!row) return;
    const s = this.rows[+row.dataset.i];
    if (tog) { this.toggle(s); return; }
    this.select(s);
  }

  toggle(s) { if (!s.children.length) return; if (this.collapsed.has(s.id)) this.collapsed.delete(s.id); else this.collapsed.add(s.id); this.rebuild(); }

  key(e) {
    const i = this.selected ? this.rows.indexOf(this.selected) : -1;
    if (e.key === 'ArrowDown' || e.key === 'j') { e.preventDefault(); const s = this.rows[Math.min(this.rows.length - 1, i + 1)]; if (s) this.select(s, true); }
    else if (e.key === 'ArrowUp' || e.key === 'k') { e.preventDefault(); const s = this.rows[Math.max(0, i - 1)]; if (s) this.select(s, true); }
    else if ((e.key === 'ArrowLeft' || e.key === 'ArrowRight') && this.selected) {
      e.preventDefault();
      const c = this.collapsed.has(this.selected.id);
      if ((e.key === 'ArrowLeft') !== c) this.toggle(this.selected);
    } else if (e.key === 'Escape') { this.details.hidden = true; this.selected = null; this.state.span = ''; this.emit(); this.paint(); }
  }

  select(s, scroll) {
    this.selected = s;
    this.state.span = s.id;
    this.emit();
    if (scroll) {
      const i = this.rows.indexOf(s);
      if (i >= 0) {
        const y = i * ROW;
        if (y < this.scroller.scrollTop || y > this.scroller.scrollTop + this.scroller.clientHeight - ROW) this.scroller.scrollTop = Math.max(0, y - this.scroller.clientHeight / 3);
      }
    }
    this.paint();
    this.showDetails(s);
  }

  showDetails(s) {
    const d = clear(this.details);
    d.hidden = false;
    const kv = (list) => h('table', { class: 'kv' }, h('tbody', null, list.map((k) => h('tr', null, h('td', null, k.key), h('td', { class: 'mono' }, String(k.value))))));
    const svc = atlasSafe(s.service);
    const dq = `name,span.duration,:eq,service.name,${svc},:eq,:and,(,99,),:percentiles`;
    const eq = `name,span.errors,:eq,service.name,${svc},:eq,:and,:sum,span.errors,:legend`;
    d.append(h('h2', null, s.service + ': ' + s.op),
      h('table', { class: 'kv' }, h('tbody', null,
        h('tr', null, h('td', null, 'duration'), h('td', null, fmtDur(s.duration))),
        h('tr', null, h('td', null, 'start'), h('td', null, '+' + fmtDur(s.start - this.trace.start))),
        h('tr', null, h('td', null, 'span id'), h('td', { class: 'mono' }, s.id)),
        s.parent ? h('tr', null, h('td', null, 'parent'), h('td', { class: 'mono' }, s.parent.id)) : null,
        h('tr', null, h('td', null, 'critical path'), h('td', null, s.crit ? 'yes' : 'no')))),
      h('div', { class: 'row' }, h('a', { href: '/ui/explore?' + qs({ q: dq, s: 'e-1h' }), id: 'link-duration' }, 'span.duration of ' + s.service),
        h('a', { href: '/ui/explore?' + qs({ q: eq, s: 'e-1h' }), id: 'link-errors' }, 'span.errors of ' + s.service)),
      h('h2', null, `Attributes (${s.tags.length})`), kv(s.tags),
      h('h2', null, `Process (${s.ptags.length})`), kv(s.ptags));
    if (s.logs.length) {
      d.append(h('h2', null, `Events (${s.logs.length})`));
      for (const l of s.logs) d.append(h('div', { class: 'muted' }, '+' + fmtDur(l.timestamp - this.trace.start)), kv(l.fields || []));
    }
    const links = s.refs.filter((r) => !(s.parent && r.spanID === s.parent.id && r.refType === 'CHILD_OF'));
    if (links.length) {
      d.append(h('h2', null, `Links (${links.length})`), h('ul', null, links.map((r) => h('li', null, r.refType + ' ',
        h('a', { href: '/ui/traces/' + r.traceID + '?' + qs({ span: r.spanID }) }, r.traceID.slice(0, 16) + '…/' + r.spanID)))));
    }
  }
}
