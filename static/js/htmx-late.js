// Requests on their way at once, and whose answer may still change the page. htmx acts on
// every answer, even one whose sender or target a swap has replaced meanwhile; here:
// - the request asked later wins, whichever answer comes back first:
//   - an answer whose sender was replaced by a later request's swap is dropped (no swap,
//     no address pushed): a filter form's late answer pushed the list's address over the
//     movement the admin had opened meanwhile;
//   - an answer that comes back while a later request, sent from inside what it would
//     replace, is on its way to replace the same part of the page is dropped: the list's
//     answer, arriving before the movement opened after it, left the admin on the list;
// - an answer whose target an earlier request's answer replaced goes to the element that
//   now has the target's id (Apply coupon's summary after Remove item redrew the visit);
// - a swap nobody asked for (a poll, a "load" part, an event the server sent) never
//   replaces the sender of the person's own request on its way: it is dropped (the
//   bell's refresh swallowed the person's click on "Notifications").
// htmx fires beforeSwap on the target: one a swap has taken off the page is heard only by
// a listener on it, so each request's target gets one (besides the document's).
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
