// The dataset builder's preview: as the teacher changes the kits, quantities or days, each chart's data-series
// follows, and chart.js (when it is loaded) fetches and draws it again (LauksChart.load). Without this script the
// "Show the preview" button does the same through the server.
(function () {
  "use strict";
  var form = document.getElementById("builder");
  var box = document.getElementById("preview-charts");
  if (!form || !box) { return; }

  function values(name) {
    return Array.prototype.map.call(form.querySelectorAll("input[name='" + name + "']:checked"),
      function (input) { return input.value; });
  }
  function field(name) {
    var input = form.elements.namedItem(name);
    return input && "value" in input ? input.value : "";
  }
  function query(quantity) {
    var params = new URLSearchParams({site: form.dataset.site, kits: values("kits").join(","), q: quantity});
    if (values("window")[0] === "fixed") {
      params.set("start", field("start"));
      params.set("end", field("end"));
    } else {
      params.set("rolling_days", field("rolling_days"));
    }
    if (field("every") !== "raw") {
      params.set("every", field("every"));
      params.set("agg", field("agg"));
    }
    return "/w/series/preview?" + params.toString();
  }
  function redraw() {
    box.querySelectorAll(".chart[data-series]").forEach(function (chart) {
      var url = new URL(chart.dataset.series, location.href);
      var next = query(url.searchParams.get("q") || "");
      if (next !== chart.dataset.series) {
        chart.dataset.series = next;
        chart.dispatchEvent(new CustomEvent("lauks:series-changed", {bubbles: true, detail: {url: next}}));
        if (window.LauksChart && typeof window.LauksChart.load === "function") { window.LauksChart.load(chart); }
      }
    });
  }
  var timer = null;
  form.addEventListener("change", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(redraw, 300);
  });
}());
