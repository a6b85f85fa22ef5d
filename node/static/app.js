// Progressive enhancement only: pages marked data-live refresh themselves
// when the node has received or made changes (polling /api/v1/changes every
// few seconds); every page works without this script.
(function () {
  "use strict";
  // Buttons marked data-copy="ID" copy the text of the field ID (the field
  // itself stays selectable by hand without this script).
  document.addEventListener("click", function (e) {
    var b = e.target.closest ? e.target.closest("[data-copy]") : null;
    if (!b) return;
    var field = document.getElementById(b.dataset.copy);
    if (!field) return;
    field.select();
    if (navigator.clipboard) navigator.clipboard.writeText(field.value);
  });
  if (!document.body || document.body.dataset.live !== "1") return;
  var seen = null;
  var busy = false;
  function editing() {
    var a = document.activeElement;
    return a && (a.tagName === "INPUT" || a.tagName === "TEXTAREA" || a.tagName === "SELECT");
  }
  function poll() {
    if (busy || document.hidden) return;
    busy = true;
    fetch("/api/v1/changes", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (j) {
        busy = false;
        if (!j) return;
        if (seen !== null && j.seq !== seen && !editing()) { window.location.reload(); return; }
        seen = j.seq;
      })
      .catch(function () { busy = false; });
  }
  poll();
  window.setInterval(poll, 4000);
})();
