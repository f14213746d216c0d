/* The enumerators' app: its local store in IndexedDB (window.TanysStore).
   One database, four object stores: meta (the device's token and enumerator), assignments,
   forms (questionnaire versions as the API gives them) and interviews (drafts, waiting,
   sent, returned), keyed by the interview's instance id. Plain ES2017, no dependencies. */
(function () {
  'use strict';
  const NAME = 'tanys-collect', VERSION = 1;
  const STORES = { meta: 'key', assignments: 'id', forms: 'id', interviews: 'id' };
  let opening = null;

  function open() {
    if (opening) return opening;
    opening = new Promise((resolve, reject) => {
      const request = indexedDB.open(NAME, VERSION);
      request.onupgradeneeded = () => {
        const db = request.result;
        Object.keys(STORES).forEach((name) => {
          if (!db.objectStoreNames.contains(name)) db.createObjectStore(name, { keyPath: STORES[name] });
        });
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => { opening = null; reject(request.error); };
    });
    return opening;
  }

  function run(store, mode, work) {
    return open().then((db) => new Promise((resolve, reject) => {
      const tx = db.transaction(store, mode), os = tx.objectStore(store);
      let result;
      const request = work(os);
      if (request) request.onsuccess = () => { result = request.result; };
      tx.oncomplete = () => resolve(result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    }));
  }

  function uuid4() {
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20), h.slice(20)].join('-');
  }

  window.TanysStore = {
    get: (store, key) => run(store, 'readonly', (os) => os.get(key)),
    all: (store) => run(store, 'readonly', (os) => os.getAll()),
    put: (store, value) => run(store, 'readwrite', (os) => os.put(value)),
    del: (store, key) => run(store, 'readwrite', (os) => os.delete(key)),
    replaceAll: (store, values) => run(store, 'readwrite', (os) => { os.clear(); values.forEach((v) => os.put(v)); }),
    meta: (key) => run('meta', 'readonly', (os) => os.get(key)).then((row) => (row ? row.value : undefined)),
    setMeta: (key, value) => run('meta', 'readwrite', (os) => os.put({ key: key, value: value })),
    uuid4: uuid4,
    // The interview the form page works on (set by the list before it opens the form).
    CURRENT: 'tanys:collect:current',
  };
})();
