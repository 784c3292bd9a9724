/* The kit page's live readings: an EventSource on /w/live/kit/<site>/<kit> (web/live.py) updates the latest
   values (with a brief highlight) and appends to the 24 h charts. EventSource reconnects by itself when the
   server ends a stream, resuming after the last reading it got (Last-Event-ID). */
(function () {
  "use strict";
  var latest = document.getElementById("latest");
  if (!latest || typeof EventSource !== "function") { return; }
  var locale = latest.getAttribute("data-locale") || document.documentElement.lang || "en";
  var formats = {};

  function format(decimals) {
    if (!formats[decimals]) {
      formats[decimals] = new Intl.NumberFormat(locale, { minimumFractionDigits: 0, maximumFractionDigits: decimals,
        useGrouping: false });
    }
    return formats[decimals];
  }

  function showValue(quantity, value) {
    var item = latest.querySelector ? latest.querySelector('li[data-quantity="' + quantity + '"]') : null;
    if (!item) {
      if (latest.tagName !== "UL" && !latest.hasAttribute("data-reloading")) {  // the first reading ever
        latest.setAttribute("data-reloading", "true");
        window.location.reload();
      }
      return;
    }
    var reading = item.querySelector(".reading"), unit = item.getAttribute("data-unit") || "";
    var decimals = parseInt(item.getAttribute("data-decimals") || "2", 10);
    reading.textContent = format(decimals).format(value) + (unit ? "\u00a0" + unit : "");
    reading.classList.remove("stale-value");
    var age = item.querySelector(".age");
    if (age) { age.remove(); }
    item.classList.add("fresh");
    item.setAttribute("data-updated", String(Date.now()));
    window.setTimeout(function () { item.classList.remove("fresh"); }, 1500);
  }

  function appendToCharts(t, values) {
    if (!window.LauksChart) { return; }
    var charts = document.querySelectorAll(".chart[data-live-chart]");
    Array.prototype.forEach.call(charts, function (el) {
      var q = el.getAttribute("data-live-chart");
      if (Object.prototype.hasOwnProperty.call(values, q)) { window.LauksChart.append(el, t, values[q]); }
    });
  }

  var url = latest.getAttribute("data-live");
  var since = latest.getAttribute("data-since");
  var source = new EventSource(url + (since ? "?since=" + encodeURIComponent(since) : ""));
  var note = document.getElementById("live-note");
  source.addEventListener("open", function () { if (note) { note.hidden = false; } });
  source.addEventListener("reading", function (e) {
    var data;
    try { data = JSON.parse(e.data); } catch (err) { return; }
    Object.keys(data.values).forEach(function (q) { showValue(q, data.values[q]); });
    appendToCharts(data.t, data.values);
    document.body.setAttribute("data-live-last", String(data.t));
  });
  window.addEventListener("pagehide", function () { source.close(); });
})();
