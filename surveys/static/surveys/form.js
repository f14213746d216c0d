/* The respondent web form: pages, live skip logic and checks, save and resume, submit.
   Walks the compiled form exactly as surveys/validation.py does (see its docstring), using
   window.TanysExpr from expressions.js, so the browser and the server agree; the server
   has the last word. Plain ES2017, no dependencies. */
(function () {
  'use strict';
  const X = window.TanysExpr;
  const cfg = JSON.parse(document.getElementById('tanys-config').textContent);
  const M = cfg.messages;
  const KEY = 'tanys:' + cfg.token, DONE = 'tanys:done:' + cfg.token;
  const form = document.getElementById('tanys-form');
  const summary = document.getElementById('summary');
  const pages = Array.from(form.querySelectorAll('section.page'));
  const boxes = {};
  form.querySelectorAll('[data-q]').forEach((el) => { boxes[el.dataset.q] = el; });
  const $ = (id) => document.getElementById(id);
  const INT_RE = /^[+-]?[0-9]+$/, DEC_RE = /^[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)$/;
  const DATE_RE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/, CODE_RE = /^[+-]?[0-9]+$/;
  const INPUT_TYPES = ['integer', 'decimal', 'text', 'select_one', 'select_multiple', 'date'];

  const questions = {};
  (function index(nodes) {
    nodes.forEach((n) => { if (n.k === 'q') questions[n.n] = n; if (n.ch) index(n.ch); });
  })(cfg.logic.nodes);

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
  function save() { try { localStorage.setItem(KEY, JSON.stringify(state)); } catch (e) { /* private mode: keep going */ } }
  let state = load() || fresh();
  if (!cfg.explicitLang && state.lang && state.lang !== cfg.lang && document.querySelector('[data-lang="' + state.lang + '"]')) {
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

  // One pass in form order, as the server does: returns relevance, filters and errors.
  function walk() {
    const working = {}, relevant = new Set(), errors = {}, filters = {};
    Object.keys(questions).forEach((name) => {
      const n = questions[name], raw = state.answers[name];
      if (INPUT_TYPES.indexOf(n.t) >= 0 && !blank(raw)) {
        try { working[name] = convert(n, raw); } catch (e) { /* checked in order below */ }
      }
    });
    const truth = (ast, opts) => X.toBoolean(X.evaluate(ast, working, opts));
    function question(n, here) {
      const name = n.n;
      if (n.t === 'note') { delete working[name]; if (here) relevant.add(name); return; }
      if (!here) { delete working[name]; return; }
      relevant.add(name);
      if (n.t === 'calculate') {
        const v = calcValue(X.evaluate(n.x, working));
        if (v === undefined) delete working[name]; else working[name] = v;
        return;
      }
      if (n.f) filters[name] = allowed(n, working);
      const raw = state.answers[name];
      if (blank(raw)) {
        delete working[name];
        const required = Array.isArray(n.q) ? truth(n.q, { current: '' }) : n.q === true;
        if (required) errors[name] = n.rm || M.required;
        return;
      }
      let v;
      try { v = convert(n, raw); } catch (e) { delete working[name]; errors[name] = e.message; return; }
      if (filters[name] && !(Array.isArray(v) ? v : [String(v)]).every((c) => filters[name].has(c))) {
        delete working[name]; errors[name] = M.choice; return;
      }
      working[name] = v;
      if (n.c && !truth(n.c, { current: v })) errors[name] = n.cm || M.constraint;
    }
    (function visit(nodes, rel) {
      nodes.forEach((n) => {
        const here = rel && (n.r === undefined || truth(n.r));
        if (n.k === 'g') visit(n.ch || [], here);
        else if (n.k === 'q') question(n, here);
      });
    })(cfg.logic.nodes, true);
    return { relevant, errors, filters };
  }

  // ---------------------------------------------------------------- the page
  let result = walk();
  const inputsOf = (name) => Array.from(boxes[name].querySelectorAll('input, select, textarea'));
  const pageOf = (el) => el.closest('section.page');
  const pageNumber = (page) => +page.dataset.page;
  const pageShown = (page) => pageNumber(page) === 0 || Array.from(page.querySelectorAll('[data-q]')).some((b) => result.relevant.has(b.dataset.q));
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
    box.classList.toggle('invalid', !!message);
    if (err) err.textContent = message || '';
    inputsOf(name).forEach((el) => { if (message) el.setAttribute('aria-invalid', 'true'); else el.removeAttribute('aria-invalid'); });
  }

  function render() {
    Object.keys(boxes).forEach((name) => {
      boxes[name].hidden = !result.relevant.has(name);
      const f = result.filters[name];
      if (f !== undefined) boxes[name].querySelectorAll('[data-code]').forEach((o) => { o.hidden = !f.has(o.dataset.code); });
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
      const label = boxes[n].querySelector('legend, label.label');
      a.href = '#q-' + n;
      a.textContent = (label ? label.firstChild.textContent.trim() : n) + ' — ' + errors[n];
      li.appendChild(a); list.appendChild(li);
    });
    summary.append(p, list);
    const target = inputsOf(bad[0])[0];
    if (target) target.focus();
    return false;
  }

  const namesOn = (page) => Array.from(page.querySelectorAll('[data-q]')).map((b) => b.dataset.q).filter((n) => result.relevant.has(n));

  function go(step) {
    const current = render(), shown = shownPages(), at = shown.indexOf(current);
    if (step > 0 && !report(result.errors, namesOn(current))) return;
    if (step > 0 && !state.started) state.started = new Date().toISOString();
    const target = shown[Math.max(0, Math.min(shown.length - 1, at + step))];
    state.page = pageNumber(target);
    save();
    summary.textContent = '';
    render();
    const heading = target.querySelector('h1, h2') || target.querySelector('input, select, textarea');
    if (heading) heading.focus();
    window.scrollTo(0, 0);
  }

  function onChange(event) {
    const box = event.target.closest('[data-q]');
    if (!box) return;
    const name = box.dataset.q;
    state.answers[name] = readAnswer(name);
    if (!state.started) state.started = new Date().toISOString();
    save();
    result = walk();
    render();
    // A corrected answer loses its message at once; new problems are reported when the
    // respondent moves on, so the page does not shift under a finger or a pointer.
    if (!result.errors[name]) showError(name, '');
  }

  let sending = false;
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
    const answers = {};
    names.forEach((n) => {
      const q = questions[n];
      if (INPUT_TYPES.indexOf(q.t) >= 0 && !blank(state.answers[n])) answers[n] = state.answers[n];
    });
    sending = true;
    $('submit').disabled = true;
    form.setAttribute('aria-busy', 'true');
    summary.textContent = M.sending;
    let response = null, body = {};
    try {
      response = await fetch(cfg.submitUrl, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({
          instance_id: state.id, language: cfg.lang, answers: answers,
          started_at: state.started, ended_at: new Date().toISOString(),
        }),
      });
      body = await response.json();
    } catch (e) {
      response = response && response.status >= 500 ? response : null;
    }
    sending = false;
    $('submit').disabled = false;
    form.removeAttribute('aria-busy');
    if (response && response.ok) {
      try {
        localStorage.removeItem(KEY);
        if (!cfg.single) localStorage.setItem(DONE, state.id);
      } catch (e) { /* nothing to keep */ }
      location.href = body.redirect || cfg.thanksUrl;
      return;
    }
    if (response && body.errors) {
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
    summary.textContent = response ? body.message || M.refused : M.offline;
    summary.focus();
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
  Object.keys(state.answers).forEach((name) => { if (boxes[name]) writeAnswer(name, state.answers[name]); });
  form.addEventListener('input', onChange);
  form.addEventListener('change', onChange);
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
})();
