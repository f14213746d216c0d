// Export job page: polls the job's status until it is done or failed.
(function () {
  var box = document.getElementById("export-job");
  if (!box) return;
  function show(id, visible) { document.getElementById(id).hidden = !visible; }
  function poll() {
    fetch(box.dataset.statusUrl, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (job) {
      var bar = document.getElementById("job-progress");
      bar.max = job.rows_total || 1;
      bar.value = job.status === "done" ? bar.max : job.rows_done;
      document.getElementById("job-status").textContent = job.status_label;
      document.getElementById("job-stage").textContent = job.stage_label;
      document.getElementById("job-rows").textContent = box.dataset.textRows
        .replace("%(done)s", job.rows_done).replace("%(total)s", job.rows_total === null ? "?" : job.rows_total);
      document.getElementById("job-error").textContent = job.error;
      show("job-error", !!job.error);
      show("job-download", job.status === "done");
      show("job-retry", job.status === "failed");
      if (job.status === "queued" || job.status === "running") setTimeout(poll, 1500);
    }).catch(function () { setTimeout(poll, 5000); });
  }
  poll();
})();
