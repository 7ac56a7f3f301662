// cascade console: the little the pages need beyond HTML. Loaded from
// the server itself (the Content-Security-Policy allows nothing else).
"use strict";
document.addEventListener("click", function (ev) {
  var b = ev.target.closest("[data-confirm]");
  if (b && !window.confirm(b.getAttribute("data-confirm"))) {
    ev.preventDefault();
  }
});
document.addEventListener("change", function (ev) {
  // Filters apply as soon as a select changes.
  if (ev.target.matches("form.filters select") && ev.target.form.id === "filters") {
    ev.target.form.submit();
  }
});
