// Behaviour of the rules admin's pages other than the editor (editor.js), in a file of its own
// so that the Content-Security-Policy allows no inline script. Loaded in the page's head, not
// deferred: a choice made while the page is still loading counts too.
(function () {
  "use strict";

  // Try it: picking another event type shows that type's fields at once.
  document.addEventListener("change", (event) => {
    if (event.target.matches("select[data-submit-on-change]")) event.target.form.submit();
  });

  // Simulate: a simulation running as a job shows its progress, read from any web process.
  function follow(box) {
    fetch(box.dataset.url, { credentials: "same-origin" })
      .then((r) => r.json())
      .then((s) => {
        box.querySelector(".rules-progress > div").style.width = (s.total ? (100 * s.done) / s.total : 0) + "%";
        document.getElementById("progress-text").textContent =
          s.error || (s.total ? `${s.done} of ${s.total} events` : `${s.status[0].toUpperCase()}${s.status.slice(1)}…`);
        if (s.finished && !s.error) location.reload();
        else if (!s.finished) setTimeout(() => follow(box), 1000);
      })
      .catch(() => setTimeout(() => follow(box), 3000));
  }
  document.addEventListener("DOMContentLoaded", () => {
    const box = document.getElementById("simulation-progress");
    if (box && box.dataset.finished !== "true") follow(box);
  });
})();
