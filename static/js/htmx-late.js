// Of two requests on their way at once, the one asked later wins, whichever answer comes
// back first (htmx acts on every answer, even for an element no longer on the page):
// - an answer whose swap replaces the element that sent a request still on its way, asked
//   earlier, aborts that request (a filter form's late answer pushed the list's address
//   over the movement the admin had opened meanwhile);
// - an answer that comes back while a request asked later, from inside what it would
//   replace, is on its way to replace the same part of the page (a link opened in the
//   list) is dropped: no swap, no address pushed. Aborting that later request instead
//   left the admin on the list after clicking a movement.
// No inline script: the CSP allows only script-src 'self'.
(function () {
  "use strict";
  var inFlight = new Map(); // xhr -> {elt, target, order}
  var asked = 0;

  document.addEventListener("htmx:beforeSend", function (evt) {
    inFlight.set(evt.detail.xhr, {
      elt: evt.detail.elt,
      target: evt.detail.target,
      order: ++asked,
    });
  });
  document.addEventListener("htmx:afterRequest", function (evt) {
    inFlight.delete(evt.detail.xhr);
  });
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var target = evt.detail.target;
    var mine = inFlight.get(evt.detail.xhr);
    if (!target || !mine) { return; }
    var earlier = [];
    var superseded = false;
    inFlight.forEach(function (other, xhr) {
      if (xhr === evt.detail.xhr || !target.contains(other.elt)) { return; }
      if (other.order > mine.order && other.target && other.target.contains(target)) {
        superseded = true;
      } else if (other.elt !== evt.detail.elt) {
        earlier.push(xhr);
      }
    });
    if (superseded) {
      evt.detail.shouldSwap = false;
      return;
    }
    earlier.forEach(function (xhr) {
      var elt = inFlight.get(xhr).elt;
      inFlight.delete(xhr);
      htmx.trigger(elt, "htmx:abort");
    });
  });
})();
