// Where focus goes after a swap the person caused (docs/web.md): on a new page, the first
// invalid field, the #fragment, an [autofocus] field, else the h1; after a partial swap that
// took the focused element away, the same id, the first invalid field, the region's first
// heading, else the region. Polls, "load" parts and server events never move focus.
// No inline script: the CSP allows only script-src 'self'.
(function () {
  "use strict";
  var done = new WeakSet(); // requests already handled: afterSettle fires once per new element

  function focus(elt) {
    if (!elt) { return false; }
    // Not focusable by nature (a heading, a section, a row): reachable by script only.
    if (elt.tabIndex < 0 && !elt.hasAttribute("tabindex")) { elt.setAttribute("tabindex", "-1"); }
    elt.focus();
    return document.activeElement === elt;
  }

  function fragment(anchor) {
    try { return anchor ? document.getElementById(decodeURIComponent(anchor)) : null; }
    catch (e) { return null; } // a malformed %-escape names nothing
  }

  // What the swap filled: the target itself, or what replaced it (outerHTML), which here
  // always comes back under the same id (a row, a card, #summary).
  function swapped(target) {
    if (!target) { return null; }
    return target.isConnected ? target : (target.id && document.getElementById(target.id));
  }

  function newPage(invalid, anchor) {
    focus(invalid) || focus(fragment(anchor)) || focus(document.querySelector("main [autofocus]")) ||
      focus(document.querySelector("main h1") || document.querySelector("h1")) ||
      focus(document.getElementById("main"));
  }

  document.addEventListener("htmx:afterSettle", function (evt) {
    var detail = evt.detail;
    if (!detail.xhr || done.has(detail.xhr)) { return; }
    done.add(detail.xhr);
    var cause = detail.requestConfig && detail.requestConfig.triggeringEvent;
    if (!cause || !cause.isTrusted) { return; } // not the person's doing: leave focus alone
    var region = swapped(detail.target) || document.getElementById("main");
    var invalid = detail.xhr.status === 422 ? region.querySelector('[aria-invalid="true"]') : null;
    if (detail.boosted && detail.target === document.body) {
      newPage(invalid, (detail.pathInfo && detail.pathInfo.anchor) || location.hash.slice(1));
      return;
    }
    var now = document.activeElement;
    if (now && now !== document.body) { return; } // kept (same id), autofocus, or moved on
    focus(invalid) || focus(region.querySelector("h1, h2, h3, h4, h5, h6")) || focus(region);
  });

  // Back/Forward: htmx puts the page back from its history cache (or fetches it).
  document.addEventListener("htmx:historyRestore", function () {
    newPage(null, location.hash.slice(1));
  });
})();
