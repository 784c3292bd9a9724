/* The home page's map: the sites as circles, each a link to its page. An extra over the list beside it:
   without Leaflet, without a tile URL or without network the map stays hidden and nothing else changes.
   Text goes into the popups as text (textContent), never as HTML, so a site's title cannot run script. */
(function () {
  "use strict";
  var box = document.getElementById("map");
  var data = document.getElementById("map-sites");
  if (!box || !data || typeof window.L === "undefined" || !box.dataset.tiles) { return; }
  var sites;
  try { sites = JSON.parse(data.textContent || "[]"); } catch (e) { return; }
  if (!sites.length) { return; }

  function popup(site) {
    var node = document.createElement("div");
    node.className = "map-popup";
    var link = document.createElement("a");
    link.href = site.url;
    link.textContent = site.title;
    node.appendChild(link);
    if (site.counts) {
      var line = document.createElement("div");
      line.textContent = site.counts;
      node.appendChild(line);
    }
    return node;
  }

  box.hidden = false;
  var map = window.L.map(box, { scrollWheelZoom: false });
  var layer = window.L.tileLayer(box.dataset.tiles, { attribution: box.dataset.attribution || "", maxZoom: 18 });
  var failed = 0;
  layer.on("tileerror", function () {
    failed += 1;
    if (failed >= 4) { box.hidden = true; } // no network to the tiles: the list below is the page
  });
  layer.addTo(map);
  var bounds = [];
  sites.forEach(function (site) {
    var colour = site.online ? "#1e6b35" : "#a4161a";
    window.L.circleMarker([site.lat, site.lon], { radius: 9, color: colour, weight: 2, fillOpacity: 0.5 })
      .bindPopup(popup(site)).addTo(map);
    bounds.push([site.lat, site.lon]);
  });
  if (bounds.length === 1) { map.setView(bounds[0], 12); } else { map.fitBounds(bounds, { padding: [30, 30], maxZoom: 12 }); }
}());
