/* The enumerators' app: service worker, scoped to /collect/.
   Two kinds of cache. The shell (the app page, its scripts and the form's scripts) is
   versioned: an update installs a new shell cache and drops the old ones. Questionnaire
   pages live in one cache that updates never clear; the app removes a version only when
   no assignment and no unsent interview needs it, so an update never strands a draft.
   The API is never intercepted: it is the network or nothing. */
'use strict';
const VERSION = '__APP_VERSION__';
const STATIC = '__STATIC__';
const SHELL = 'tanys-shell-' + VERSION;
const FORMS = 'tanys-forms';
const SHELL_FILES = [
  '/collect/', '/collect/manifest.webmanifest',
  STATIC + '/collect/app.js', STATIC + '/collect/store.js', STATIC + '/collect/outbox.js',
  STATIC + '/collect/interview.js', STATIC + '/collect/app.css', STATIC + '/collect/icon.svg',
  STATIC + '/surveys/expressions.js', STATIC + '/surveys/form.js', STATIC + '/surveys/form.css',
];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(SHELL).then((cache) => cache.addAll(SHELL_FILES)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('tanys-shell-') && k !== SHELL).map((k) => caches.delete(k))))
      .then(() => self.clients.claim())
  );
});

async function shell(request) {
  const cache = await caches.open(SHELL);
  const hit = await cache.match(request, { ignoreSearch: true });
  if (hit) {
    // Refresh in the background for the next start; the cached copy answers now.
    fetch(request).then((r) => { if (r.ok) cache.put(request, r); }).catch(() => {});
    return hit;
  }
  const response = await fetch(request);
  if (response.ok) cache.put(request, response.clone());
  return response;
}

async function formPage(request) {
  const hit = await caches.match(request, { cacheName: FORMS });
  if (hit) return hit;
  return fetch(request);
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith('/collect/form/') && request.mode === 'navigate') {
    event.respondWith(formPage(request));
  } else if (url.pathname === '/collect/' || url.pathname === '/collect/manifest.webmanifest' ||
             (url.pathname.startsWith(STATIC + '/') && SHELL_FILES.indexOf(url.pathname) >= 0)) {
    event.respondWith(shell(request));
  }
});
