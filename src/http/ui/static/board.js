// Keeps the board current without a reload: asks every few seconds for the
// board's table with the ETag it has; the server answers 304 until a channel
// changes (or a minute passes, for the "how long" figures). Reading works
// without this script; it only spares the reload.
(function () {
  var table = document.getElementById("board");
  var status = document.getElementById("live");
  if (!table || !window.fetch) { return; }
  var etag = table.getAttribute("data-etag");
  var url = table.getAttribute("data-live");
  function tick() {
    fetch(url, { headers: etag ? { "If-None-Match": etag } : {}, credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 200) {
          etag = r.headers.get("ETag");
          return r.text().then(function (html) {
            table.innerHTML = html;
            table.setAttribute("data-etag", etag || "");
            if (status) { status.textContent = "Updated " + new Date().toLocaleTimeString(); }
          });
        }
      })
      .catch(function () { if (status) { status.textContent = "Live updates paused: server unreachable"; } })
      .then(function () { setTimeout(tick, 2000); });
  }
  setTimeout(tick, 2000);
})();
