// Behaviour of the rules admin's pages other than the editor (editor.js), in a file of its own
// so that the Content-Security-Policy allows no inline script.
(function () {
  "use strict";

  // Try it: picking another event type shows that type's fields at once.
  document.querySelectorAll("select[data-submit-on-change]").forEach((select) => {
    select.addEventListener("change", () => select.form.submit());
  });

  // Simulate: a simulation running as a job shows its progress, read from any web process.
  const box = document.getElementById("simulation-progress");
  if (!box || box.dataset.finished === "true") return;
  (function poll() {
    fetch(box.dataset.url, { credentials: "same-origin" })
      .then((r) => r.json())
      .then((s) => {
        box.querySelector(".rules-progress > div").style.width = (s.total ? (100 * s.done) / s.total : 0) + "%";
        document.getElementById("progress-text").textContent =
          s.error || (s.total ? `${s.done} of ${s.total} events` : `${s.status[0].toUpperCase()}${s.status.slice(1)}…`);
        if (s.finished && !s.error) location.reload();
        else if (!s.finished) setTimeout(poll, 1000);
      })
      .catch(() => setTimeout(poll, 3000));
  })();
})();
