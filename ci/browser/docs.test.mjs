// /docs in a real browser: Debian's Chromium, headless, driven by
// playwright-core (Playwright's own browser download is not reachable from
// CI). Run by ci/browser-test.sh, which starts the server, creates the key
// and the ICP, and passes them in:
//
//   BASE_URL=http://127.0.0.1:PORT TOKEN=clt_... ICP_ID=<uuid> \
//   OUT_DIR=target/browser node ci/browser/docs.test.mjs
//
// Fails (exit 1, with the reason) on any request to another host, any
// console error or page error, a missing vendor group, or a PATCH tried
// from the page that does not show 200 and the updated ICP. Screenshots
// go to OUT_DIR, also on failure, to see what the page showed.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const BASE_URL = required("BASE_URL");
const TOKEN = required("TOKEN");
const ICP_ID = required("ICP_ID");
const OUT_DIR = process.env.OUT_DIR || "target/browser";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const USER_DATA_DIR = required("USER_DATA_DIR");
// Generous: a debug build on a busy 2-core machine parses a 2 MB bundle.
const TIMEOUT_MS = Number(process.env.BROWSER_TIMEOUT_MS || 60000);

const VENDOR_GROUPS = ["Lance ICPs", "ClientSuccess clients", "Ocamba Hood profiles"];
const PATCH_PATH = "/api/v1/entities/icps/{id}";
const PATCH_BODY = JSON.stringify(
  {
    name: "Updated ICP Name",
    leadsPerList: 50,
    customFilterCriteria: [{ type: "maxPeoplePerCompany", value: 5 }],
  },
  null,
  2,
);

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`docs.test.mjs: ${name} is not set (see the comment at the top)`);
    process.exit(2);
  }
  return value;
}

function step(text) {
  console.log(`-- ${text}`);
}

mkdirSync(OUT_DIR, { recursive: true });
const origin = new URL(BASE_URL).origin;
const problems = [];
const requests = [];

// The flags keep Chromium's own background connections (updates, sync,
// field trials, QUIC probes) from starting: on a closed network they fail
// and would be reported as errors that the page did not cause.
const context = await chromium.launchPersistentContext(USER_DATA_DIR, {
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  viewport: { width: 1400, height: 1000 },
});
context.setDefaultTimeout(TIMEOUT_MS);

// Every request the page makes, whatever its kind (document, script,
// fetch, image, font), must go to the server under test.
context.on("request", (request) => {
  const url = request.url();
  requests.push(`${request.method()} ${url}`);
  if (url.startsWith("data:")) return;
  if (new URL(url).origin !== origin) {
    problems.push(`external request: ${request.method()} ${url}`);
  }
});
context.on("requestfailed", (request) => {
  problems.push(`request failed: ${request.method()} ${request.url()} (${request.failure()?.errorText})`);
});

const page = context.pages()[0] ?? (await context.newPage());
page.on("console", (message) => {
  if (message.type() === "error") {
    problems.push(`console error: ${message.text()}`);
  }
});
page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));

function failIfProblems(where) {
  if (problems.length > 0) {
    // Reported once, here; the final check sees only later ones.
    const found = problems.splice(0);
    throw new Error(`${where}:\n  ${found.join("\n  ")}`);
  }
}

let failed = false;
try {
  step("the index links to /docs");
  await page.goto(`${origin}/`);
  await page.locator('a[href="/docs"]').first().click();
  await page.waitForURL(`${origin}/docs`);

  step("the page loads and shows the three vendor groups");
  for (const group of VENDOR_GROUPS) {
    await page.locator(`h3.opblock-tag[data-tag="${group}"]`).waitFor({ state: "visible" });
    console.log(`   group visible: ${group}`);
  }
  // Everything Swagger UI fetches at start (the document included) is done.
  await page.waitForLoadState("networkidle");
  failIfProblems("while loading /docs");

  step("authorize with the test's key through the Authorize dialog");
  await page.locator(".auth-wrapper button.authorize").click();
  const dialog = page.locator(".dialog-ux .modal-ux");
  await dialog.waitFor({ state: "visible" });
  await dialog.locator('input[aria-label="auth-bearer-value"]').fill(TOKEN);
  await dialog.locator("button.modal-btn.auth.authorize").click();
  // Once authorized, the dialog offers Logout instead of Authorize.
  await dialog.locator("button.modal-btn.auth", { hasText: "Logout" }).waitFor({ state: "visible" });
  await dialog.locator("button.btn-done").click();
  await dialog.waitFor({ state: "detached" });

  step(`PATCH ${PATCH_PATH}: Try it out, fill the id and the body, Execute`);
  const operation = page.locator(".opblock-patch", {
    has: page.locator(`.opblock-summary-path[data-path="${PATCH_PATH}"]`),
  });
  await operation.locator(".opblock-summary").first().click();
  await operation.locator("button.try-out__btn").click();
  await operation.locator('tr[data-param-name="id"] input').fill(ICP_ID);
  await operation.locator("textarea.body-param__text").fill(PATCH_BODY);
  await operation.locator("button.execute").click();

  step("the page shows the answer: 200 and the updated ICP");
  const live = operation.locator(".live-responses-table .response").first();
  await live.waitFor({ state: "visible" });
  await operation
    .locator(".live-responses-table .response-col_status", { hasText: /^\s*200\s*$/ })
    .first()
    .waitFor({ state: "visible" });
  // The table's header cell has the same class: take the cell with the body.
  const shown = operation
    .locator(".live-responses-table .response-col_description")
    .filter({ hasText: "Updated ICP Name" })
    .first();
  await shown.waitFor({ state: "visible" });
  const text = await shown.innerText();
  for (const expected of ['"leadsPerList": 50', '"maxPeoplePerCompany"', ICP_ID]) {
    if (!text.includes(expected)) {
      throw new Error(`the response shown lacks ${expected}:\n${text}`);
    }
  }
  // The request went with the key: Swagger UI prints its curl line.
  const curl = await operation.locator(".curl-command").innerText();
  if (!curl.includes(`Bearer ${TOKEN}`)) {
    throw new Error(`the request was not sent with the key:\n${curl}`);
  }
  console.log("   shown: 200, name \"Updated ICP Name\", leadsPerList 50");
  await live.screenshot({ path: join(OUT_DIR, "docs-response.png") });
  failIfProblems("after the PATCH");
} catch (error) {
  failed = true;
  console.error(`FAILED: ${error.message}`);
} finally {
  // Kept on failure too: the page as the test left it.
  await page.screenshot({ path: join(OUT_DIR, "docs.png"), fullPage: true }).catch((error) => {
    console.error(`no screenshot: ${error.message}`);
  });
  await context.close();
}

console.log(`requests made by the page (${requests.length}; only ${origin} is allowed):`);
for (const request of requests) console.log(`   ${request}`);
console.log(`screenshots: ${join(OUT_DIR, "docs.png")}, ${join(OUT_DIR, "docs-response.png")}`);
if (failed || problems.length > 0) {
  if (problems.length > 0) console.error(`FAILED:\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
console.log("docs page: OK");
