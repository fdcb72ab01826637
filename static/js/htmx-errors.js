// When an htmx request fails (a 4xx/5xx the page does not swap, or no answer at all), say
// so in the flash area instead of silently doing nothing. 422 is not an error here: the
// form comes back with its messages and is swapped (see htmx-config in base.html).
// No inline script: the CSP allows only script-src 'self'.
(function () {
  "use strict";
  var MESSAGES = {
    400: "The request was not understood. Reload the page and try again.",
    403: "Your account may not do that.",
    404: "That is no longer there. Reload the page.",
    409: "That changed meanwhile. Reload the page and try again.",
    429: "Too many attempts. Wait a minute and try again."
  };
  var GENERIC = "Something went wrong on our side; nothing was changed. Please try again.";
  var OFFLINE = "The server could not be reached. Check your connection and try again.";
  var REFERENCE = "Reference";

  // The page carries them in the reader's language (base.html); these are the fallback.
  function said(name, fallback) {
    var box = document.getElementById("htmx-error-messages");
    var text = box && box.getAttribute("data-" + name);
    return text || fallback;
  }

  function show(text, category) {
    var box = document.getElementById("flashes");
    if (!box) { window.alert(text); return; }
    var p = document.createElement("p");
    p.className = "flash flash-" + (category || "error");
    p.setAttribute("role", "alert");
    p.setAttribute("data-htmx-error", "");
    p.textContent = text;
    box.replaceChildren(p);
    box.scrollIntoView({block: "nearest"});
  }

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var text = MESSAGES[xhr.status] ? said(xhr.status, MESSAGES[xhr.status]) : said("generic", GENERIC);
    var reference = xhr.getResponseHeader("X-Request-ID");
    if (xhr.status >= 500 && reference) {
      text += " (" + said("reference", REFERENCE) + ": " + reference + ")";
    }
    show(text);
  });
  document.addEventListener("htmx:sendError", function () { show(said("offline", OFFLINE)); });
})();
