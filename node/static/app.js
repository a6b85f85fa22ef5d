// Progressive enhancement only: pages marked data-live refresh themselves
// when the node has received or made changes (polling /api/v1/changes every
// few seconds); every page works without this script.
(function () {
  "use strict";
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
