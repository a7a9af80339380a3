// Live updates for the inbox and an open conversation: the server says which thread changed,
// the page fetches that part again (current state, never a delta), so nothing can roll back.
"use strict";
(function () {
  var parts = document.querySelectorAll("[data-live]");
  if (!parts.length || !window.EventSource) return;
  var off = document.getElementById("live-off");

  function refresh(part) {
    fetch(part.getAttribute("data-src"), { credentials: "same-origin", cache: "no-store" })
      .then(function (answer) { return answer.ok ? answer.text() : null; })
      .then(function (html) {
        if (html === null) return;
        part.innerHTML = html;
        if (part.getAttribute("data-live") === "thread") part.scrollTop = part.scrollHeight;
      });
  }

  function changed(thread) {
    parts.forEach(function (part) {
      var kind = part.getAttribute("data-live");
      if (kind === "list" || thread === "*" || part.getAttribute("data-thread") === thread) {
        refresh(part);
      }
    });
  }

  var source = new EventSource("/desk/live");
  source.addEventListener("thread", function (event) { changed(event.data); });
  source.addEventListener("reload", function () { changed("*"); });
  source.onopen = function () { if (off) off.hidden = true; };
  source.onerror = function () { if (off) off.hidden = false; };
  parts.forEach(function (part) {
    if (part.getAttribute("data-live") === "thread") part.scrollTop = part.scrollHeight;
  });
})();
