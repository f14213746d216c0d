// Freshness line: polls the recomputation state of the shown waves while one runs.
(function () {
  var box = document.getElementById("freshness");
  if (!box || !box.dataset.url) return;
  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, key) { return values[key]; }).replace("%%", "%");
  }
  function render(data) {
    var busy = false;
    data.waves.forEach(function (wave) {
      var line = box.querySelector('[data-wave="' + wave.wave + '"]');
      if (!line) return;
      var text = wave.as_of
        ? fill(box.dataset.textAsof, { wave: wave.wave, as_of: wave.as_of.slice(0, 16).replace("T", " "), n: wave.n_interviews })
        : fill(box.dataset.textNone, { wave: wave.wave });
      if (wave.running) {
        text += " " + fill(box.dataset.textRunning, { stage: wave.stage_label, progress: Math.round(wave.progress * 100) });
      } else if (wave.recomputing) {
        text += " " + box.dataset.textQueued;
      }
      busy = busy || wave.recomputing;
      line.textContent = text;
    });
    if (busy) setTimeout(poll, 3000);
  }
  function poll() {
    fetch(box.dataset.url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(render).catch(function () {});
  }
  if (box.querySelector(".recomputing")) setTimeout(poll, 3000);
})();
