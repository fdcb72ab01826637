// Tiny behaviours of the booking pages (CSP: script-src 'self', so no inline scripts).
// [data-print] prints the page; form[data-autosubmit] posts itself (the gateway hand-off);
// [data-copy-from] selects the named input's text (payment links) and copies it if allowed.
(function () {
  "use strict";
  function wire(root) {
    root.querySelectorAll("[data-print]").forEach(function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
    root.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
      if (!form.dataset.sent) { form.dataset.sent = "1"; form.submit(); }
    });
    root.querySelectorAll("[data-copy-from]").forEach(function (button) {
      button.addEventListener("click", function () {
        var input = document.getElementById(button.dataset.copyFrom);
        if (!input) { return; }
        input.select();
        if (navigator.clipboard) { navigator.clipboard.writeText(input.value).catch(function () {}); }
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { wire(document); });
  } else {
    wire(document);
  }
})();
