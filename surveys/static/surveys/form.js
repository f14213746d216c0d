/* The respondent web form: pages, live skip logic and checks, save and resume, submit.
   Walks the compiled form exactly as surveys/validation.py does (see its docstring), using
   window.TanysExpr from expressions.js, so the browser and the server agree; the server
   has the last word. Finished interviews are sent through window.TanysOutbox (outbox.js),
   which keeps them in IndexedDB until the server stored them. Plain ES2017, no dependencies.

   Answers are kept as the server takes them: a repeat is a list of per-entry objects,
   answers.household = [{age: '34'}, ...]. On the page a question in a repeat is keyed by
   its path, 'household[2].age' (entries from 1), as the server names its errors. The
   entries of a repeat are copied from the blank entry in its <template>, numbered 0. */
(function () {
  'use strict';
  const X = window.TanysExpr;
  const cfg = JSON.parse(document.getElementById('tanys-config').textContent);
  const M = cfg.messages;
  const KEY = 'tanys:' + cfg.token, DONE = 'tanys:done:' + cfg.token;
  const form = document.getElementById('tanys-form');
  const summary = document.getElementById('summary');
  // Errors go to the summary (an alert); what is happening goes to the status (polite).
  const status = document.getElementById('status');
  const pages = Array.from(form.querySelectorAll('section.page'));
  // Question boxes and repeat sections by key; rebuilt when entries come and go.
  let boxes = {};
  function indexBoxes() {
    boxes = {};
    form.querySelectorAll('[data-q], [data-repeat]').forEach((el) => { boxes[el.dataset.q || el.dataset.repeat] = el; });
    form.querySelectorAll('[data-add]').forEach((b) => { b.type = 'button'; });
  }
  indexBoxes();
  const $ = (id) => document.getElementById(id);
  const INT_RE = /^[+-]?[0-9]+$/, DEC_RE = /^[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)$/;
  const DATE_RE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/, CODE_RE = /^[+-]?[0-9]+$/;
  const INPUT_TYPES = ['integer', 'decimal', 'text', 'select_one', 'select_multiple', 'date'];

  // The questions of one level: its own and those of its groups, not those of its repeats.
  function levelQuestions(nodes, found) {
    nodes.forEach((n) => { if (n.k === 'q') found.push(n); else if (n.k === 'g') levelQuestions(n.ch || [], found); });
    return found;
  }
  function levelNames(nodes, found) {
    nodes.forEach((n) => { if (n.k === 'g') levelNames(n.ch || [], found); else found.add(n.n); });
    return found;
  }
  const topQuestions = levelQuestions(cfg.logic.nodes, []);

  // ---------------------------------------------------------------- state
  function uuid4() {
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20), h.slice(20)].join('-');
  }
  const fresh = () => ({ id: uuid4(), answers: {}, page: 0, started: null, lang: cfg.lang });
  function load() {
    try { const s = JSON.parse(localStorage.getItem(KEY)); return s && s.id && s.answers ? s : null; } catch (e) { return null; }
  }
  // A host page (the enumerators' app, collect/static/collect/interview.js) keeps the
  // interview in its own store and takes the finished one instead of posting it.
  const host = window.TanysFormHost || null;
  function save() {
    try { localStorage.setItem(KEY, JSON.stringify(state)); } catch (e) { /* private mode: keep going */ }
    if (host) host.save(state);
  }
  let state = load() || fresh();
  const explicitLang = cfg.explicitLang || new URLSearchParams(location.search).has('lang');
  if (!explicitLang && state.lang && state.lang !== cfg.lang && document.querySelector('[data-lang="' + state.lang + '"]')) {
    location.replace('?lang=' + state.lang);
    return;
  }
  state.lang = cfg.lang;

  // ---------------------------------------------------------------- the walk
  const blank = (v) => v === undefined || v === null || (Array.isArray(v) ? v.length === 0 : String(v).trim() === '');
  function fail(message) { const e = new Error(message); e.answer = true; return e; }

  function convert(n, raw) {
    const s = Array.isArray(raw) ? '' : String(raw).trim();
    switch (n.t) {
      case 'integer': {
        if (!INT_RE.test(s) || Math.abs(parseInt(s, 10)) >= 1e15) throw fail(M.integer);
        return parseInt(s, 10);
      }
      case 'decimal': {
        const x = parseFloat(s.replace(',', '.'));
        if (!DEC_RE.test(s) || !isFinite(x)) throw fail(M.decimal);
        return x;
      }
      case 'date': {
        const m = DATE_RE.exec(s), d = m && new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
        if (!m || d.getUTCMonth() !== +m[2] - 1 || d.getUTCDate() !== +m[3]) throw fail(M.date);
        return s;
      }
      case 'select_one': return CODE_RE.test(s) ? parseInt(s, 10) : s;
      case 'select_multiple': return Array.isArray(raw) ? raw.slice() : s.split(/\s+/);
      default:
        if (Array.from(s).length > cfg.textMax) throw fail(M.tooLong);
        return s;
    }
  }

  function calcValue(v) {
    if (typeof v === 'number') return isFinite(v) ? v : undefined;
    if (typeof v === 'boolean') return v ? 'true' : 'false';
    const s = X.toString(v);
    return s === '' ? undefined : s;
  }

  function allowed(n, working) {
    if (!n.f) return null;
    const set = new Set();
    (cfg.logic.lists[n.l] || []).forEach((row) => {
      if (X.toBoolean(X.evaluate(n.f, working, { choice: row }))) set.add(row.name);
    });
    return set;
  }

  const filled = (v) => (Array.isArray(v) ? v.some(filled) : v && typeof v === 'object' ? Object.keys(v).some((k) => filled(v[k])) : !blank(v));

  // A balanced draw where the server made none (the tablet app): on this device, random()
  // for a balanced assignment takes one value in [0, 0.5) and one in [0.5, 1) per block of
  // two interviews, in random order, so a rule that splits at 0.5 gives the two arms equally
  // often. The block's remainder is kept per form. The web form takes the server's draw
  // instead (cfg.draws: its slot in the wave's permuted blocks) and never touches a block.
  function balancedDraw(name) {
    return () => {
      const key = 'tanys:block:' + cfg.token + ':' + name;
      let block = null;
      try { block = JSON.parse(localStorage.getItem(key)); } catch (e) { block = null; }
      if (!Array.isArray(block) || !block.length) block = Math.random() < 0.5 ? [0, 1] : [1, 0];
      const half = block.shift();
      try { localStorage.setItem(key, JSON.stringify(block)); } catch (e) { /* private mode */ }
      return (half + Math.random()) / 2;
    };
  }

  // One pass in form order, as the server does: returns relevance, filters, errors, the
  // number of entries each repeat has and the answers to send. A repeat_count that gives a
  // number sets the number of entries of its repeat in the answers kept.
  function walk() {
    const relevant = new Set(), errors = {}, filters = {}, sizes = {}, notices = {};
    const working = {};
    topQuestions.forEach((n) => {
      const raw = state.answers[n.n];
      if (INPUT_TYPES.indexOf(n.t) >= 0 && !blank(raw)) {
        try { working[n.n] = convert(n, raw); } catch (e) { /* checked in order below */ }
      }
    });
    const truth = (ast, w, opts) => X.toBoolean(X.evaluate(ast, w, opts));
    function question(n, raw, w, send, here, key) {
      const name = n.n;
      if (n.t === 'note') { delete w[name]; if (here) relevant.add(key); return; }
      if (!here) { delete w[name]; return; }
      relevant.add(key);
      if (n.t === 'calculate') {
        // A once() calculation (a random assignment) sees the value recorded in the draft and
        // keeps it; the first draw is written into the draft and sent with the answers.
        // A top-level one starts from the server's draw for this page's interview (cfg.draws),
        // the arm the page was rendered with, so the page and the stored answers agree.
        const drawn = key === name && cfg.draws ? cfg.draws[name] : undefined;
        const recorded = raw[name] !== undefined && raw[name] !== '' ? raw[name] : drawn;
        const random = n.b && drawn === undefined ? balancedDraw(name) : undefined;
        const v = calcValue(n.o ? X.evaluate(n.x, w, { current: recorded, random: random }) : X.evaluate(n.x, w));
        if (v === undefined) delete w[name]; else w[name] = v;
        if (n.o && v !== undefined) { raw[name] = v; send[name] = v; }
        return;
      }
      if (n.f) filters[key] = allowed(n, w);
      const value = raw[name];
      if (blank(value)) {
        delete w[name];
        const required = Array.isArray(n.q) ? truth(n.q, w, { current: '' }) : n.q === true;
        if (required) errors[key] = n.rm || M.required;
        return;
      }
      send[name] = value;
      let v;
      try { v = convert(n, value); } catch (e) { delete w[name]; errors[key] = e.message; return; }
      if (filters[key] && !(Array.isArray(v) ? v : [String(v)]).every((c) => filters[key].has(c))) {
        delete w[name]; errors[key] = M.choice; return;
      }
      w[name] = v;
      if (n.c && !truth(n.c, w, { current: v })) errors[key] = n.cm || M.constraint;
    }
    function repeat(n, raw, w, send, here, key) {
      delete w[n.n];
      sizes[key] = 0;
      if (!here) return;
      relevant.add(key);
      if (!Array.isArray(raw[n.n])) raw[n.n] = [];
      const list = raw[n.n];
      let size = list.length;
      if (n.rc) {
        const wanted = X.toNumber(X.evaluate(n.rc, w));
        // No number yet (a count being retyped): no entries, but keep what was answered.
        size = isFinite(wanted) ? Math.min(200, wanted > 0 ? Math.floor(wanted) : 0) : 0;
        if (isFinite(wanted)) {
          while (list.length < size) list.push({});
          if (list.splice(size).some(filled)) notices[key] = M.removed;
        }
      }
      sizes[key] = size;
      const names = levelNames(n.ch || [], new Set()), rows = [];
      for (let i = 0; i < size; i++) {
        const entry = list[i] && typeof list[i] === 'object' ? list[i] : (list[i] = {});
        const inner = Object.assign({}, w), row = {};
        Object.keys(entry).forEach((k) => { if (names.has(k)) inner[k] = entry[k]; });
        visit(n.ch || [], entry, inner, row, true, key + '[' + (i + 1) + '].');
        rows.push(row);
      }
      send[n.n] = rows;
    }
    function visit(nodes, raw, w, send, rel, prefix) {
      nodes.forEach((n) => {
        const here = rel && (n.r === undefined || truth(n.r, w));
        if (n.k === 'g') visit(n.ch || [], raw, w, send, here, prefix);
        else if (n.k === 'r') repeat(n, raw, w, send, here, prefix + n.n);
        else question(n, raw, w, send, here, prefix + n.n);
      });
    }
    const send = {};
    visit(cfg.logic.nodes, state.answers, working, send, true, '');
    return { relevant, errors, filters, sizes, notices, send };
  }

  // Where the answer under a key lives: the object holding it and the name within it.
  function locate(key) {
    let obj = state.answers, rest = key, m;
    while ((m = /^([^[]+)\[([0-9]+)\]\.(.*)$/.exec(rest))) {
      if (!Array.isArray(obj[m[1]])) obj[m[1]] = [];
      const list = obj[m[1]], i = +m[2] - 1;
      if (!list[i] || typeof list[i] !== 'object') list[i] = {};
      obj = list[i];
      rest = m[3];
    }
    return { obj, name: rest };
  }
  function valueAt(key) {
    let obj = state.answers, rest = key, m;
    while ((m = /^([^[]+)\[([0-9]+)\]\.(.*)$/.exec(rest))) {
      obj = Array.isArray(obj[m[1]]) ? obj[m[1]][+m[2] - 1] : undefined;
      if (!obj || typeof obj !== 'object') return undefined;
      rest = m[3];
    }
    return obj[rest];
  }
  function listAt(key) {
    const at = locate(key);
    if (!Array.isArray(at.obj[at.name])) at.obj[at.name] = [];
    return at.obj[at.name];
  }

  // ---------------------------------------------------------------- the page
  let result = walk();
  const keyOf = (box) => box.dataset.q || box.dataset.repeat;
  // The inputs of a question; a repeat section has none of its own.
  const inputsOf = (name) => (boxes[name].dataset.q ? Array.from(boxes[name].querySelectorAll('input, select, textarea')) : []);
  const pageOf = (el) => el.closest('section.page');
  const pageNumber = (page) => +page.dataset.page;
  const pageShown = (page) => pageNumber(page) === 0 || Array.from(page.querySelectorAll('[data-q], [data-repeat]')).some((b) => result.relevant.has(keyOf(b)));

  // Entries on the page to match the answers kept: the missing ones copied from the
  // blank entry, with their answers written in; the extra ones removed.
  function makeEntry(section, number) {
    const tpl = form.querySelector('template[data-template="' + section.dataset.path + '"]');
    const holder = document.createElement('div');
    holder.innerHTML = tpl.innerHTML.split(tpl.dataset.key + '[0].').join(section.dataset.repeat + '[' + number + '].');
    const entry = holder.firstElementChild;
    entry.dataset.entry = number;
    entry.querySelector('.entry-title').textContent = M.entry.replace('%(number)s', number);
    return entry;
  }
  function syncEntries() {
    let changed = false, again = true;
    while (again) {
      again = false;
      form.querySelectorAll('[data-repeat]').forEach((section) => {
        if (!section.isConnected) return;
        const list = listAt(section.dataset.repeat), holder = section.querySelector('.entries');
        const entries = Array.from(holder.children);
        entries.slice(list.length).forEach((e) => { e.remove(); again = true; });
        for (let i = entries.length; i < list.length; i++) {
          const entry = makeEntry(section, i + 1);
          holder.appendChild(entry);
          entry.querySelectorAll('[data-q]').forEach((box) => {
            boxes[box.dataset.q] = box;
            writeAnswer(box.dataset.q, valueAt(box.dataset.q));
          });
          again = true;
        }
      });
      changed = changed || again;
    }
    if (changed) indexBoxes();
    return changed;
  }
  const shownPages = () => pages.filter(pageShown);

  function readAnswer(name) {
    const els = inputsOf(name), first = els[0];
    if (first.type === 'checkbox') return els.filter((e) => e.checked).map((e) => e.value);
    if (first.type === 'radio') { const c = els.find((e) => e.checked); return c ? c.value : ''; }
    return first.value;
  }

  function writeAnswer(name, value) {
    inputsOf(name).forEach((el) => {
      if (el.type === 'checkbox') el.checked = Array.isArray(value) && value.indexOf(el.value) >= 0;
      else if (el.type === 'radio') el.checked = String(value) === el.value;
      else el.value = value === undefined || value === null ? '' : value;
    });
  }

  function showError(name, message) {
    const box = boxes[name], err = $('e-' + name);
    if (!box) return;
    box.classList.toggle('invalid', !!message);
    if (err) err.textContent = message || '';
    inputsOf(name).forEach((el) => { if (message) el.setAttribute('aria-invalid', 'true'); else el.removeAttribute('aria-invalid'); });
  }

  function render() {
    Object.keys(boxes).forEach((name) => {
      boxes[name].hidden = !result.relevant.has(name);
      const f = result.filters[name];
      if (f !== undefined) boxes[name].querySelectorAll('[data-code]').forEach((o) => { o.hidden = !f.has(o.dataset.code); });
      if (boxes[name].dataset.repeat) {
        const size = result.sizes[name] || 0;
        boxes[name].querySelector('.entries').childNodes.forEach((e) => { if (e.nodeType === 1) e.hidden = +e.dataset.entry > size; });
        const notice = $('n-' + name);
        if (notice) notice.textContent = result.notices[name] || '';
      }
    });
    const shown = shownPages();
    let current = pages.find((p) => pageNumber(p) === state.page);
    if (!current || !pageShown(current)) current = shown.filter((p) => pageNumber(p) <= state.page).pop() || shown[0];
    state.page = pageNumber(current);
    pages.forEach((p) => p.classList.toggle('current', p === current));
    const at = shown.indexOf(current), last = at === shown.length - 1;
    $('back').hidden = at === 0;
    $('next').hidden = last;
    $('next').textContent = at === 0 ? $('next').dataset.start : $('next').dataset.next;
    $('submit').hidden = !last;
    $('send-note').hidden = !last;
    // The start page has its own language choice: the bar's would be a second one.
    $('langs').hidden = at === 0;
    const total = shown.length - 1;
    $('progress').hidden = at === 0;
    $('progress-bar').max = total;
    $('progress-bar').value = at;
    $('progress-text').textContent = M.page.replace('%(page)s', at).replace('%(pages)s', total);
    return current;
  }

  function report(errors, names) {
    const bad = names.filter((n) => errors[n]);
    names.forEach((n) => showError(n, errors[n]));
    summary.textContent = '';
    if (!bad.length) return true;
    const p = document.createElement('p');
    p.textContent = M.summary;
    const list = document.createElement('ul');
    bad.forEach((n) => {
      const li = document.createElement('li'), a = document.createElement('a');
      const label = boxes[n].querySelector(boxes[n].dataset.q ? 'legend, label.label' : '.repeat-title');
      const entry = boxes[n].parentElement.closest('.entry');
      a.href = '#q-' + n;
      a.textContent = (entry ? entry.querySelector('.entry-title').textContent + ': ' : '') +
        (label ? label.firstChild.textContent.trim() : n) + ' — ' + errors[n];
      li.appendChild(a); list.appendChild(li);
    });
    summary.append(p, list);
    const target = inputsOf(bad[0])[0] || boxes[bad[0]].querySelector('button');
    if (target) target.focus();
    return false;
  }

  const namesOn = (page) => Array.from(page.querySelectorAll('[data-q], [data-repeat]')).map(keyOf).filter((n) => result.relevant.has(n));

  function go(step) {
    const current = render(), shown = shownPages(), at = shown.indexOf(current);
    if (step > 0 && !report(result.errors, namesOn(current))) return;
    if (step > 0 && !state.started) state.started = new Date().toISOString();
    const target = shown[Math.max(0, Math.min(shown.length - 1, at + step))];
    state.page = pageNumber(target);
    save();
    summary.textContent = '';
    render();
    const heading = target.querySelector('h1, h2, h3') || target.querySelector('input, select, textarea');
    if (heading) heading.focus();
    window.scrollTo(0, 0);
  }

  function refresh() {
    result = walk();
    syncEntries();
    save();
    render();
  }

  function onChange(event) {
    const box = event.target.closest('[data-q]');
    if (!box) return;
    const name = box.dataset.q, at = locate(name);
    at.obj[at.name] = readAnswer(name);
    if (!state.started) state.started = new Date().toISOString();
    refresh();
    // A corrected answer loses its message at once; new problems are reported when the
    // respondent moves on, so the page does not shift under a finger or a pointer.
    if (!result.errors[name]) showError(name, '');
  }

  // ---------------------------------------------------------------- sending
  // A finished interview goes to the outbox (IndexedDB) before any network attempt and
  // leaves it only when the server said it stored it; until then the page says it waits
  // on this device and the outbox sends it by itself. The draft in localStorage stays too.
  const mine = (item) => item && item.meta && item.meta.token === cfg.token;
  let sending = false;
  // In the tablet app (a host page) the app's own store and outbox take the interview.
  const outbox = host ? null
    : window.TanysOutbox.open({ db: 'tanys-web', store: 'outbox', onEvent: onOutbox });

  function showQueued(text) {
    if ($('queued').hidden) {
      form.hidden = true;
      $('progress').hidden = true;
      $('queued').hidden = false;
      summary.textContent = '';
      $('queued').querySelector('h1').focus();
    }
    $('queued-status').textContent = text;
  }

  function finished(item, body) {
    // Stored: the copies on the device are no longer needed (for any form of this site).
    const token = item.meta.token;
    try {
      localStorage.removeItem('tanys:' + token);
      if (!item.meta.single) localStorage.setItem('tanys:done:' + token, item.id);
    } catch (e) { /* nothing to keep */ }
    if (token === cfg.token) location.href = (body && body.redirect) || item.meta.thanks;
  }

  function refused(body) {
    sending = false;
    $('submit').disabled = false;
    form.removeAttribute('aria-busy');
    status.textContent = '';
    $('queued').hidden = true;
    form.hidden = false;
    if (body.errors) {
      const first = Object.keys(body.errors).find((n) => boxes[n]);
      if (first) {
        state.page = pageNumber(pageOf(boxes[first]));
        render();
        const flat = {};
        Object.keys(body.errors).forEach((n) => { flat[n] = body.errors[n].join(' '); });
        report(flat, namesOn(pageOf(boxes[first])));
        return;
      }
    }
    render();
    summary.textContent = body.message || M.refused;
    summary.focus();
  }

  function onOutbox(event) {
    const item = event.item;
    if (event.type === 'storage') { status.textContent = M.storage; return; }
    if (event.type === 'stored') { finished(item, event.outcome.body); return; }
    if (!mine(item)) return;
    if (event.type === 'sending') {
      if ($('queued').hidden) status.textContent = M.sending; else $('queued-status').textContent = M.sending;
    } else if (event.type === 'retry') {
      status.textContent = '';
      showQueued(event.delay === null ? M.waitingOnline
        : M.retryIn.replace('%(seconds)s', Math.max(1, Math.round(event.delay / 1000))));
    } else if (event.type === 'rejected') {
      refused(event.outcome.body || {});
    }
  }

  async function submit() {
    if (sending) return;
    result = walk();
    const names = Object.keys(boxes).filter((n) => result.relevant.has(n));
    const firstBad = names.find((n) => result.errors[n]);
    if (firstBad) {
      state.page = pageNumber(pageOf(boxes[firstBad]));
      render();
      report(result.errors, namesOn(pageOf(boxes[firstBad])));
      return;
    }
    if (host) { host.finish(state, result.send); return; }  // the tablet app sends it
    sending = true;
    $('submit').disabled = true;
    form.setAttribute('aria-busy', 'true');
    summary.textContent = '';
    status.textContent = M.sending;
    const item = await outbox.put({
      id: state.id,
      url: cfg.submitUrl,
      body: {
        instance_id: state.id, language: cfg.lang, answers: result.send,
        started_at: state.started, ended_at: new Date().toISOString(),
      },
      meta: { token: cfg.token, single: cfg.single, thanks: cfg.thanksUrl },
    });
    await outbox.send(item.id);
    sending = false;
  }

  // ---------------------------------------------------------------- start
  document.documentElement.classList.add('js');
  const done = (() => { try { return localStorage.getItem(DONE); } catch (e) { return null; } })();
  if (done && !load()) {
    form.hidden = true;
    $('done').hidden = false;
    $('again').addEventListener('click', () => {
      try { localStorage.removeItem(DONE); } catch (e) { /* ignore */ }
      state = fresh(); save(); location.reload();
    });
    return;
  }
  syncEntries();
  Object.keys(boxes).forEach((name) => {
    const value = boxes[name].dataset.q ? valueAt(name) : undefined;
    if (value !== undefined) writeAnswer(name, value);
  });
  form.addEventListener('input', onChange);
  form.addEventListener('change', onChange);
  // Add another / Remove: the answers kept change, then the page follows them.
  form.addEventListener('click', (e) => {
    const add = e.target.closest('[data-add]'), remove = e.target.closest('[data-remove]');
    if (!add && !remove) return;
    e.preventDefault();
    const section = (add || remove).closest('[data-repeat]'), key = section.dataset.repeat;
    const list = listAt(key), holder = section.querySelector('.entries');
    let focus;
    if (add) {
      list.push({});
      refresh();
      focus = holder.lastElementChild;
    } else {
      const number = +remove.closest('.entry').dataset.entry;
      list.splice(number - 1, 1);
      // Later entries move up a number: draw them again from the answers kept.
      Array.from(holder.children).slice(number - 1).forEach((entry) => entry.remove());
      refresh();
      focus = holder.children[number - 1] || holder.children[number - 2];
    }
    const target = focus ? focus.querySelector('input, select, textarea') : section.querySelector('[data-add], .repeat-title');
    if (target) target.focus();
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if ($('submit').hidden) go(1); else submit();
  });
  $('next').addEventListener('click', () => go(1));
  $('back').addEventListener('click', () => go(-1));
  document.querySelectorAll('a[data-lang]').forEach((a) => a.addEventListener('click', (e) => {
    e.preventDefault();
    state.lang = a.dataset.lang;
    save();
    location.href = '?lang=' + a.dataset.lang;
  }));
  summary.textContent = '';
  save();
  render();
  if (host) return;
  $('send-now').addEventListener('click', () => { outbox.send(state.id); });
  // An interview of this link still waiting on the device: say so, and send it.
  outbox.list((item) => mine(item) && item.state === 'queued').then((waiting) => {
    if (waiting.length) showQueued(navigator.onLine === false ? M.waitingOnline : M.sending);
    outbox.start();
  });
  // A reload with no connection shows this page from the service worker's cache.
  if ('serviceWorker' in navigator && cfg.serviceWorker) {
    const scope = cfg.serviceWorker.replace(/[^/]*$/, '');
    navigator.serviceWorker.register(cfg.serviceWorker, { scope: scope })
      .then(() => navigator.serviceWorker.ready)
      .then((registration) => {
        const files = Array.from(document.querySelectorAll('script[src], link[href]'), (el) => el.src || el.href);
        registration.active.postMessage({ type: 'cache', urls: [location.href].concat(files) });
      })
      .catch(() => { /* no worker (an old browser, a private window): the outbox still works */ });
  }
})();
