// A request still on its way when a swap replaces the element that sent it (the person
// opened another page meanwhile) is aborted: htmx would still act on its late answer, and a
// filter form's answer pushed the list's address over the page opened after it.
// No inline script: the CSP allows only script-src 'self'.
(function () {
  "use strict";
  var inFlight = new Map(); // xhr -> the element that sent it

  document.addEventListener("htmx:beforeSend", function (evt) {
    inFlight.set(evt.detail.xhr, evt.detail.elt);
  });
  document.addEventListener("htmx:afterRequest", function (evt) {
    inFlight.delete(evt.detail.xhr);
  });
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var target = evt.detail.target;
    if (!target) { return; }
    inFlight.forEach(function (elt, xhr) {
      if (xhr !== evt.detail.xhr && elt !== evt.detail.elt && target.contains(elt)) {
        inFlight.delete(xhr);
        htmx.trigger(elt, "htmx:abort");
      }
    });
  });
})();
