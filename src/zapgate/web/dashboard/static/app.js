// zapgate dashboard: small progressive enhancements, no inline scripts (see the CSP).
(function () {
  "use strict";

  // Copy buttons: <button data-copy="#input" data-copied="Copied!">
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) return;
    var text = source.value || source.textContent || "";
    var done = function () {
      var label = button.textContent;
      button.textContent = button.getAttribute("data-copied") || "Copied";
      button.setAttribute("aria-live", "polite");
      setTimeout(function () { button.textContent = label; }, 2000);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { source.select(); });
    } else {
      source.select();
      try { document.execCommand("copy"); done(); } catch (e) { /* selected for the user */ }
    }
  });

  // Plain (non-htmx) forms that need a confirmation: <form data-confirm="...">
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.hasAttribute("hx-post")) return; // htmx asks with hx-confirm
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // Polling paused while the user is in the middle of something inside the polled part
  // (a message's reply/react menu is open): <div hx-trigger="every 2s" data-poll-pause="details[open]">
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (!elt || !elt.getAttribute) return;
    var pause = elt.getAttribute("data-poll-pause");
    var method = (event.detail.requestConfig && event.detail.requestConfig.verb) || "get";
    if (pause && method === "get" && elt.querySelector(pause)) event.preventDefault();
  });

  // Forms cleared after a successful htmx post: <form data-reset-on="event-name">
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (!form || !form.matches || !form.matches("form[data-reset-on]")) return;
    var wanted = form.getAttribute("data-reset-on");
    var header = event.detail.xhr && event.detail.xhr.getResponseHeader("HX-Trigger");
    if (event.detail.successful && header && header.indexOf(wanted) !== -1) {
      // Only the text: the numbers are usually typed once and reused.
      form.querySelectorAll("input[type=text], textarea").forEach(function (el) { el.value = ""; });
    }
  });
})();

// Times in the browser's own zone, its name shown: <time datetime="ISO" data-local="datetime|time|day">.
// The server rendered them in ZAPGATE_TIMEZONE (Brazil's for pt-BR when unset) for pages
// read without JavaScript.
(function () {
  "use strict";
  if (!window.Intl || !Intl.DateTimeFormat) return;
  var lang = document.documentElement.lang || undefined;
  var styles = {
    datetime: { day: "2-digit", month: "2-digit", year: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short" },
    time: { hour: "2-digit", minute: "2-digit", timeZoneName: "short" },
    date: { day: "2-digit", month: "2-digit", year: "2-digit" }
  };
  function sameDay(a, b) {
    return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
  }
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";

  function localize(root) {
    var nodes = (root || document).querySelectorAll("time[data-local]");
    nodes.forEach(function (node) {
      var when = new Date(node.getAttribute("datetime"));
      var style = node.getAttribute("data-local");
      // "day": a chat list's time, or its date when it is not today
      if (style === "day") style = sameDay(when, new Date()) ? "time" : "date";
      var options = styles[style];
      if (isNaN(when.getTime()) || !options) return;
      try {
        node.textContent = new Intl.DateTimeFormat(lang, options).format(when);
        if (zone) node.setAttribute("title", zone);
        node.setAttribute("data-zone", zone);
      } catch (e) { /* an unknown locale: keep the server's rendering */ }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { localize(document); });
  } else {
    localize(document);
  }
  // htmx swaps in fragments (messages, deliveries) rendered by the server.
  document.addEventListener("htmx:load", function (event) { localize(event.target); });
})();
