// The portal's own scripts for every page, in one file (one request on a first visit;
// docs/mobile.md): what a failed request says, requests on their way at once, and focus
// after a swap. Each part is its own function, as it was its own file. No inline script:
// the CSP allows only script-src 'self'.

// --- failed requests ---------------------------------------------------------------
// When an htmx request fails (a 4xx/5xx the page does not swap, or no answer at all), say
// so in the flash area instead of silently doing nothing. 422 is not an error here: the
// form comes back with its messages and is swapped (see htmx-config in base.html); nor is
// another 4xx that the server marks as the form with its messages (X-Swap-Form: the coupon
// form past its limit, 429), swapped as a 422 is. The 429 words promise no particular
// wait: the limits' windows differ (an hour for coupon codes).
(function () {
  "use strict";
  var MESSAGES = {
    400: "The request was not understood. Reload the page and try again.",
    403: "Your account may not do that.",
    404: "That is no longer there. Reload the page.",
    409: "That changed meanwhile. Reload the page and try again.",
    413: "That was too large to send; nothing was changed. Shorten what you typed and try again.",
    429: "Too many attempts. Please wait a while and try again."
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

  // Heard first (capture), before the rules for requests at once below decide whether
  // this answer may still be swapped.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (xhr.status >= 400 && xhr.getResponseHeader("X-Swap-Form") === "true") {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  }, true);
})();

// --- requests on their way at once -------------------------------------------------
// Requests on their way at once: the one asked later wins, whichever answer is back first;
// a swap nobody asked for (a poll) never replaces the sender of the person's own request;
// an answer whose target an earlier answer redrew goes where that id is now. Why, and the
// cases each rule came from: docs/web.md. beforeSwap fires on the target, and one a swap
// took off the page is heard only there, so each request's target is listened on too.
(function () {
  "use strict";
  var inFlight = new Map(); // xhr -> {elt, target, order, person, replacedBy}
  var asked = 0;
  var watched = new WeakSet();

  document.addEventListener("htmx:beforeSend", function (evt) {
    var target = evt.detail.target;
    if (target && !watched.has(target)) {
      watched.add(target);
      target.addEventListener("htmx:beforeSwap", beforeSwap);
    }
    var cause = evt.detail.requestConfig && evt.detail.requestConfig.triggeringEvent;
    inFlight.set(evt.detail.xhr, {
      elt: evt.detail.elt,
      target: evt.detail.target,
      order: ++asked,
      person: !!(cause && cause.isTrusted),
      replacedBy: 0, // the order of the request whose swap replaced this one's sender
    });
  });
  document.addEventListener("htmx:afterRequest", function (evt) {
    inFlight.delete(evt.detail.xhr);
  });

  // Where the answer of a request whose sender an earlier answer replaced goes now.
  function current(target) {
    if (!target || target.isConnected) { return target; }
    return target.id ? document.getElementById(target.id) : null;
  }

  document.addEventListener("htmx:beforeSwap", beforeSwap);

  function beforeSwap(evt) {
    var mine = inFlight.get(evt.detail.xhr);
    if (!mine || mine.decided || !evt.detail.target) { return; }
    mine.decided = true; // heard on the target, then on the document as it bubbles
    if (mine.replacedBy) {
      var now = mine.replacedBy < mine.order ? current(evt.detail.target) : null;
      if (!now) {
        evt.detail.shouldSwap = false;
        return;
      }
      evt.detail.target = now;
    }
    var target = evt.detail.target;
    var inside = [];
    var drop = false;
    inFlight.forEach(function (other, xhr) {
      if (xhr === evt.detail.xhr || !target.contains(other.elt)) { return; }
      var later = other.order > mine.order;
      if ((later && other.target && other.target.contains(target)) ||
          (!mine.person && other.person)) {
        drop = true;
      }
      inside.push(other);
    });
    if (drop) {
      evt.detail.shouldSwap = false;
      return;
    }
    inside.forEach(function (other) {
      other.replacedBy = Math.max(other.replacedBy, mine.order);
    });
  }
})();

// --- focus after a swap ------------------------------------------------------------
// Where focus goes after a swap the person caused (docs/web.md): on a new page, the first
// invalid field, the #fragment, an [autofocus] field, else the h1; after a partial swap that
// took the focused element away, the same id, the first invalid field, the region's first
// heading, else the region. Polls, "load" parts and server events never move focus.
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

// --- controls kept for Back ----------------------------------------------------------
// htmx's snapshot for Back is the page's HTML, and a control changed after the page loaded
// (a filter whose rows were swapped in below it) changed only its live value, not its
// markup: Back showed the filtered rows under a select saying "Any", and the next change
// silently dropped the filter. So before the snapshot each control's markup takes its value.
(function () {
  "use strict";
  document.addEventListener("htmx:beforeHistorySave", function (evt) {
    var root = (evt.detail && evt.detail.historyElt) || document.body;
    root.querySelectorAll("select option").forEach(function (option) {
      option.toggleAttribute("selected", option.selected);
    });
    root.querySelectorAll("input, textarea").forEach(function (control) {
      if (control.type === "password" || control.type === "file" || control.type === "hidden" ||
          control.classList.contains("menu-toggle")) { return; }
      if (control.type === "checkbox" || control.type === "radio") {
        control.toggleAttribute("checked", control.checked);
      } else if (control.tagName === "TEXTAREA") {
        control.textContent = control.value;
      } else {
        control.setAttribute("value", control.value);
      }
    });
  });
})();

// --- the admin's folded menus ------------------------------------------------------
// base.html folds the admin's less daily links into <details> menus. A details element
// opens and closes by itself; this only closes an open one when the person clicks
// elsewhere, opens another, or presses Escape (focus back on its summary), as a menu does.
(function () {
  "use strict";
  function openMenus() {
    return document.querySelectorAll("#main-nav details.nav-group[open]");
  }
  document.addEventListener("click", function (event) {
    openMenus().forEach(function (menu) {
      if (!menu.contains(event.target)) { menu.removeAttribute("open"); }
    });
  });
  // Back to a page whose snapshot was taken with a menu open (a filter's pushed URL while
  // it was open, or the boosted link clicked in it) shows the page, not the old menu. Not
  // closed before the snapshot: a filter's push would close a menu just opened.
  document.addEventListener("htmx:historyRestore", function () {
    openMenus().forEach(function (menu) { menu.removeAttribute("open"); });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    openMenus().forEach(function (menu) {
      var inside = menu.contains(document.activeElement);
      menu.removeAttribute("open");
      if (inside) { menu.querySelector("summary").focus(); }
    });
  });
})();
