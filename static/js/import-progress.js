// Keeps an import's progress bar current without reloading; reloads the
// page once the job has finished so the result (or error list) shows.
(function () {
  var job = document.getElementById("job");
  if (!job) return;
  var url = job.getAttribute("data-status-url");
  var bar = document.getElementById("progress");
  var pct = document.getElementById("percent");
  var lines = document.getElementById("lines");
  function tick() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (!s) { setTimeout(tick, 2000); return; }
        bar.value = s.percent;
        bar.textContent = s.percent + "%";
        pct.textContent = s.percent;
        lines.textContent = s.lines;
        if (s.done) { window.location.reload(); } else { setTimeout(tick, 500); }
      })
      .catch(function () { setTimeout(tick, 2000); });
  }
  setTimeout(tick, 300);
})();
