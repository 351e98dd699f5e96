// End-to-end test of the dashboard in a real browser: Debian's Chromium, headless, driven by
// playwright-core, against the real control-plane binary on loopback (its embedded SQLite
// default, a data directory of its own) serving the built dashboard (dist/).
//
//   setup → create a flag with a rule → try a context → create an SDK key → evaluate at /ofrep
//   with it → start an edge relay (the real binary, on the QUIC feed, with an edge token made
//   through the API) and evaluate there → report impressions to the edge with a client key made
//   through the API and see them in the flag's Stream tab (live: one sent while it is open shows
//   up) and Analytics tab with the edge's evaluations, and the last evaluation on the flag list
//   → toggle the flag and see the change at /ofrep → schedule an edit for tomorrow from the
//   editor ("Apply at…") and one due in two seconds through the API, see the first upcoming and
//   the second applied, cancel the first → promote to production, where a toggle asks first → revoke the key (refused at /ofrep) → audit and fleet
//   screens → a viewer sees everything, insights included, and can change nothing (the UI hides
//   it, the server refuses it).
//
// Screenshots of the main screens go to e2e/artifacts/ (not committed), at 1280×800 and at a
// mobile width. Environment: CHECKGATE_CONTROL_BIN (default ../target/debug/checkgate-control),
// CHECKGATE_EDGE_BIN (default ../target/debug/checkgate-edge), CHROMIUM (default /usr/bin/chromium). Every wait is bounded, and every wait is for a condition
// (an element, an answer), never a fixed sleep.

import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const bin = resolve(process.env.CHECKGATE_CONTROL_BIN ?? join(here, "../../target/debug/checkgate-control"));
const edgeBin = resolve(process.env.CHECKGATE_EDGE_BIN ?? join(here, "../../target/debug/checkgate-edge"));
const browserPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const artifacts = join(here, "artifacts");
const WAIT = 15_000;

const admin = { name: "Ada Admin", email: "ada@example.com", password: "correct horse battery" };
const viewer = { name: "Vic Viewer", email: "vic@example.com", password: "viewer password 1" };

let step = "start";
function check(cond, what) {
  if (!cond) throw new Error(`${step}: ${what}`);
}

/**
 * Starts a binary and resolves once its log has printed every pattern: with the first capture
 * group of each, the child and its log. The log stays readable for a failure's message.
 */
function startService(what, path, env, patterns) {
  const child = spawn(path, [], {
    env: { ...process.env, LOG_FORMAT: "text", RUST_LOG: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log = [];
  return new Promise((resolveFound, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start:\n${log.join("")}`)), 60_000);
    const read = (chunk) => {
      log.push(chunk.toString());
      const text = log.join("");
      const found = patterns.map((p) => p.exec(text)?.[1]);
      if (found.every((f) => f !== undefined)) {
        clearTimeout(timer);
        resolveFound({ found, child, log });
      }
    };
    child.stdout.on("data", read);
    child.stderr.on("data", read);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}):\n${log.join("")}`));
    });
  });
}

/**
 * Starts the control plane on free loopback ports (its API and its QUIC change feed); resolves
 * with its base URL, the feed's address and the certificate fingerprint edges pin.
 */
async function startControl(dataDir) {
  const { found, child, log } = await startService(
    "control plane",
    bin,
    {
      PORT: "0",
      HOST: "127.0.0.1",
      COOKIE_SECURE: "false",
      FEED_PORT: "0",
      CHECKGATE_DATA_DIR: dataDir,
      PUBLIC_DIR: join(here, "../dist"),
    },
    [/listening addr=(127\.0\.0\.1:\d+) listener=public/, /listening addr=(127\.0\.0\.1:\d+) listener=feed/, /listener=feed fingerprint=([0-9A-Fa-f:]+)/],
  );
  return { url: `http://${found[0]}`, feed: found[1], fingerprint: found[2], child, log };
}

/** Starts an edge relay following the control plane's feed; resolves with its base URL. */
async function startEdge(feed, fingerprint, token, dataDir) {
  const { found, child, log } = await startService(
    "edge relay",
    edgeBin,
    { PORT: "0", HOST: "127.0.0.1", FEED_ADDR: feed, FEED_FINGERPRINT: fingerprint, EDGE_TOKEN: token, EDGE_NAME: "e2e-edge", CHECKGATE_DATA_DIR: dataDir },
    [/listening addr=(127\.0\.0\.1:\d+) listener=public/],
  );
  return { url: `http://${found[0]}`, child, log };
}

/** Retries `probe` until it returns a truthy value, for at most `ms`. */
async function eventually(what, probe, ms = WAIT) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await probe();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${step}: ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

async function ofrep(base, key, context) {
  const r = await fetch(`${base}/ofrep/v1/evaluate/flags/new-checkout`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify({ context }),
  });
  return { status: r.status, body: await r.json().catch(() => null) };
}

/** A call to the REST API from the page: its session cookie, and the CSRF header of writes. */
async function inPage(page, method, path, body) {
  return page.evaluate(
    async ({ method, path, body }) => {
      const headers = { Accept: "application/json", "X-Checkgate-Request": "1" };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: r.status, body: await r.json().catch(() => null) };
    },
    { method, path, body },
  );
}

/** Reports impressions to the control plane as an SDK does; resolves with the status. */
async function report(base, env, key, items) {
  const r = await fetch(`${base}/api/environments/${env}/impressions`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify(items),
  });
  return r.status;
}

async function shot(page, name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

const dataDir = mkdtempSync(join(tmpdir(), "checkgate-e2e-"));
rmSync(artifacts, { recursive: true, force: true });
mkdirSync(artifacts, { recursive: true });
const edgeDir = mkdtempSync(join(tmpdir(), "checkgate-e2e-edge-"));
const { url: base, feed, fingerprint, child } = await startControl(dataDir);
let edge;
const browser = await chromium.launch({ executablePath: browserPath, args: ["--no-sandbox"] });
const errors = [];
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on("pageerror", (e) => errors.push(`${page.url()}: ${e.message}`));

  step = "first-run setup";
  await page.goto(base + "/");
  await shot(page, "01-setup");
  await page.getByLabel("Workspace name").fill("Acme");
  await page.getByLabel("First project name").fill("Web");
  await page.getByLabel("Your name").fill(admin.name);
  await page.getByLabel("Email").fill(admin.email);
  await page.getByLabel("Password").fill(admin.password);
  await page.getByRole("button", { name: "Create workspace" }).click();
  await page.waitForURL(/\/envs\/[^/]+\/flags$/);
  const flagsUrl = page.url();
  const envsUrl = flagsUrl.replace(/\/envs\/[^/]+\/flags$/, "");
  check(!(await page.evaluate(() => JSON.stringify(localStorage))).includes("cg_"), "nothing secret in local storage");

  step = "create a flag with a rule";
  await page.getByRole("link", { name: "Create flag" }).first().click();
  await page.getByLabel("Key", { exact: true }).fill("new-checkout");
  await page.getByLabel("Description", { exact: true }).fill("The redesigned checkout");
  await page.getByRole("switch", { name: "Enabled in Development" }).click();
  await page.getByRole("button", { name: "+ Add rule" }).click();
  const rule = page.getByRole("region", { name: "Rule 1" });
  await rule.getByLabel("Attribute").fill("country");
  await rule.getByLabel("Operator").selectOption("in");
  const values = rule.getByLabel("Values", { exact: true });
  for (const v of ["NL", "BE"]) {
    await values.fill(v);
    await values.press("Enter");
  }
  await rule.getByRole("radio", { name: "A value" }).check();
  await rule.getByLabel("Served value").selectOption("true");
  await page.getByLabel("Default value", { exact: true }).selectOption("false");
  await page.getByRole("button", { name: "Create flag" }).click();
  await page.waitForURL(/\/flags\/new-checkout$/);
  await page.getByText("No unsaved changes").waitFor();
  await shot(page, "02-flag-editor");

  step = "try a context";
  await page.getByLabel("Evaluation context (JSON)").fill('{"targetingKey": "u1", "country": "NL"}');
  await page.getByRole("button", { name: "Evaluate" }).click();
  const result = page.getByRole("region", { name: "Evaluation result" });
  await result.getByText("TARGETING_MATCH").waitFor();
  check((await result.textContent()).includes("true"), "the rule's value is shown");

  step = "create a server SDK key";
  await page.getByRole("link", { name: "SDK keys & tokens" }).click();
  await page.getByRole("button", { name: "New SDK key" }).click();
  let dialog = page.getByRole("dialog");
  await dialog.getByLabel("Key name").fill("checkout service");
  await dialog.getByLabel("Environment").selectOption({ label: "Development" });
  await dialog.getByRole("radio", { name: "Server" }).check();
  await dialog.getByRole("button", { name: "Create key" }).click();
  const created = page.getByRole("dialog", { name: "SDK key created" });
  const key = await created.getByLabel("SDK key").inputValue();
  check(key.length > 20, `a full key is shown once (got ${key.length} characters)`);
  await shot(page, "03-sdk-key-created");
  await created.getByRole("button", { name: /close|done/i }).first().click();
  check(!(await page.content()).includes(key), "the key is not on the page after its dialog closes");
  check(!(await page.evaluate(() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage))).includes(key), "the key is not in browser storage");

  step = "evaluate at /ofrep with the new key";
  let answer = await ofrep(base, key, { targetingKey: "u1", country: "NL" });
  check(answer.status === 200 && answer.body.value === true && answer.body.reason === "TARGETING_MATCH", JSON.stringify(answer));
  answer = await ofrep(base, key, { targetingKey: "u2", country: "DE" });
  check(answer.status === 200 && answer.body.value === false, JSON.stringify(answer));

  step = "an edge relay follows the feed and serves the flag";
  const madeToken = await inPage(page, "POST", "/api/edge-tokens", { name: "e2e edge" });
  check(madeToken.status === 201 && typeof madeToken.body?.token === "string", `an edge token is made (${madeToken.status})`);
  edge = await startEdge(feed, fingerprint, madeToken.body.token, edgeDir);
  const edgeBase = edge.url;
  answer = await eventually("the edge serves new-checkout", async () => {
    const a = await ofrep(edgeBase, key, { targetingKey: "u1", country: "NL" });
    return a.status === 200 ? a : null;
  });
  check(answer.body.value === true && answer.body.reason === "TARGETING_MATCH", `the edge evaluates as the control plane does (${JSON.stringify(answer.body)})`);
  // Evaluations the edge counts and sends upstream (every 10 s), beside the one above.
  const edgeEvaluations = 4;
  for (let i = 0; i < edgeEvaluations - 1; i++) {
    answer = await ofrep(edgeBase, key, { targetingKey: `e${i}`, country: "DE" });
    check(answer.status === 200 && answer.body.value === false, `evaluation ${i} at the edge (${JSON.stringify(answer)})`);
  }

  step = "report impressions to the edge with an SDK key made through the API";
  const projectId = envsUrl.match(/\/projects\/([^/]+)$/)[1];
  const devEnv = flagsUrl.match(/\/envs\/([^/]+)\/flags$/)[1];
  const flagUrl = flagsUrl.replace(/\/flags$/, "/flags/new-checkout");
  const made = await inPage(page, "POST", `/api/projects/${projectId}/keys`, {
    name: "impressions reporter",
    environment_id: devEnv,
    kind: "client",
  });
  check(made.status === 201 && typeof made.body?.key === "string", `a client key is made (${JSON.stringify(made)})`);
  const reporterKey = made.body.key;
  const impressions = [1, 2, 3, 4, 5].map((i) => ({
    flag_key: "new-checkout",
    user_id: `e2e-user-${i}`,
    value: i % 2 ? "true" : "false",
    context: { country: i % 2 ? "NL" : "DE", note: "<b>not markup</b>" },
  }));
  // The key reaches the edge over the feed a moment after it is made: until then the edge
  // answers 401 and keeps nothing, so the batch is sent again until it is taken (once).
  let sent;
  await eventually("the edge to take the batch once it knows the new key", async () => {
    sent = await report(edgeBase, devEnv, reporterKey, impressions);
    check(sent === 204 || sent === 401, `the edge answers 204 or 401 (got ${sent})`);
    return sent === 204;
  });

  step = "the Stream tab shows them, and one sent while it is open";
  // Requests for impressions, to see that the tail stops polling once its tab is left.
  let impressionPolls = 0;
  page.on("request", (r) => {
    if (/\/api\/environments\/[^/]+\/impressions\?/.test(r.url())) impressionPolls++;
  });
  await page.goto(flagUrl + "?tab=stream");
  const streamPanel = page.getByRole("tabpanel", { name: "Stream" });
  await streamPanel.getByRole("cell", { name: "e2e-user-5", exact: true }).waitFor();
  await streamPanel.getByText("● Live").waitFor();
  const tailPoll = page.waitForResponse((r) => r.url().includes("/impressions?") && r.url().includes("since_id=") && r.ok());
  sent = await report(edgeBase, devEnv, reporterKey, [
    { flag_key: "new-checkout", user_id: "e2e-late-user", value: "true", context: { country: "BE" } },
  ]);
  check(sent === 204, `the edge takes the second batch (got ${sent})`);
  await tailPoll;
  await streamPanel.getByRole("cell", { name: "e2e-late-user", exact: true }).waitFor();
  await streamPanel.getByLabel("User").fill("e2e-user-2");
  await streamPanel.getByRole("cell", { name: "e2e-late-user", exact: true }).waitFor({ state: "detached" });
  await streamPanel.getByRole("cell", { name: "e2e-user-2", exact: true }).waitFor();
  await streamPanel.getByRole("button", { name: /^Show context of impression/ }).first().click();
  const contextText = await streamPanel.locator("pre.context-json").textContent();
  check(contextText.includes('"country": "DE"') && contextText.includes("<b>not markup</b>"), `the context shows as JSON text (${contextText})`);
  check((await streamPanel.locator("pre.context-json b").count()) === 0, "the context is text, not markup");
  await shot(page, "12-flag-stream");

  step = "the Analytics tab counts them, and the edge's evaluations";
  // The edge sends its counters every 10 s, and the control plane's in-process serving counts
  // the two evaluations made at its /ofrep: six in all, none counted twice.
  const counted = 2 + edgeEvaluations;
  let seen;
  await eventually(
    `the ${counted} evaluations reach the insights`,
    async () => {
      const r = await inPage(page, "GET", `/api/environments/${devEnv}/flags/new-checkout/insights?range=24h`);
      seen = r.body?.evaluations;
      return r.status === 200 && seen === counted;
    },
    45_000,
  ).catch((e) => {
    throw new Error(`${e.message}; the insights say ${seen}`);
  });
  await page.getByRole("tab", { name: "Analytics" }).click();
  const analytics = page.getByRole("tabpanel", { name: "Analytics" });
  await analytics.locator("section.analytics:not([aria-busy]) .kpis").waitFor();
  await streamPanel.waitFor({ state: "detached" });
  const pollsWhenLeft = impressionPolls;
  const kpi = (name) => analytics.locator(".kpis > div", { has: page.getByText(name, { exact: true }) }).locator("dd");
  check((await kpi("Impressions").textContent()) === "6", `6 impressions in 24 h (got ${await kpi("Impressions").textContent()})`);
  check((await kpi("Unique users").textContent()) === "6", `6 unique users (got ${await kpi("Unique users").textContent()})`);
  check((await kpi("Evaluations").textContent()) === counted.toLocaleString(), `${counted} evaluations (got ${await kpi("Evaluations").textContent()})`);
  await analytics.locator(".chart-canvas canvas").first().waitFor();
  const label = await analytics.getByRole("img").getAttribute("aria-label");
  check(/6 impressions/.test(label), `the chart has a text alternative (${label})`);
  check((await analytics.getByRole("table", { name: "Served values" }).textContent()).includes("true"), "the value split lists true");
  const lastHour = page.waitForResponse((r) => r.url().includes("/insights?range=1h") && r.ok());
  await analytics.locator(".range-option", { hasText: "1 h" }).click();
  await lastHour;
  await analytics.locator("section.analytics:not([aria-busy]) .kpis").waitFor();
  check((await kpi("Impressions").textContent()) === "6", "6 impressions in the last hour too");
  await shot(page, "13-flag-analytics");

  step = "the flag list shows the last evaluation and filters stale flags";
  await page.goto(flagsUrl);
  const listRow = page.getByRole("row", { name: /new-checkout/ });
  await listRow.locator(".activity time").filter({ hasText: /just now|minute/ }).waitFor();
  await page.getByLabel("Activity").selectOption("1");
  await page.getByText("No flag matches these filters.").waitFor();
  await page.getByLabel("Activity").selectOption("");
  await listRow.waitFor();

  step = "toggle the flag off and see it at /ofrep";
  await page.goto(flagsUrl);
  const toggle = page.getByRole("switch", { name: "Toggle new-checkout" });
  check((await toggle.getAttribute("aria-checked")) === "true", "the list shows the flag on");
  await shot(page, "04-flag-list");
  await toggle.click();
  await eventually("the switch to show off", async () => (await toggle.getAttribute("aria-checked")) === "false");
  await eventually("/ofrep to serve the disabled value", async () => {
    const a = await ofrep(base, key, { targetingKey: "u1", country: "NL" });
    return a.status === 200 && a.body.value === false && a.body.reason === "DISABLED";
  });

  step = "schedule an edit for later from the editor, and one through the API that applies";
  await page.goto(flagUrl);
  await page.getByLabel("Description", { exact: true }).fill("Checkout, as scheduled");
  await page.getByRole("button", { name: "Apply at…" }).click();
  dialog = page.getByRole("dialog");
  const tomorrow = new Date(Date.now() + 86_400_000);
  const local = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  await dialog.getByLabel("Apply at").fill(local(tomorrow));
  await dialog.getByRole("button", { name: "Schedule change" }).click();
  await page.getByText(/^Scheduled: this edit applies at/).waitFor();
  await page.getByText("No unsaved changes").waitFor();
  const soon = await inPage(page, "POST", `/api/environments/${devEnv}/flags/new-checkout/scheduled-changes`, {
    scheduled_at: new Date(Date.now() + 2_000).toISOString(),
    patch: { tags: ["scheduled"] },
  });
  check(soon.status === 201, `a change due in two seconds is scheduled (${JSON.stringify(soon)})`);
  await eventually("the change due in two seconds to apply", async () => {
    const f = await inPage(page, "GET", `/api/environments/${devEnv}/flags/new-checkout`);
    return f.status === 200 && (f.body.tags ?? []).includes("scheduled");
  });
  await page.getByRole("link", { name: "Scheduled changes" }).click();
  const upcoming = page.getByRole("table", { name: "Upcoming changes" });
  const past = page.getByRole("table", { name: "Past changes" });
  await upcoming.getByRole("row", { name: /new-checkout/ }).waitFor();
  const scheduledChange = await upcoming.getByRole("row", { name: /new-checkout/ }).textContent();
  check(
    scheduledChange.includes('description = "Checkout, as scheduled"') && !scheduledChange.includes("tags"),
    `the schedule changes only the edited field (${scheduledChange})`,
  );
  await past.getByText("applied", { exact: true }).waitFor();
  await shot(page, "15-scheduled-changes");
  await upcoming.getByRole("button", { name: "Cancel" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Cancel change" }).click();
  await past.getByText("cancelled", { exact: true }).waitFor();
  await page.getByText(/^Nothing is scheduled in /).waitFor();

  step = "promote to production, where a toggle asks first";
  await page.goto(flagsUrl.replace(/\/flags$/, "/flags/new-checkout"));
  await page.getByRole("button", { name: "Promote…" }).click();
  dialog = page.getByRole("dialog");
  const target = dialog.getByLabel("Target environment");
  await target.selectOption(await target.locator("option", { hasText: /^Production/ }).getAttribute("value"));
  await dialog.getByRole("button", { name: "Promote to Production" }).waitFor();
  await shot(page, "05-promote-diff");
  await dialog.getByRole("button", { name: "Promote to Production" }).click();
  await dialog.getByText(/Promoted: Production now has version/).waitFor();
  await dialog.getByRole("button", { name: "Close" }).click();
  await dialog.waitFor({ state: "detached" });
  await page.getByRole("combobox", { name: "Environment" }).first().selectOption({ label: "Production" });
  await page.waitForURL(/\/flags$/);
  const prodToggle = page.getByRole("switch", { name: "Toggle new-checkout" });
  await prodToggle.click();
  const confirm = page.getByRole("dialog", { name: /new-checkout in Production\?/ });
  await confirm.waitFor();
  await shot(page, "06-production-confirmation");
  await confirm.getByRole("button", { name: "Cancel" }).click();
  check((await prodToggle.getAttribute("aria-checked")) === "false", "cancelling leaves production as it was");

  step = "revoke the key";
  await page.getByRole("link", { name: "SDK keys & tokens" }).click();
  await page.getByRole("button", { name: "Revoke SDK key checkout service" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Revoke key" }).click();
  await eventually("/ofrep to refuse the revoked key", async () => (await ofrep(base, key, { targetingKey: "u1" })).status === 401);

  step = "audit log and edge fleet";
  await page.getByRole("link", { name: "Audit log" }).click();
  const entry = page.getByRole("button", { name: /new-checkout/ }).first();
  await entry.click();
  check((await entry.getAttribute("aria-expanded")) === "true", "an audit entry expands");
  await shot(page, "07-audit");
  await page.getByRole("link", { name: "Edge fleet" }).click();
  await page.getByRole("heading", { level: 1 }).waitFor();
  await shot(page, "08-edge-fleet");

  step = "add a viewer";
  await page.getByRole("link", { name: "Users" }).click();
  await page.getByRole("button", { name: "New user" }).click();
  dialog = page.getByRole("dialog");
  await dialog.getByLabel("Name", { exact: true }).fill(viewer.name);
  await dialog.getByLabel("Email").fill(viewer.email);
  await dialog.getByLabel("Initial password").fill(viewer.password);
  await dialog.getByRole("button", { name: "Create user" }).click();
  await dialog.waitFor({ state: "detached" });
  await page.goto(`${envsUrl}/members`);
  await page.getByLabel("Person").selectOption({ label: `${viewer.name} (${viewer.email})` }).catch(async () => {
    // The person picker lists users by name and email; fall back to the option naming them.
    const option = await page.getByLabel("Person").locator("option", { hasText: viewer.email }).first().getAttribute("value");
    await page.getByLabel("Person").selectOption(option);
  });
  await page.getByLabel("Role", { exact: true }).selectOption("viewer");
  await page.getByRole("button", { name: "Add member" }).click();
  await page.getByRole("combobox", { name: `Role of ${viewer.name}` }).waitFor();
  await shot(page, "09-members");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/login$/);

  step = "a viewer cannot edit";
  await page.getByLabel("Email").fill(viewer.email);
  await page.getByLabel("Password").fill(viewer.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  // Back where the last visitor left off: the members page.
  await page.waitForURL(/\/members$/);
  await page.goto(flagsUrl);
  const viewerToggle = page.getByRole("switch", { name: "Toggle new-checkout" });
  if (await viewerToggle.count()) {
    check(await viewerToggle.isDisabled(), "a viewer's toggle is disabled");
  }
  check((await page.getByRole("link", { name: "Create flag" }).count()) === 0, "no Create flag for a viewer");
  await page.goto(flagsUrl.replace(/\/flags$/, "/flags/new-checkout"));
  await page.getByLabel("Evaluation context (JSON)").waitFor();
  check((await page.getByRole("button", { name: "Save", exact: true }).count()) === 0, "no Save for a viewer");
  check((await page.getByRole("button", { name: "Delete flag" }).count()) === 0, "no Delete for a viewer");
  const refused = await page.evaluate(async (path) => {
    const r = await fetch(path, {
      method: "PATCH",
      headers: { "Content-Type": "application/json", "X-Checkgate-Request": "1" },
      body: JSON.stringify({ is_enabled: true }),
    });
    return r.status;
  }, `/api/environments/${flagsUrl.match(/\/envs\/([^/]+)\//)[1]}/flags/new-checkout`);
  check(refused === 403, `the server refuses a viewer's write (got ${refused})`);
  const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(wide <= 1, `nothing scrolls sideways at 1280 px in the read-only editor (overflow ${wide} px)`);
  await shot(page, "10-viewer-editor");

  step = "a viewer sees the insights";
  // Every step since the admin left the Stream tab took its time: its tail polled no more.
  check(impressionPolls === pollsWhenLeft, `no impressions poll after leaving the Stream tab (${impressionPolls - pollsWhenLeft} more)`);
  await page.goto(flagUrl + "?tab=analytics");
  await page.getByRole("tabpanel", { name: "Analytics" }).locator(".kpis").waitFor();
  await page.getByRole("tab", { name: "Stream" }).click();
  await page.getByRole("tabpanel", { name: "Stream" }).getByRole("cell", { name: "e2e-late-user", exact: true }).waitFor();
  await page.getByRole("tab", { name: "Targeting" }).click();
  await page.getByRole("tabpanel", { name: "Stream" }).waitFor({ state: "detached" });
  check(impressionPolls - pollsWhenLeft >= 1, "the viewer's tail asked for impressions");
  const pollsWhenViewerLeft = impressionPolls;

  step = "narrow window";
  await page.setViewportSize({ width: 375, height: 740 });
  await page.goto(flagsUrl);
  await page.getByRole("link", { name: "new-checkout" }).first().waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `nothing scrolls sideways at 375 px (overflow ${overflow} px)`);
  await page.getByRole("button", { name: "Menu" }).click();
  await page.getByRole("link", { name: "Segments" }).waitFor();
  await shot(page, "11-mobile-menu");
  await page.goto(flagUrl + "?tab=analytics");
  await page.getByRole("tabpanel", { name: "Analytics" }).locator(".chart-canvas canvas").first().waitFor();
  const chartOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(chartOverflow <= 1, `nothing scrolls sideways at 375 px on the Analytics tab (overflow ${chartOverflow} px)`);
  await shot(page, "14-mobile-analytics");

  // The narrow-window step took its time: no tail polled after its tab was left.
  check(impressionPolls === pollsWhenViewerLeft, `no impressions poll after leaving the Stream tab (${impressionPolls - pollsWhenViewerLeft} more)`);
  check(errors.length === 0, `no script errors: ${errors.join("; ")}`);
  console.log(`e2e: every step passed; screenshots in ${artifacts}`);
} catch (e) {
  console.error(`e2e: FAILED at ${step}: ${e.message}`);
  console.error(`e2e: the page was at ${page?.url()}; see ${join(artifacts, "failure.png")}`);
  await page?.screenshot({ path: join(artifacts, "failure.png"), fullPage: true }).catch(() => {});
  process.exitCode = 1;
} finally {
  await browser.close();
  edge?.child.kill("SIGTERM");
  child.kill("SIGTERM");
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(edgeDir, { recursive: true, force: true });
}
