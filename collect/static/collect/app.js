/* The enumerators' app: enrolment, assignments and quotas, the lists of interviews,
   storage, the outbox's schedule, export and import. Texts in kk/ru/en come from the page
   (collect-config); everything else is in IndexedDB (store.js), so the app starts and
   works with no connection. Plain ES2017, no dependencies. */
(function () {
  'use strict';
  const S = window.TanysStore, O = window.TanysOutbox;
  const cfg = JSON.parse(document.getElementById('collect-config').textContent);
  const $ = (id) => document.getElementById(id);
  const LANGS = ['kk', 'ru', 'en'];
  const LOW_SPACE = 50 * 1024 * 1024;
  let lang = localStorage.getItem('tanys:collect:lang') || cfg.language;
  if (LANGS.indexOf(lang) < 0) lang = 'kk';
  const t = (key, values) => {
    let text = (cfg.messages[lang] || cfg.messages.en)[key] || key;
    Object.keys(values || {}).forEach((k) => { text = text.split('%(' + k + ')s').join(values[k]); });
    return text;
  };
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.keys(attrs || {}).forEach((k) => {
      if (k === 'text') node.textContent = attrs[k];
      else if (k.startsWith('data-')) node.setAttribute(k, attrs[k]);
      else node[k] = attrs[k];
    });
    (children || []).forEach((c) => node.appendChild(c));
    return node;
  }
  const when = (iso) => (iso ? new Date(iso).toLocaleString(lang === 'kk' ? 'kk-KZ' : lang) : '');

  function translatePage() {
    document.documentElement.lang = lang;
    document.querySelectorAll('[data-t]').forEach((n) => { n.textContent = t(n.dataset.t); });
    document.querySelectorAll('[data-lang]').forEach((a) => {
      if (a.dataset.lang === lang) a.setAttribute('aria-current', 'true'); else a.removeAttribute('aria-current');
    });
  }

  function say(id, text, kind) {
    const box = $(id);
    box.textContent = text || '';
    box.hidden = !text;
    if (kind) box.className = 'notice ' + kind;
  }

  // ---------------------------------------------------------------- enrolment
  async function enrol(event) {
    event.preventDefault();
    say('enrol-message', '');
    const body = {
      username: $('username').value.trim(), password: $('password').value,
      code: $('code').value.trim(), label: $('label').value.trim(), app_version: cfg.appVersion,
    };
    let response, data;
    try {
      response = await fetch('/api/collect/devices/', {
        method: 'POST', credentials: 'omit',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'Accept-Language': lang },
        body: JSON.stringify(body),
      });
      data = await response.json();
    } catch (e) {
      say('enrol-message', t('offlineNeeded'), 'error');
      return;
    }
    if (!response.ok) { say('enrol-message', data.message || t('enrolFailed'), 'error'); return; }
    await S.setMeta('token', data.token);
    await S.setMeta('device', data.device_id);
    await S.setMeta('enumerator', data.enumerator);
    await S.setMeta('authProblem', null);
    $('password').value = '';
    await askPersistence();
    await refresh();
    await show();
    await offlineReady();
  }

  // Shown once the service worker controls the page and the questionnaires are cached.
  async function offlineReady() {
    if (!navigator.serviceWorker) return;
    await navigator.serviceWorker.ready;
    if (!navigator.serviceWorker.controller) {
      await new Promise((resolve) => {
        navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true });
        setTimeout(resolve, 5000);
      });
    }
    $('offline-ready').hidden = !navigator.serviceWorker.controller;
  }

  // ---------------------------------------------------------------- server data
  async function api(path) {
    const token = await S.meta('token');
    const response = await fetch(path, { headers: { Accept: 'application/json', Authorization: 'Bearer ' + token, 'X-Tanys-App-Version': cfg.appVersion } });
    const body = await response.json().catch(() => ({}));
    if (response.status === 401) { await S.setMeta('authProblem', body); throw new Error('auth'); }
    if (!response.ok) throw new Error('http ' + response.status);
    return body;
  }

  // Everything needed offline: assignments, their questionnaires (data and pages) and
  // interviews sent back. Versions still used by an unsent interview are kept.
  async function refresh() {
    let assignments;
    try { assignments = await api('/api/collect/assignments/'); } catch (e) { return false; }
    const fetchedAt = new Date().toISOString();
    await S.replaceAll('assignments', assignments.map((a) => Object.assign(a, { fetchedAt: fetchedAt })));
    const interviews = await S.all('interviews');
    const needed = new Set(assignments.map((a) => a.form_version));
    interviews.filter((r) => r.status !== 'sent' && r.formVersion).forEach((r) => needed.add(r.formVersion));
    const cache = await caches.open('tanys-forms');
    const token = await S.meta('token');
    for (const id of needed) {
      let form = await S.get('forms', id);
      if (!form) {
        try { form = await api('/api/collect/form-versions/' + id + '/'); } catch (e) { continue; }
        await S.put('forms', form);
      }
      for (const code of Object.keys(form.pages)) {
        const url = form.pages[code];
        if (await cache.match(url)) continue;
        const page = await fetch(url, { headers: { Authorization: 'Bearer ' + token } });
        if (page.ok) await cache.put(url, page);
      }
    }
    // Questionnaire pages no assignment and no unsent interview needs any more.
    for (const request of await cache.keys()) {
      const m = /\/collect\/form\/([0-9]+)\//.exec(request.url);
      if (m && !needed.has(+m[1])) await cache.delete(request);
    }
    for (const form of await S.all('forms')) if (!needed.has(form.id)) await S.del('forms', form.id);
    try {
      const returned = await api('/api/collect/returned/');
      const fixing = new Set(interviews.filter((r) => r.replaces && r.status !== 'returned').map((r) => r.replaces));
      for (const row of returned) {
        if (fixing.has(row.instance_id)) continue;
        await S.put('interviews', {
          id: 'returned:' + row.instance_id, status: 'returned', original: row.instance_id,
          assignment: row.assignment, formVersion: row.form_version, lang: row.language,
          answers: row.answers, review: { comment: row.review_comment, questions: row.question_comments, by: row.reviewed_by, at: row.reviewed_at },
          endedAt: row.ended_at,
        });
      }
    } catch (e) { /* shown next time */ }
    await S.setMeta('lastRefresh', fetchedAt);
    return true;
  }

  // ---------------------------------------------------------------- interviews
  function localCount(interviews, assignment) {
    return interviews.filter((r) => r.assignment === assignment.id && !r.replaces &&
      (r.status === 'queued' || r.status === 'problem' || (r.status === 'sent' && r.sentAt > assignment.fetchedAt))).length;
  }

  async function start(assignment, force) {
    const interviews = await S.all('interviews');
    const count = assignment.done + localCount(interviews, assignment);
    if (!force && assignment.quota >= 0 && count >= assignment.quota) {
      const box = $('quota-' + assignment.id);
      box.hidden = false;
      box.textContent = '';
      box.append(el('p', { text: t('quotaReached', { count: count, quota: assignment.quota }) }),
        el('button', { type: 'button', className: 'secondary', text: t('startAnyway'), onclick: () => start(assignment, true) }));
      return;
    }
    const form = await S.get('forms', assignment.form_version);
    const id = S.uuid4();
    const answers = {};
    Object.keys(assignment.prefilled || {}).forEach((k) => { answers[k] = String(assignment.prefilled[k]); });
    const language = form && form.languages.indexOf(lang) >= 0 ? lang : (form ? form.default_language : lang);
    await S.put('interviews', {
      id: id, status: 'draft', assignment: assignment.id, formVersion: assignment.form_version, lang: language,
      state: { id: id, answers: answers, page: 0, started: null, lang: language },
      paradata: { started_at: new Date().toISOString() }, created: new Date().toISOString(),
    });
    open(id, assignment.form_version, language);
  }

  function open(id, formVersion, language) {
    localStorage.setItem(S.CURRENT, id);
    location.href = '/collect/form/' + formVersion + '/?lang=' + encodeURIComponent(language);
  }

  // Stored answers are typed (codes as numbers); the form's inputs take text.
  function asText(value) {
    if (Array.isArray(value)) return value.map(asText);
    if (value && typeof value === 'object') { const o = {}; Object.keys(value).forEach((k) => { o[k] = asText(value[k]); }); return o; }
    return value === null || value === undefined ? value : String(value);
  }

  async function fix(row) {
    const id = S.uuid4();
    await S.put('interviews', {
      id: id, status: 'draft', assignment: row.assignment, formVersion: row.formVersion, lang: row.lang,
      replaces: row.original, review: row.review,
      state: { id: id, answers: asText(row.answers), page: 0, started: null, lang: row.lang },
      paradata: { started_at: new Date().toISOString() }, created: new Date().toISOString(),
    });
    await S.del('interviews', row.id);
    open(id, row.formVersion, row.lang);
  }

  // ---------------------------------------------------------------- lists
  function describe(row, assignments) {
    const a = assignments.find((x) => x.id === row.assignment);
    const place = a ? [a.region_name, a.settlement].filter(Boolean).join(', ') : '';
    const moment = row.sentAt || (row.paradata && row.paradata.ended_at) || row.endedAt || row.created;
    return [when(moment), place].filter(Boolean).join(' · ');
  }

  function list(id, rows, assignments, extra) {
    const holder = $(id);
    holder.textContent = '';
    if (!rows.length) { holder.appendChild(el('li', { className: 'empty', text: t('none') })); return; }
    rows.forEach((row) => {
      const li = el('li', { 'data-id': row.id }, [el('span', { text: describe(row, assignments) })]);
      if (extra) extra(li, row);
      holder.appendChild(li);
    });
  }

  async function show() {
    translatePage();
    const token = await S.meta('token');
    $('enrol').hidden = !!token;
    $('work').hidden = !token;
    if (!token) return;
    $('enumerator').textContent = t('signedInAs', { name: await S.meta('enumerator') });
    const problem = await S.meta('authProblem');
    say('auth-problem', problem && problem.code ? (problem.code === 'device_revoked' ? t('revoked') : problem.message || t('revoked')) : '', 'error');
    const assignments = await S.all('assignments');
    const interviews = await S.all('interviews');
    const holder = $('assignments');
    holder.textContent = '';
    if (!assignments.length) holder.appendChild(el('li', { className: 'empty', text: t('noAssignments') }));
    assignments.forEach((a) => {
      const done = a.done + localCount(interviews, a);
      const progress = a.quota >= 0
        ? t('progress', { done: done, quota: a.quota, accepted: a.accepted })
        : t('progressUnlimited', { done: done, accepted: a.accepted });
      const li = el('li', { className: 'assignment', 'data-assignment': a.id }, [
        el('h3', { text: [a.region_name, a.settlement || a.psu].filter(Boolean).join(' · ') }),
        el('p', { className: 'muted', text: a.survey + ' · ' + (a.wave_title || a.wave) }),
      ]);
      if (a.quota >= 0) li.appendChild(el('progress', { max: Math.max(1, a.quota), value: Math.min(done, a.quota) }));
      li.appendChild(el('p', { className: 'progress-text', text: progress }));
      li.appendChild(el('button', { type: 'button', className: 'new-interview', text: t('newInterview'), onclick: () => start(a, false) }));
      li.appendChild(el('div', { id: 'quota-' + a.id, className: 'notice warning quota', hidden: true }));
      holder.appendChild(li);
    });
    const by = (status) => interviews.filter((r) => r.status === status);
    list('drafts', by('draft'), assignments, (li, row) => {
      li.appendChild(el('button', { type: 'button', className: 'secondary', text: t('continue'), onclick: () => open(row.id, row.formVersion, row.lang) }));
    });
    list('waiting', by('queued'), assignments);
    list('problems', by('problem'), assignments, (li, row) => {
      const p = row.problem || {};
      const detail = [p.message].concat(Object.keys(p.errors || {}).map((k) => k + ': ' + p.errors[k].join(' '))).filter(Boolean).join(' ');
      li.appendChild(el('p', { className: 'muted', text: detail }));
    });
    list('sent', by('sent'), assignments, (li, row) => { if (row.overQuota) li.appendChild(el('span', { className: 'badge', text: t('overQuota') })); });
    list('returned', by('returned'), assignments, (li, row) => {
      const review = row.review || {};
      if (review.comment) li.appendChild(el('p', { className: 'review-comment', text: t('supervisorComment') + ' ' + review.comment }));
      const questions = review.questions || {};
      if (Object.keys(questions).length) {
        li.appendChild(el('ul', { className: 'question-comments' }, Object.keys(questions).map((q) => el('li', { text: q + ': ' + questions[q] }))));
      }
      li.appendChild(el('button', { type: 'button', className: 'fix', text: t('fix'), onclick: () => fix(row) }));
    });
    $('waiting-count').textContent = by('queued').length;
    $('sent-count').textContent = by('sent').length;
    await showStorage();
  }

  // ---------------------------------------------------------------- storage
  async function askPersistence() {
    if (!navigator.storage || !navigator.storage.persist) return null;
    const granted = await navigator.storage.persist();
    await S.setMeta('persisted', granted);
    return granted;
  }

  async function showStorage() {
    let persisted = null, estimate = null;
    if (navigator.storage) {
      if (navigator.storage.persisted) persisted = await navigator.storage.persisted();
      if (navigator.storage.estimate) estimate = await navigator.storage.estimate();
    }
    $('storage-persisted').textContent = persisted ? t('storagePersisted') : t('storageNotPersisted');
    $('storage-persisted').dataset.persisted = persisted ? 'yes' : 'no';
    if (estimate && estimate.quota) {
      const free = Math.max(0, estimate.quota - (estimate.usage || 0));
      $('storage-free').textContent = t('storageFree', { free: Math.floor(free / 1048576) });
      const low = free < LOW_SPACE || free < estimate.quota * 0.1;
      say('storage-low', low ? t('storageLow') : '', 'warning');
    }
  }

  // ---------------------------------------------------------------- sending
  function online() {
    const on = navigator.onLine;
    $('connection').textContent = on ? t('online') : t('offline');
    $('connection').dataset.online = on ? 'yes' : 'no';
  }

  async function send(now) {
    const report = await O.flush({ now: now });
    if (report.sent) await S.setMeta('lastSent', new Date().toISOString());
    if (report.sent || report.kept) await refresh();
    await show();
    return report;
  }

  // ---------------------------------------------------------------- export and import
  async function exportFile() {
    const rows = (await S.all('interviews')).filter((r) => r.status === 'queued' || r.status === 'problem');
    const body = {
      format: 'tanys-collect-export', version: 1, exported_at: new Date().toISOString(),
      device_id: await S.meta('device'), enumerator: await S.meta('enumerator'),
      interviews: rows.map(O.item),
    };
    const blob = new Blob([JSON.stringify(body, null, 1)], { type: 'application/json' });
    const a = el('a', { href: URL.createObjectURL(blob), download: 'tanys-interviews-' + body.exported_at.slice(0, 19).replace(/[:T]/g, '-') + '.json' });
    document.body.appendChild(a);
    a.click();
    a.remove();
    say('file-message', t('exported', { count: rows.length }), 'info');
  }

  async function importFile(event) {
    const file = event.target.files[0];
    if (!file) return;
    let body;
    try { body = JSON.parse(await file.text()); } catch (e) { body = null; }
    if (!body || body.format !== 'tanys-collect-export' || !Array.isArray(body.interviews)) {
      say('file-message', t('importBad'), 'error');
      return;
    }
    let count = 0;
    for (const item of body.interviews) {
      if (!item || typeof item.instance_id !== 'string' || await S.get('interviews', item.instance_id)) continue;
      await S.put('interviews', {
        id: item.instance_id, status: 'queued', assignment: item.assignment, formVersion: item.form_version,
        answers: item.answers, lang: item.language, paradata: item.paradata, replaces: item.replaces || null,
        imported: true, created: new Date().toISOString(),
      });
      count++;
    }
    event.target.value = '';
    say('file-message', t('imported', { count: count }), 'info');
    await show();
    if (navigator.onLine) await send(true);
  }

  // ---------------------------------------------------------------- start
  async function main() {
    if ('serviceWorker' in navigator) {
      try {
        await navigator.serviceWorker.register('/collect/sw.js', { scope: '/collect/' });
      } catch (e) { /* the app still works online */ }
    }
    $('enrol-form').addEventListener('submit', enrol);
    $('send-now').addEventListener('click', () => send(true));
    $('refresh').addEventListener('click', async () => { await refresh(); await show(); });
    $('export').addEventListener('click', exportFile);
    $('import').addEventListener('change', importFile);
    document.querySelectorAll('[data-lang]').forEach((a) => a.addEventListener('click', (e) => {
      e.preventDefault();
      lang = a.dataset.lang;
      localStorage.setItem('tanys:collect:lang', lang);
      show();
      online();
    }));
    window.addEventListener('online', () => { online(); send(true); });
    window.addEventListener('offline', online);
    online();
    await show();
    if (await S.meta('token')) {
      if (navigator.onLine) { await refresh(); await send(false); }
      await show();
      await offlineReady();
    }
    document.body.dataset.ready = 'yes';
  }
  main();
})();
