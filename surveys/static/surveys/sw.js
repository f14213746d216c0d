/* The service worker of the respondent form (scope /s/): a reload with no connection still
   shows the form, with the draft the page keeps in localStorage and the interviews waiting
   in the outbox (outbox.js). Served at /s/sw.js by surveys.webform.service_worker, which
   puts VERSION first: a change to any of the form's files makes a new cache.

   Form pages (/s/<token>/): network first, the last good copy when offline. Static files
   of the form: cache first. The thank-you page and every POST go to the network only: a
   respondent is thanked only when the server said so. */
/* global VERSION, STATIC_URL */
'use strict';
const CACHE = 'tanys-form-' + VERSION;
const FORM_PAGE = /^\/s\/[^/]+\/$/;

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith('tanys-form-') && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

// The page asks for itself and its files to be kept (it was loaded before the worker ran).
self.addEventListener('message', (event) => {
  const data = event.data || {};
  if (data.type !== 'cache' || !Array.isArray(data.urls)) return;
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    for (const url of data.urls) {
      if (!keepable(new URL(url, self.location.href))) continue;
      try {
        const response = await fetch(url, { credentials: 'same-origin' });
        if (response.ok) await cache.put(url, response);
      } catch (e) { /* offline already: the next visit keeps it */ }
    }
    if (event.source) event.source.postMessage({ type: 'cached' });
  })());
});

function keepable(url) {
  return url.origin === self.location.origin &&
    (FORM_PAGE.test(url.pathname) || url.pathname.startsWith(STATIC_URL) || url.pathname === '/favicon.ico');
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (!keepable(url)) return;
  if (FORM_PAGE.test(url.pathname)) event.respondWith(networkFirst(request));
  else event.respondWith(cacheFirst(request));
});

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  } catch (e) {
    // The page in this language, else the page in another (form.js switches it back).
    const kept = await cache.match(request, { ignoreVary: true }) ||
      await cache.match(request, { ignoreVary: true, ignoreSearch: true });
    return kept || Response.error();
  }
}

async function cacheFirst(request) {
  const cache = await caches.open(CACHE);
  const kept = await cache.match(request, { ignoreVary: true });
  if (kept) return kept;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}
