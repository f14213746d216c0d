/* TanysOutbox: finished interviews kept in IndexedDB until a server confirms it stored them.

   Nothing is lost to a dropped connection, a reload, a closed tab or a server that is
   briefly down: an item is written to IndexedDB BEFORE any network attempt, sent when
   the device is online (exponential backoff with jitter, honouring Retry-After on 503
   and 429), and deleted only once the server confirmed it was stored (a 2xx: a resend
   of the same instance id is a success, the server deduplicates). Any other outcome
   keeps the copy. Plain ES2017, no dependencies; works in a page or a worker.

   API
     const box = TanysOutbox.open({
       db: 'tanys-web',          // IndexedDB database name (each app its own)
       store: 'outbox',          // object store, keyed by item id
       transport: fn,            // optional: async (item) => outcome; default TanysOutbox.postJSON
       onEvent: fn,              // optional: (event) => void, see Events
       first: 2000, max: 300000, // optional: backoff in ms, first delay and ceiling
     });
     await box.put({ id, url, body, meta })  // store (replacing an item of that id) -> item
     await box.get(id)                       // -> item or undefined
     await box.list(filter)                  // -> items, filter optional: (item) => bool
     await box.remove(id)
     await box.send(id)                      // try one item now (or every due item without id)
     box.start(); box.stop()                 // send in the background: timers, `online` event

   Item: { id, url, body, meta, createdAt, attempts, nextAt, state: 'queued' | 'rejected',
           last: { status, code, message } }.  `body` is sent as is; `meta` is the app's own.

   Outcome (what a transport resolves to; a transport that throws counts as 'retry'):
     { kind: 'stored', status, body }                  -> deleted
     { kind: 'retry', status, retryAfter, body }        -> kept, tried again later
         (retryAfter in ms, from the server, or absent)
     { kind: 'rejected', status, body }                 -> kept as 'rejected', not retried
         until put again (the answers were refused: the app shows why)
   A batch transport (a tablet syncing many items per request) can wrap its own call and
   resolve each item's outcome from the per-item results.

   Events (onEvent): { type, item, outcome?, delay? } with type one of
     'queued' (put), 'sending', 'stored', 'retry' (delay: ms until the next attempt, or
     null while the device is offline), 'rejected', 'storage' (IndexedDB unusable: items
     are kept in memory only, the app should keep its own copy).
*/
(function (root) {
  'use strict';

  function request(req) {
    return new Promise((resolve, reject) => {
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }

  // IndexedDB with a fallback to memory (private windows of some browsers refuse it).
  function openStore(dbName, storeName) {
    let dbPromise = null;
    const memory = new Map();
    function db() {
      if (!dbPromise) {
        dbPromise = new Promise((resolve, reject) => {
          if (!root.indexedDB) { reject(new Error('no IndexedDB')); return; }
          const req = root.indexedDB.open(dbName, 1);
          req.onupgradeneeded = () => {
            if (!req.result.objectStoreNames.contains(storeName)) req.result.createObjectStore(storeName, { keyPath: 'id' });
          };
          req.onsuccess = () => resolve(req.result);
          req.onerror = () => reject(req.error);
          req.onblocked = () => reject(new Error('IndexedDB blocked'));
        });
      }
      return dbPromise;
    }
    // A failure (no IndexedDB, a full disk, a closed database) keeps the item in memory,
    // so that sending goes on; the 'storage' event tells the app its copy is not durable.
    // Memory holds only what could not be written, and wins over the disk for its ids.
    async function run(mode, fn) {
      const handle = await db();
      const tx = handle.transaction(storeName, mode);
      const done = new Promise((resolve, reject) => {
        tx.oncomplete = resolve;
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error);
      });
      const value = await request(fn(tx.objectStore(storeName)));
      await done;
      return value;
    }
    return {
      async put(item) {
        try { await run('readwrite', (s) => s.put(item)); memory.delete(item.id); return { memory: false }; }
        catch (e) { memory.set(item.id, item); return { memory: true }; }
      },
      async remove(id) {
        memory.delete(id);
        try { await run('readwrite', (s) => s.delete(id)); return { memory: false }; }
        catch (e) { return { memory: true }; }
      },
      async get(id) {
        if (memory.has(id)) return { memory: true, value: memory.get(id) };
        try { return { memory: false, value: await run('readonly', (s) => s.get(id)) }; }
        catch (e) { return { memory: true, value: undefined }; }
      },
      async all() {
        let stored = [], failed = false;
        try { stored = await run('readonly', (s) => s.getAll()); } catch (e) { failed = true; }
        const value = stored.filter((i) => !memory.has(i.id)).concat(Array.from(memory.values()));
        return { memory: failed || memory.size > 0, value };
      },
    };
  }

  // Retry-After: seconds or an HTTP date -> ms (or undefined).
  function retryAfter(header) {
    if (!header) return undefined;
    const seconds = Number(header);
    if (isFinite(seconds)) return Math.max(0, seconds * 1000);
    const at = Date.parse(header);
    return isNaN(at) ? undefined : Math.max(0, at - Date.now());
  }

  // The default transport: POST the body as JSON; classify the answer.
  async function postJSON(item) {
    let response;
    try {
      response = await fetch(item.url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify(item.body),
        credentials: 'same-origin',
      });
    } catch (e) {
      return { kind: 'retry', status: 0 };  // no connection, DNS, TLS, an aborted request
    }
    let body = {};
    try { body = await response.json(); } catch (e) { /* not JSON: a proxy's error page */ }
    const status = response.status;
    if (response.ok) return { kind: 'stored', status, body };
    if (status === 408 || status === 429 || status >= 500) {
      return { kind: 'retry', status, body, retryAfter: retryAfter(response.headers.get('Retry-After')) };
    }
    return { kind: 'rejected', status, body };
  }

  function open(options) {
    const opts = Object.assign({ db: 'tanys-outbox', store: 'outbox', first: 2000, max: 300000 }, options || {});
    const store = openStore(opts.db, opts.store);
    const transport = opts.transport || postJSON;
    const busy = new Set();
    let timer = null, running = false, warned = false;

    function emit(event) {
      try { if (opts.onEvent) opts.onEvent(event); } catch (e) { /* an app's handler must not stop sending */ }
    }
    async function use(op) {
      const result = await op;
      if (result.memory && !warned) { warned = true; emit({ type: 'storage' }); }
      return result.value;
    }
    const online = () => !root.navigator || root.navigator.onLine !== false;

    // Exponential backoff with jitter (between half and all of the step); a server's
    // Retry-After is a floor, with a little jitter so that clients do not return at once.
    function delayFor(item, outcome) {
      const step = Math.min(opts.max, opts.first * Math.pow(2, Math.max(0, item.attempts - 1)));
      const backoff = step * (0.5 + Math.random() * 0.5);
      if (outcome && outcome.retryAfter !== undefined) return outcome.retryAfter + Math.random() * Math.min(1000, step / 2);
      return backoff;
    }

    async function put(fields) {
      const item = Object.assign({ meta: {} }, fields, {
        createdAt: new Date().toISOString(), attempts: 0, nextAt: 0, state: 'queued', last: null,
      });
      await use(store.put(item));
      emit({ type: 'queued', item });
      return item;
    }

    async function attempt(item) {
      busy.add(item.id);
      try {
        emit({ type: 'sending', item });
        let outcome;
        try { outcome = await transport(item); } catch (e) { outcome = { kind: 'retry', status: 0 }; }
        // The item may have been replaced meanwhile (the answers corrected and put again).
        const current = await use(store.get(item.id));
        const same = current && JSON.stringify(current.body) === JSON.stringify(item.body);
        if (outcome.kind === 'stored') {
          if (same) await use(store.remove(item.id));
          emit({ type: 'stored', item, outcome });
          return outcome;
        }
        if (!same) return outcome;
        current.attempts += 1;
        current.last = { status: outcome.status, code: (outcome.body || {}).code, message: (outcome.body || {}).message };
        if (outcome.kind === 'rejected') {
          current.state = 'rejected';
          await use(store.put(current));
          emit({ type: 'rejected', item: current, outcome });
        } else {
          const delay = delayFor(current, outcome);
          current.nextAt = Date.now() + delay;
          await use(store.put(current));
          emit({ type: 'retry', item: current, outcome, delay: online() ? delay : null });
        }
        return outcome;
      } finally {
        busy.delete(item.id);
        if (running) schedule();
      }
    }

    // One item now, or every queued item that is due; never two sends of one item at once
    // (in this page, and across tabs where the browser has Web Locks).
    async function send(id) {
      const items = id === undefined
        ? (await use(store.all())).filter((i) => i.state === 'queued' && i.nextAt <= Date.now())
        : [await use(store.get(id))].filter(Boolean);
      const outcomes = [];
      for (const item of items) {
        if (busy.has(item.id)) continue;
        if (!online()) { emit({ type: 'retry', item, delay: null }); continue; }
        const locks = root.navigator && root.navigator.locks;
        if (locks) {
          outcomes.push(await locks.request(opts.db + ':' + item.id, { ifAvailable: true },
            (lock) => (lock ? attempt(item) : null)));
        } else {
          outcomes.push(await attempt(item));
        }
      }
      return outcomes;
    }

    async function schedule() {
      if (timer) { clearTimeout(timer); timer = null; }
      if (!running) return;
      const queued = (await use(store.all())).filter((i) => i.state === 'queued');
      if (!queued.length) return;
      if (!online()) {
        // The `online` event wakes the outbox; a slow look now and then in case it never comes.
        timer = setTimeout(() => { timer = null; schedule(); }, 30000);
        return;
      }
      const next = Math.min.apply(null, queued.map((i) => i.nextAt));
      timer = setTimeout(() => { timer = null; send().then(schedule, schedule); }, Math.max(0, next - Date.now()));
    }

    async function wake() {
      // Back online, or the page shown again: whatever waits is due now.
      const queued = (await use(store.all())).filter((i) => i.state === 'queued');
      for (const item of queued) { item.nextAt = 0; await use(store.put(item)); }
      await send();
      schedule();
    }
    const onVisible = () => { if (!root.document || root.document.visibilityState === 'visible') wake(); };

    function start() {
      if (running) return;
      running = true;
      if (root.addEventListener) root.addEventListener('online', wake);
      if (root.document) root.document.addEventListener('visibilitychange', onVisible);
      send().then(schedule, schedule);
    }
    function stop() {
      running = false;
      if (timer) clearTimeout(timer);
      timer = null;
      if (root.removeEventListener) root.removeEventListener('online', wake);
      if (root.document) root.document.removeEventListener('visibilitychange', onVisible);
    }

    return {
      put,
      get: (id) => use(store.get(id)),
      list: async (filter) => (await use(store.all())).filter(filter || (() => true)),
      remove: (id) => use(store.remove(id)),
      send,
      start,
      stop,
    };
  }

  root.TanysOutbox = { open, postJSON, retryAfter };
})(typeof self !== 'undefined' ? self : this);
