/* The web form in preview (surveys/preview_views.py): a host for form.js, as the tablet app
   is, that keeps no draft on the device and sends nothing to the outbox. The last step
   asks the server to check the answers, which it does without storing them, and shows
   what a real interview would have stored. Loaded before form.js. */
(function () {
  'use strict';
  const cfg = JSON.parse(document.getElementById('tanys-config').textContent);
  const KEY = 'tanys:' + cfg.token;
  function forget() {
    try { localStorage.removeItem(KEY); } catch (e) { /* nothing kept */ }
  }
  forget();

  function showProblems(body) {
    const summary = document.getElementById('summary');
    summary.textContent = '';
    const p = document.createElement('p');
    p.textContent = body.message || cfg.messages.refused || '';
    summary.appendChild(p);
    if (body.errors) {
      const list = document.createElement('ul');
      Object.keys(body.errors).forEach((name) => {
        const item = document.createElement('li');
        item.textContent = name + ': ' + [].concat(body.errors[name]).join(' ');
        list.appendChild(item);
      });
      summary.appendChild(list);
    }
    summary.focus();
  }

  async function finish(state, answers) {
    forget();
    const status = document.getElementById('status');
    status.textContent = cfg.preview.checking;
    let body;
    try {
      const response = await fetch(cfg.preview.checkUrl, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ language: cfg.lang, answers: answers }),
      });
      body = await response.json();
    } catch (e) {
      body = { message: cfg.messages.refused };
    }
    status.textContent = '';
    if (body.code === 'valid') {
      const main = document.querySelector('main.sheet');
      main.innerHTML = body.html;  // rendered and escaped by the server
      const heading = main.querySelector('h1');
      if (heading) heading.focus();
      return;
    }
    showProblems(body);
  }

  window.TanysFormHost = { save: forget, finish: finish };
})();
