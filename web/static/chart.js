/* The one chart script of every Lauks page: each `.chart[data-series]` gets its series JSON (web/series.py) and is
   drawn with uPlot, as wide as its box, times in the school's zone (data-zone), numbers in the page's language
   (data-locale: a decimal comma in lv, lt and ru). A null value is a gap, never a line across it (spanGaps off).
   Without uPlot (the library not installed) a small table of the newest values is shown instead, so the page
   still says something. window.LauksChart.append(el, t, value[, label]) adds a live reading (web/static/kit.js). */
(function () {
  "use strict";

  var COLOURS = ["#0b5394", "#a4161a", "#1e6b35", "#8a4b00", "#6a1b9a", "#00695c", "#37474f", "#c2185b"];
  var states = new Map();

  function numberFormat(locale, decimals) {
    var digits = Math.max(0, Math.min(6, decimals));
    try {
      return new Intl.NumberFormat(locale, { maximumFractionDigits: digits, useGrouping: false });
    } catch (e) {
      return new Intl.NumberFormat("en", { maximumFractionDigits: digits, useGrouping: false });
    }
  }

  function dateFormat(locale, zone, options) {
    var all = Object.assign({ timeZone: zone || undefined }, options);
    try {
      return new Intl.DateTimeFormat(locale, all);
    } catch (e) {
      delete all.timeZone;
      return new Intl.DateTimeFormat(locale, all);
    }
  }

  function decimalsOf(json) {
    var most = 0;
    json.series.forEach(function (s) {
      s.values.forEach(function (v) {
        if (v !== null && isFinite(v)) {
          var text = String(v), dot = text.indexOf(".");
          if (dot >= 0) { most = Math.max(most, text.length - dot - 1); }
        }
      });
    });
    return Math.min(most, 3);
  }

  function withWidth(url, width) {
    return url + (url.indexOf("?") >= 0 ? "&" : "?") + "width=" + Math.max(100, Math.round(width || 800));
  }

  function heightOf(el) {
    var wanted = parseInt(el.getAttribute("data-height") || "", 10);
    return wanted > 0 ? wanted : 240;
  }

  function emptyText(el) {
    return el.getAttribute("data-empty") || "–";
  }

  function say(el, text) {
    var p = document.createElement("p");
    p.className = "muted chart-message";
    p.textContent = text;
    el.appendChild(p);
  }

  function hasValues(data) {
    for (var i = 1; i < data.length; i++) {
      for (var j = 0; j < data[i].length; j++) { if (data[i][j] != null) { return true; } }
    }
    return false;
  }

  /* Without uPlot: the newest values as a table (time, then one column per series). */
  function table(el, state) {
    var data = state.data, json = state.json, rows = [];
    for (var i = data[0].length - 1; i >= 0 && rows.length < 12; i--) {
      var any = false;
      for (var k = 1; k < data.length; k++) { if (data[k][i] != null) { any = true; } }
      if (any) { rows.push(i); }
    }
    el.textContent = "";
    if (!rows.length) { say(el, emptyText(el)); return; }
    var t = document.createElement("table"), head = t.createTHead().insertRow();
    var th = document.createElement("th");
    th.scope = "col";
    th.textContent = el.getAttribute("data-time-label") || "";
    head.appendChild(th);
    json.series.forEach(function (s) {
      var c = document.createElement("th");
      c.scope = "col";
      c.textContent = s.label + (json.unit ? " (" + json.unit + ")" : "");
      head.appendChild(c);
    });
    var body = t.createTBody();
    rows.forEach(function (i) {
      var r = body.insertRow();
      r.insertCell().textContent = state.when.format(new Date(data[0][i] * 1000));
      for (var k = 1; k < data.length; k++) {
        var cell = r.insertCell();
        cell.className = "num";
        cell.textContent = data[k][i] == null ? "–" : state.nf.format(data[k][i]);
      }
    });
    var wrap = document.createElement("div");
    wrap.className = "table-wrap";
    wrap.appendChild(t);
    el.appendChild(wrap);
  }

  function options(el, state) {
    var json = state.json, unit = json.unit || "", locale = state.locale, zone = state.zone;
    var hours = dateFormat(locale, zone, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    var days = dateFormat(locale, zone, { day: "numeric", month: "short" });
    var months = dateFormat(locale, zone, { month: "short", year: "numeric" });
    var series = [{ value: function (u, ts) { return ts == null ? "–" : state.when.format(new Date(ts * 1000)); } }];
    json.series.forEach(function (s, i) {
      series.push({
        label: s.label,
        stroke: COLOURS[i % COLOURS.length],
        width: 2,
        spanGaps: false,
        points: { show: s.values.filter(function (v) { return v !== null; }).length < 60 },
        value: function (u, v) { return v == null ? "–" : state.nf.format(v) + (unit ? " " + unit : ""); }
      });
    });
    return {
      width: Math.max(100, el.clientWidth || 300),
      height: heightOf(el),
      tzDate: function (ts) { return zone ? uPlot.tzDate(new Date(ts * 1000), zone) : new Date(ts * 1000); },
      legend: { show: json.series.length > 1 || el.hasAttribute("data-legend") },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      series: series,
      axes: [
        {
          values: function (u, splits, axis, space, incr) {
            var f = incr >= 28 * 86400 ? months : incr >= 86400 ? days : hours;
            return splits.map(function (s) { return f.format(new Date(s * 1000)); });
          }
        },
        {
          size: 56,
          values: function (u, splits) { return splits.map(function (v) { return state.nf.format(v); }); }
        }
      ]
    };
  }

  /* One empty bucket between two readings is a reading that fell just over a bucket's edge, not a silence: uPlot
     draws across an undefined value and breaks only at a null, so a lone null becomes undefined. Two or more
     empty buckets in a row stay a gap. */
  function spanLoneBuckets(values) {
    for (var i = 1; i < values.length - 1; i++) {
      if (values[i] === null && values[i - 1] !== null && values[i - 1] !== undefined && values[i + 1] !== null) {
        values[i] = undefined;
      }
    }
    return values;
  }

  function draw(el, json) {
    var old = states.get(el);
    if (old && old.plot) { old.plot.destroy(); }
    var locale = el.getAttribute("data-locale") || document.documentElement.lang || "en";
    var zone = el.getAttribute("data-zone") || "";
    var data = [json.t.slice()];
    json.series.forEach(function (s) { data.push(spanLoneBuckets(s.values.slice())); });
    var state = {
      el: el, json: json, data: data, locale: locale, zone: zone, plot: null,
      nf: numberFormat(locale, decimalsOf(json)),
      when: dateFormat(locale, zone, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
                                       hourCycle: "h23" })
    };
    states.set(el, state);
    el.textContent = "";
    el.setAttribute("data-points", String(json.t.length));
    if (typeof window.uPlot !== "function") { table(el, state); el.setAttribute("data-drawn", "table"); return; }
    if (!hasValues(data)) { say(el, emptyText(el)); }
    state.plot = new uPlot(options(el, state), data, el);
    el.setAttribute("data-drawn", "uplot");
  }

  function load(el) {
    var url = withWidth(el.getAttribute("data-series"), el.clientWidth);
    el.setAttribute("aria-busy", "true");
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) { throw new Error(body && body.message ? body.message : "HTTP " + r.status); }
          return body;
        });
      })
      .then(function (json) { draw(el, json); })
      .catch(function (error) {
        el.textContent = "";
        say(el, el.getAttribute("data-failed") || String(error.message || error));
        el.setAttribute("data-drawn", "failed");
      })
      .then(function () { el.removeAttribute("aria-busy"); });
  }

  /* A live reading: appended if it is newer than the chart's last point; a silence longer than three buckets gets
     a null first, so the line breaks there as it would on reload; points older than the window drop off. */
  function append(el, t, value, label) {
    var state = states.get(el);
    if (!state || value === null || value === undefined) { return false; }
    var data = state.data, times = data[0], last = times.length ? times[times.length - 1] : null;
    if (last !== null && t <= last) { return false; }
    var column = 1;
    if (label) {
      state.json.series.forEach(function (s, i) { if (s.label === label) { column = i + 1; } });
    }
    var every = state.json.every_s || 60;
    if (last !== null && t - last > 3 * every) {
      times.push(last + every);
      for (var k = 1; k < data.length; k++) { data[k].push(null); }
    }
    times.push(t);
    for (var j = 1; j < data.length; j++) { data[j].push(j === column ? value : null); }
    var span = (state.json.end || t) - (state.json.start || t);
    while (span > 0 && times.length > 1 && times[0] < t - span) {
      times.shift();
      for (var m = 1; m < data.length; m++) { data[m].shift(); }
    }
    el.setAttribute("data-points", String(times.length));
    if (state.plot) {
      var message = el.querySelector(".chart-message");
      if (message) { message.remove(); }
      state.plot.setData(data);
    } else {
      table(el, state);
    }
    return true;
  }

  function start() {
    var els = document.querySelectorAll(".chart[data-series]");
    var resize = typeof ResizeObserver === "function" ? new ResizeObserver(function (entries) {
      entries.forEach(function (entry) {
        var state = states.get(entry.target);
        if (state && state.plot) {
          state.plot.setSize({ width: Math.max(100, entry.target.clientWidth), height: heightOf(entry.target) });
        }
      });
    }) : null;
    Array.prototype.forEach.call(els, function (el) {
      load(el);
      if (resize) { resize.observe(el); }
    });
  }

  window.LauksChart = { append: append, load: load, draw: draw, state: function (el) { return states.get(el); } };
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
