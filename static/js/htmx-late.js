// Requests on their way at once: the one asked later wins, whichever answer is back first;
// a swap nobody asked for (a poll) never replaces the sender of the person's own request;
// an answer whose target an earlier answer redrew goes where that id is now. Why, and the
// cases each rule came from: docs/web.md. beforeSwap fires on the target, and one a swap
// took off the page is heard only there, so each request's target is listened on too.
// No inline script: the CSP allows only script-src 'self'.
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
