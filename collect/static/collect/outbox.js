/* The enumerators' app: the outbox (window.TanysOutbox). Sends finished interviews to
   POST /api/collect/sync/ when a connection is there, with backoff, and deletes the local
   copy of an interview's answers only after the server confirmed it (stored or duplicate).
   Any other answer (invalid, conflict, refused) keeps the interview, marked, for the
   enumerator and the supervisor to see. Depends only on window.TanysStore. */
(function () {
  'use strict';
  const S = window.TanysStore;
  const BATCH = 50, FIRST_DELAY = 5000, MAX_DELAY = 15 * 60 * 1000;
  let sending = null, timer = null, batch = BATCH;

  // The sync item the server takes (the same shape is written to export files).
  function item(row) {
    return {
      instance_id: row.id, form_version: row.formVersion, assignment: row.assignment,
      answers: row.answers, language: row.lang, paradata: row.paradata,
      replaces: row.replaces || null,
    };
  }

  function delay(tries) {
    const base = Math.min(MAX_DELAY, FIRST_DELAY * Math.pow(2, Math.max(0, tries - 1)));
    return Math.round(base * (0.75 + Math.random() * 0.5));
  }

  async function settle(row, result) {
    if (result.status === 'stored' || result.status === 'duplicate') {
      // Confirmed: keep a receipt, not the answers.
      await S.put('interviews', {
        id: row.id, status: 'sent', assignment: row.assignment, formVersion: row.formVersion,
        replaces: row.replaces || null, sentAt: new Date().toISOString(),
        overQuota: !!result.over_quota, endedAt: row.paradata && row.paradata.ended_at,
      });
      return;
    }
    row.status = 'problem';
    row.problem = { status: result.status, code: result.code || '', message: result.message || '', errors: result.errors || {} };
    await S.put('interviews', row);
  }

  async function due() {
    const now = Date.now();
    return (await S.all('interviews')).filter((r) => r.status === 'queued' && !(r.nextAt > now));
  }

  async function later(rows) {
    let soonest = MAX_DELAY;
    for (const row of rows) {
      row.tries = (row.tries || 0) + 1;
      const wait = delay(row.tries);
      row.nextAt = Date.now() + wait;
      soonest = Math.min(soonest, wait);
      await S.put('interviews', row);
    }
    schedule(soonest);
  }

  function schedule(wait) {
    clearTimeout(timer);
    timer = setTimeout(() => { flush(); }, wait);
  }

  // Sends what is due. Returns {sent, failed, revoked}. One run at a time.
  function flush(options) {
    if (sending) return sending;
    sending = (async () => {
      const report = { sent: 0, kept: 0, offline: false, revoked: false };
      const token = await S.meta('token');
      if (!token) return report;
      if (options && options.now) {
        for (const row of await S.all('interviews')) {
          if (row.status === 'queued' && row.nextAt) { row.nextAt = 0; await S.put('interviews', row); }
        }
      }
      let rows = await due();
      while (rows.length) {
        const part = rows.slice(0, batch);
        let response, body;
        try {
          response = await fetch('/api/collect/sync/', {
            method: 'POST',
            headers: { 'Content-Type': 'application/json', Accept: 'application/json', Authorization: 'Bearer ' + token },
            body: JSON.stringify({ interviews: part.map(item) }),
          });
          body = await response.json();
        } catch (e) {
          report.offline = true;
          await later(rows);
          return report;
        }
        if (response.status === 401) {
          report.revoked = body && body.code === 'device_revoked';
          await S.setMeta('authProblem', body || {});
          return report;
        }
        if (response.status === 413 && batch > 1) { batch = Math.max(1, Math.floor(batch / 2)); continue; }
        if (!response.ok || !body || !Array.isArray(body.results)) { await later(rows); return report; }
        for (let i = 0; i < part.length; i++) {
          const result = body.results[i] || {};
          await settle(part[i], result);
          if (result.status === 'stored' || result.status === 'duplicate') report.sent++; else report.kept++;
        }
        rows = rows.slice(part.length);
      }
      return report;
    })().finally(() => { sending = null; });
    return sending;
  }

  window.TanysOutbox = { flush: flush, item: item, schedule: schedule };
})();
