// Live parts of console pages: an element with `data-live="/console/live/NAME"` is
// replaced by each fragment the server sends on that server-sent event stream. Without
// JavaScript (or EventSource) the page shows what it showed when loaded; reload for more.
"use strict";
(function () {
  if (!window.EventSource) { return; }
  document.querySelectorAll("[data-live]").forEach(function (element) {
    var id = element.id;
    var source = new EventSource(element.getAttribute("data-live"));
    source.addEventListener("fragment", function (event) {
      var template = document.createElement("template");
      template.innerHTML = event.data;
      var fresh = template.content.firstElementChild;
      var current = document.getElementById(id);
      if (fresh && current && fresh.id === id) { current.replaceWith(fresh); }
    });
    // The stream ends now and then (the server re-checks the session on reconnect);
    // EventSource reconnects by itself. A stream the server refuses is closed for good.
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) { source.close(); }
    });
  });
})();
