/* Starts Swagger UI on /docs from this server's own files (api/docs_assets.py). A file, not an inline script:
   the Content-Security-Policy allows scripts only from this server. */
(function () {
  "use strict";
  var box = document.getElementById("swagger-ui");
  if (!box || typeof SwaggerUIBundle === "undefined") { return; }
  window.ui = SwaggerUIBundle({
    url: box.getAttribute("data-openapi"),
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null,  /* the default would fetch a badge from validator.swagger.io */
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset]
  });
}());
