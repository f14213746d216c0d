/* The enumerators' app: one interview in the web form's own page and script.
   The questionnaire page is the respondent form's (same renderer, same form.js and
   expressions.js). This script runs first: it loads the interview from IndexedDB, hands
   it to form.js through window.TanysFormHost, keeps every change in IndexedDB, records the
   paradata, and when the interview is finished puts it in the outbox instead of posting it.
   Paradata: time per page, pauses and resumptions, answer changes, language switches;
   a GPS fix (with its accuracy) only when the survey enables it. */
(function () {
  'use strict';
  const S = window.TanysStore;
  const cfg = JSON.parse(document.getElementById('tanys-config').textContent);
  const KEY = 'tanys:' + cfg.token;            // where form.js keeps its state
  const PARA = 'tanys:collect:paradata';      // paradata, written synchronously too
  const id = localStorage.getItem(S.CURRENT);
  const now = () => new Date().toISOString();
  let row = null, para = null, pageShown = null, pageSince = Date.now();

  function keepPara() {
    try { localStorage.setItem(PARA, JSON.stringify({ id: id, paradata: para })); } catch (e) { /* full */ }
  }
  function persist(state) {
    if (!row) return;
    row.state = state || row.state;
    row.paradata = para;
    row.lang = row.state.lang || row.lang;
    row.updated = now();
    S.put('interviews', row);
  }

  // Seconds on each page, by page number, added up over visits.
  function leavePage() {
    if (pageShown === null) return;
    const pages = para.pages = para.pages || {};
    pages[pageShown] = Math.round(((pages[pageShown] || 0) + (Date.now() - pageSince) / 1000) * 10) / 10;
    pageSince = Date.now();
  }
  function watchPages() {
    const observer = new MutationObserver(() => {
      const current = document.querySelector('section.page.current');
      const number = current ? current.dataset.page : null;
      if (number !== pageShown) { leavePage(); pageShown = number; pageSince = Date.now(); keepPara(); }
    });
    document.querySelectorAll('section.page').forEach((p) => observer.observe(p, { attributes: true, attributeFilter: ['class'] }));
  }

  function watchChanges(state) {
    const form = document.getElementById('tanys-form');
    const blank = (v) => v === undefined || v === null || v === '' || (Array.isArray(v) && !v.length);
    const answered = new Set(Object.keys(state.answers).filter((k) => !blank(state.answers[k])));
    // A change of an answer already given counts; the first answer to a question does not.
    form.addEventListener('change', (e) => {
      const box = e.target.closest('[data-q]');
      if (!box) return;
      const name = box.dataset.q;
      if (answered.has(name)) {
        para.changes = para.changes || {};
        para.changes[name] = (para.changes[name] || 0) + 1;
      }
      answered.add(name);
      keepPara();
    }, true);
    document.querySelectorAll('a[data-lang]').forEach((a) => a.addEventListener('click', () => {
      para.language_switches = para.language_switches || [];
      para.language_switches.push({ from: cfg.lang, to: a.dataset.lang, at: now() });
      leavePage();
      keepPara();
    }, true));
    document.addEventListener('visibilitychange', () => {
      para.pauses = para.pauses || [];
      if (document.visibilityState === 'hidden') { leavePage(); para.pauses.push({ paused_at: now() }); }
      else {
        const last = para.pauses[para.pauses.length - 1];
        if (last && !last.resumed_at) last.resumed_at = now();
        pageSince = Date.now();
      }
      keepPara();
      persist();
    });
  }

  function showReview() {
    const review = row.review;
    if (!review) return;
    const sheet = document.querySelector('main.sheet');
    const banner = document.createElement('div');
    banner.className = 'notice review';
    banner.id = 'review-comment';
    const p = document.createElement('p');
    p.textContent = cfg.collect.supervisorComment + ' ' + (review.comment || '');
    banner.appendChild(p);
    sheet.insertBefore(banner, sheet.firstChild);
    Object.keys(review.questions || {}).forEach((name) => {
      const box = document.querySelector('[data-q="' + name + '"]');
      if (!box) return;
      const note = document.createElement('p');
      note.className = 'review-question';
      note.textContent = cfg.collect.questionComment + ' ' + review.questions[name];
      box.insertBefore(note, box.firstChild.nextSibling);
    });
  }

  function gps() {
    if (!cfg.collect.recordGps || !navigator.geolocation || para.gps) return;
    navigator.geolocation.getCurrentPosition((pos) => {
      para.gps = { lat: pos.coords.latitude, lon: pos.coords.longitude, accuracy: pos.coords.accuracy, at: new Date(pos.timestamp).toISOString() };
      keepPara(); persist();
    }, () => {}, { enableHighAccuracy: true, timeout: 30000, maximumAge: 60000 });
  }

  async function finish(state, answers) {
    leavePage();
    para.ended_at = now();
    para.started_at = para.started_at || state.started || para.ended_at;
    para.app_version = cfg.collect.appVersion;
    row.state = state;
    row.answers = answers;
    row.lang = cfg.lang;
    row.paradata = para;
    row.status = 'queued';
    row.finished = para.ended_at;
    await S.put('interviews', row);
    localStorage.removeItem(KEY);
    localStorage.removeItem(PARA);
    localStorage.removeItem(S.CURRENT);
    location.href = '/collect/';
  }

  async function main() {
    row = id ? await S.get('interviews', id) : null;
    if (!row || row.status !== 'draft') { location.href = '/collect/'; return; }
    // What the page wrote synchronously before it was closed is the newest.
    let saved = null, savedPara = null;
    try { saved = JSON.parse(localStorage.getItem(KEY)); } catch (e) { saved = null; }
    try { savedPara = JSON.parse(localStorage.getItem(PARA)); } catch (e) { savedPara = null; }
    const state = saved && saved.id === row.id ? saved : row.state;
    para = savedPara && savedPara.id === row.id ? savedPara.paradata : (row.paradata || {});
    if (row.updated || row.state.started) {
      para.resumptions = (para.resumptions || 0) + 1;
    }
    state.lang = cfg.lang;
    localStorage.setItem(KEY, JSON.stringify(state));
    keepPara();
    window.TanysFormHost = {
      save: (s) => { keepPara(); persist(JSON.parse(JSON.stringify(s))); },
      finish: finish,
    };
    const script = document.createElement('script');
    script.src = cfg.collect.formScript;
    script.onload = () => { showReview(); watchPages(); watchChanges(state); gps(); persist(); };
    document.body.appendChild(script);
  }
  main();
})();
