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
