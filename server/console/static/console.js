// Copy buttons: <button data-copy="id-of-input">Copy</button>.
document.addEventListener("click", function (ev) {
  var b = ev.target.closest("button[data-copy]");
  if (!b) return;
  ev.preventDefault();
  var src = document.getElementById(b.getAttribute("data-copy"));
  if (!src) return;
  var done = function () { b.textContent = "Copied"; setTimeout(function () { b.textContent = "Copy"; }, 2000); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(src.value).then(done, function () { src.select(); });
  } else {
    src.select();
    try { document.execCommand("copy"); done(); } catch (e) {}
  }
});

// Live tail of the events page: while the box is ticked, ask the server
// for the events after the last one read (an HTML fragment of table
// rows, the next cursor in X-Events-Next) and append them.
(function () {
  var box = document.getElementById("live-tail");
  var rows = document.getElementById("event-rows");
  var status = document.getElementById("tail-status");
  if (!box || !rows) return;
  var after = box.getAttribute("data-after") || "";
  var timer = null, busy = false;
  var schedule = function (ms) { timer = setTimeout(poll, ms); };
  function poll() {
    timer = null;
    busy = true;
    var url = box.getAttribute("data-url") + "&after=" + encodeURIComponent(after);
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } }).then(function (r) {
      if (!r.ok) throw new Error("status " + r.status);
      var next = r.headers.get("X-Events-Next");
      var more = r.headers.get("X-Events-More") === "1";
      return r.text().then(function (html) {
        busy = false;
        if (!box.checked) return;
        if (next) after = next;
        if (html.trim() !== "") {
          var none = document.getElementById("no-events");
          if (none) none.remove();
          var gap = document.getElementById("tail-gap");
          if (gap) { gap.hidden = false; rows.appendChild(gap); gap.removeAttribute("id"); }
          rows.insertAdjacentHTML("beforeend", html);
        }
        status.textContent = "Live · checked " + new Date().toISOString().slice(11, 19) + " UTC";
        schedule(more ? 250 : 2000);
      });
    }).catch(function () {
      busy = false;
      box.checked = false;
      status.textContent = "Live tail stopped: reload the page to start again.";
    });
  }
  box.addEventListener("change", function () {
    if (box.checked) {
      status.textContent = "Live";
      if (!timer && !busy) poll();
    } else {
      if (timer) clearTimeout(timer);
      timer = null;
      status.textContent = "";
    }
  });
})();
