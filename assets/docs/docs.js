// Starts Swagger UI on this server's own OpenAPI document. A separate file,
// not an inline script, so the page's Content-Security-Policy can allow
// scripts from this origin only.
"use strict";

// Tags are the vendors' groups ("Lance ICPs", "Lance lead lists", ...):
// sorted so that each vendor's groups sit together, the three vendors
// first, Clientele's own routes and the operational ones after them.
const VENDORS = ["Lance", "ClientSuccess", "Ocamba Hood", "Clientele", "Operations"];

function vendorRank(tag) {
  const rank = VENDORS.findIndex((vendor) => tag.startsWith(vendor));
  return rank < 0 ? VENDORS.length : rank;
}

window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    // The default sends the document's URL to validator.swagger.io: an
    // external request, and the document is checked in CI anyway.
    validatorUrl: null,
    // Links to an operation (#/Lance%20ICPs/update_icp) open it.
    deepLinking: true,
    // Every group open, each operation one line until clicked.
    docExpansion: "list",
    // A box that narrows the groups by tag.
    filter: true,
    tagsSorter: (a, b) => vendorRank(a) - vendorRank(b) || a.localeCompare(b),
    displayRequestDuration: true,
    showExtensions: true,
    showCommonExtensions: true,
    // The schemas are shown with each operation; the long list of every
    // component at the bottom only repeats them.
    defaultModelsExpandDepth: -1,
    // Examples in the shapes' own JSON rather than as a schema tree first.
    defaultModelRendering: "example",
    // A key typed into Authorize is kept only for this tab's life.
    persistAuthorization: false,
  });
});
