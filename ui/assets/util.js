// util.js: DOM building (text only, never HTML from data), the API client
// with the optional bearer token, URL state and formatting.

// h builds an element. attrs: class, text, on* (functions), and plain
// attributes; children are nodes or strings (always text nodes).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k === 'value') el.value = v;
      else if (k === 'checked') el.checked = !!v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return el;
}

// clear removes every child of el.
export function clear(el) { while (el.firstChild) el.firstChild.remove(); return el; }

const tokenKey = 'sextant.token';

// token is the bearer token kept for this tab, or ''.
export function token() { return sessionStorage.getItem(tokenKey) || ''; }

let asking = null;

// askToken shows the token dialog once and resolves with the entered token.
function askToken() {
  if (asking) return asking;
  asking = new Promise((resolve) => {
    const input = h('input', { type: 'password', id: 'token-input', autocomplete: 'off', 'aria-label': 'API token' });
    const dlg = h('dialog', { class: 'token', id: 'token-dialog' },
      h('form', { method: 'dialog' },
        h('h2', null, 'Sign in'),
        h('p', null, 'This server asks for a token. It is kept for this tab only.'),
        h('label', { for: 'token-input' }, 'Token'), input,
        h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Use token'))));
    dlg.addEventListener('close', () => {
      sessionStorage.setItem(tokenKey, input.value);
      dlg.remove();
      asking = null;
      resolve(input.value);
    });
    document.body.append(dlg);
    dlg.showModal();
    input.focus();
  });
  return asking;
}

// ApiError is a failed API call: status and the server's message and
// position fields when it sent a JSON error.
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || ('HTTP ' + status));
    this.status = status;
    this.body = body || {};
  }
}

// api fetches path with the token and returns the parsed JSON (or text
// when asText), throwing ApiError for non-2xx answers.
export async function api(path, opts = {}, asText = false) {
  for (let attempt = 0; attempt < 3; attempt++) {
    const headers = Object.assign({}, opts.headers || {});
    const t = token();
    if (t) headers.Authorization = 'Bearer ' + t;
    if (opts.body && typeof opts.body !== 'string') {
      opts = Object.assign({}, opts, { body: JSON.stringify(opts.body) });
      headers['Content-Type'] = 'application/json';
    }
    const resp = await fetch(path, Object.assign({}, opts, { headers }));
    if (resp.status === 401) { await askToken(); continue; }
    const text = await resp.text();
    if (!resp.ok) {
      let body = null;
      try { body = JSON.parse(text); } catch { body = { message: text.trim() || resp.statusText }; }
      throw new ApiError(resp.status, body);
    }
    if (asText) return text;
    return text ? JSON.parse(text) : null;
  }
  throw new ApiError(401, { message: 'the token was not accepted' });
}

// params reads the page's query parameters.
export function params() { return new URLSearchParams(location.search); }

// setParams writes the view's state into the URL (replacing the entry).
export function setParams(obj, push = false) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(obj)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  const s = p.toString();
  const url = location.pathname + (s ? '?' + s : '');
  if (url === location.pathname + location.search) return;
  if (push) history.pushState(null, '', url); else history.replaceState(null, '', url);
}

// go navigates inside the app.
export function go(url) {
  history.pushState(null, '', url);
  window.dispatchEvent(new Event('sextant:route'));
}

// qs builds a query string from an object, skipping empty values.
export function qs(obj) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(obj)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  return p.toString();
}

// fmtNum formats a value for legends and read-outs.
export function fmtNum(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '∞' : '-∞';
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1e9) return (v / 1e9).toFixed(2) + 'G';
  if (a >= 1e6) return (v / 1e6).toFixed(2) + 'M';
  if (a >= 1e4) return (v / 1e3).toFixed(1) + 'k';
  if (a >= 100) return v.toFixed(0);
  if (a >= 1) return String(parseFloat(v.toFixed(2)));
  if (a >= 1e-3) return String(parseFloat(v.toFixed(4)));
  return v.toExponential(2);
}

// fmtDur formats microseconds.
export function fmtDur(us) {
  if (us >= 60e6) return (us / 60e6).toFixed(1) + 'min';
  if (us >= 1e6) return (us / 1e6).toFixed(2) + 's';
  if (us >= 1e3) return (us / 1e3).toFixed(2) + 'ms';
  return Math.round(us) + 'µs';
}

const zoned = new Map();

// zonedParts returns the calendar fields of ms in time zone tz (the
// browser's own when tz is empty or unknown).
export function zonedParts(ms, tz) {
  if (tz) {
    let f = zoned.get(tz);
    if (f === undefined) {
      try {
        f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
      } catch { f = null; }
      zoned.set(tz, f);
    }
    if (f) {
      const o = {};
      for (const p of f.formatToParts(ms)) o[p.type] = +p.value;
      return { y: o.year, mo: o.month, d: o.day, h: o.hour, mi: o.minute, s: o.second };
    }
  }
  const d = new Date(ms);
  return { y: d.getFullYear(), mo: d.getMonth() + 1, d: d.getDate(), h: d.getHours(), mi: d.getMinutes(), s: d.getSeconds() };
}

// fmtTime formats Unix milliseconds as date and time in tz (default local).
export function fmtTime(ms, tz) {
  const z = zonedParts(ms, tz);
  const p = (n) => String(n).padStart(2, '0');
  return `${z.y}-${p(z.mo)}-${p(z.d)} ${p(z.h)}:${p(z.mi)}:${p(z.s)}`;
}

// parseDuration reads 15m, 1h, 2d, 1w, 30s, 100ms into milliseconds.
export function parseDuration(s) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|min|h|d|w)$/.exec(String(s).trim());
  if (!m) return NaN;
  const mult = { ms: 1, s: 1e3, m: 60e3, min: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 }[m[2]];
  return parseFloat(m[1]) * mult;
}

// palette is the UI's line colors (light and dark friendly).
export const palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2',
  '#7f7f7f', '#bcbd22', '#17becf', '#393b79', '#637939', '#8c6d31', '#843c39', '#7b4173'];

// serviceColor picks a stable color for a name.
export function serviceColor(name) {
  let x = 0;
  for (let i = 0; i < name.length; i++) x = (x * 31 + name.charCodeAt(i)) | 0;
  return palette[Math.abs(x) % palette.length];
}

// errorBox renders an error as text.
export function errorBox(err) {
  return h('div', { class: 'error', role: 'alert' }, err && err.message ? err.message : String(err));
}

// debounce delays fn until calls stop for ms.
export function debounce(fn, ms) {
  let t = 0;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}

// cssVar reads a theme color.
export function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
