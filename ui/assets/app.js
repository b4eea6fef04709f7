// app.js: the router. Every view keeps its state in its URL; a route is a
// path under /ui/ and a view module that renders into <main>.
import { clear, h, go } from './util.js';

const routes = [
  [/^\/ui\/?$/, 'explore'],
  [/^\/ui\/explore$/, 'explore'],
  [/^\/ui\/dashboards$/, 'dashboards'],
  [/^\/ui\/dashboards\/([^/]+)$/, 'dashboards'],
  [/^\/ui\/traces\/compare$/, 'traces'],
  [/^\/ui\/traces$/, 'traces'],
  [/^\/ui\/traces\/([0-9a-fA-F]+)$/, 'traces'],
  [/^\/ui\/alerts$/, 'alerts'],
  [/^\/ui\/alerts\/([^/]+)$/, 'alerts'],
  [/^\/ui\/cardinality$/, 'cardinality'],
  [/^\/ui\/status$/, 'status'],
];

let cleanup = null;
let seq = 0;

async function route() {
  const my = ++seq;
  if (cleanup) { try { cleanup(); } catch { /* a view's cleanup must not stop routing */ } cleanup = null; }
  const main = document.getElementById('main');
  let view = null, arg = null;
  for (const [re, v] of routes) {
    const m = re.exec(location.pathname);
    if (m) { view = v; arg = m[1] ? decodeURIComponent(m[1]) : null; break; }
  }
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.view === view) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  clear(main);
  if (!view) {
    main.append(h('h1', null, 'Not found'), h('p', null, 'No page at ' + location.pathname + '. ', h('a', { href: '/ui/explore' }, 'Explore')));
    document.title = 'Not found · Sextant';
    return;
  }
  const mod = await import('./' + view + '.js');
  if (my !== seq) return;
  document.title = view[0].toUpperCase() + view.slice(1) + ' · Sextant';
  main.dataset.view = view;
  cleanup = mod.render(main, arg) || null;
}

function applyTheme(t) {
  document.documentElement.dataset.theme = t;
  localStorage.setItem('sextant.theme', t);
  window.dispatchEvent(new Event('sextant:theme'));
}

function init() {
  const saved = localStorage.getItem('sextant.theme');
  const t = saved || (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light');
  document.documentElement.dataset.theme = t;
  document.getElementById('theme').addEventListener('click', () => {
    applyTheme(document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark');
  });
  // Links inside the app navigate without reloading.
  document.addEventListener('click', (e) => {
    const a = e.target.closest && e.target.closest('a');
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || a.target) return;
    const href = a.getAttribute('href');
    if (!href || !href.startsWith('/ui/') || href.startsWith('/ui/assets/')) return;
    e.preventDefault();
    go(href);
  });
  document.addEventListener('keydown', (e) => {
    const tag = (e.target.tagName || '').toLowerCase();
    if (tag === 'input' || tag === 'textarea' || tag === 'select' || e.metaKey || e.ctrlKey || e.altKey) return;
    if (e.key === 't') applyTheme(document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark');
  });
  window.addEventListener('popstate', route);
  window.addEventListener('sextant:route', route);
  route();
}

init();
