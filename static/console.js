// scepd RA console: copy buttons. Loaded from /static (CSP script-src
// 'self'); a button with data-copy copies that text to the clipboard.
document.addEventListener("click", function (ev) {
  var b = ev.target.closest("button[data-copy]");
  if (!b || !navigator.clipboard) return;
  navigator.clipboard.writeText(b.getAttribute("data-copy")).then(function () {
    b.textContent = "Copied";
  });
});
