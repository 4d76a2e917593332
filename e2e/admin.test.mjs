// The admin console in Chromium: from an empty store through GoTo's consent page
// (the emulator's) to "connected"; "Refresh now"; retrying a failed registration.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEmulator, startServe, launchBrowser, screenshot, runG2w } from "./harness.mjs";

const PASSWORD = "e2e admin password";
let goto, gateway, browser, page, dataDir;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "g2w-e2e-"));
  goto = await startEmulator();
  gateway = await startServe(goto.base, dataDir, PASSWORD);
  browser = await launchBrowser();
  page = await (await browser.newContext({ viewport: { width: 1100, height: 800 } })).newPage();
});

after(async () => {
  await browser?.close();
  await gateway?.stop();
  await goto?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function pollStatus(id, wanted) {
  for (let i = 0; i < 300; i++) {
    const reg = await (await fetch(`${gateway.base}/api/v1/registrations/${id}`)).json();
    if (reg.state === wanted) return reg;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`registration ${id} never became ${wanted}`);
}

test("connect: from an empty store through GoTo's consent page to connected", async () => {
  await page.goto(`${gateway.base}/admin`);
  await page.getByLabel("Password").fill("wrong");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("Wrong password.").waitFor();
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("Not connected to GoTo.").waitFor();

  await page.getByRole("link", { name: "Connect GoTo", exact: true }).click();
  assert.match(await page.locator("#redirect-uri").innerText(), /\/admin\/oauth\/callback$/);
  await page.getByLabel("Client id").fill("demo-client");
  await page.getByLabel("Client secret").fill("demo-secret");
  await page.getByRole("button", { name: "Save client" }).click();
  await page.getByText("Saved. Now connect the GoTo account.").waitFor();
  await screenshot(page, "admin-connect");
  await page.getByRole("button", { name: "Connect GoTo account" }).click();

  // The emulator's consent page, as GoTo's would be.
  await page.getByRole("button", { name: "Allow" }).click();
  await page.getByRole("heading", { name: "Connected" }).waitFor();
  assert.match(await page.locator("main").innerText(), /dana\.demo@example\.com/);
  await page.getByRole("link", { name: "Continue to the admin console" }).click();
  assert.equal(await page.locator(".principal").innerText(), "dana.demo@example.com");
  assert.match(await page.locator(".organizer-key").innerText(), /^\d{16,}$/);
  await screenshot(page, "admin-tokens");
});

test("Refresh now", async () => {
  await page.goto(`${gateway.base}/admin/tokens`);
  await page.getByRole("button", { name: "Refresh now" }).click();
  await page.getByText(/^Refreshed: the access token is valid until/).waitFor();
  assert.ok(page.url().endsWith("/admin/tokens"), `post/redirect/get: at ${page.url()}`);
  await page.reload();
  assert.equal(await page.getByText(/^Refreshed:/).count(), 0, "a reload repeats nothing");
  const stats = await (await fetch(`${goto.base}/_emulator/stats`)).json();
  assert.equal(stats.tokenGrants.refresh_token, 1);
});

test("a failed registration is retried from the outbox page", async () => {
  const webinars = (await (await fetch(`${gateway.base}/api/v1/webinars`)).json()).webinars;
  const plain = webinars.find((w) => w.registrationFields.questions.length === 0);
  await fetch(`${goto.base}/_emulator/faults`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ method: "POST", pathPrefix: "/G2W", status: 400, count: 1,
      body: { errorCode: "RegistrationInvalid", invalidFields: [{ field: "email", reason: "blocked domain" }] } }),
  });
  const answer = await (await fetch(`${gateway.base}/api/v1/webinars/${plain.webinarKey}/registrations`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ firstName: "Grace", lastName: "Hopper", email: "grace@example.com" }),
  })).json();
  await pollStatus(answer.registrationId, "failed");

  await page.getByRole("link", { name: "Outbox" }).click();
  const row = page.locator(`#reg-${answer.registrationId}`);
  assert.match(await row.innerText(), /blocked domain/);
  await screenshot(page, "admin-outbox");
  await row.getByRole("button", { name: "Retry" }).click();
  await page.getByText("will be delivered again").waitFor();
  const done = await pollStatus(answer.registrationId, "delivered");
  assert.match(done.joinUrl, /\/join\//);

  await page.getByRole("link", { name: "Webinars" }).click();
  assert.match(await page.locator("main").innerText(), /embed\.js/);
  await screenshot(page, "admin-webinars");
});

async function control(path, body) {
  const r = await fetch(`${goto.base}/_emulator${path}`, { method: "POST", body: JSON.stringify(body) });
  const text = await r.text();
  assert.ok(r.ok, `${path}: ${r.status} ${text}`);
  return JSON.parse(text);
}

test("attendance: GoTo's webhooks give a live count per session", async () => {
  const said = runG2w(["webhooks", "setup", "--url", gateway.base], goto.base, dataDir);
  assert.match(said, /4 active subscription\(s\)/);
  const webinar = (await control("/webinars", { subject: "Live session" })).webinarKey;
  const registered = await (await fetch(`${gateway.base}/api/v1/webinars/${webinar}/registrations`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ firstName: "Ada", lastName: "Lovelace", email: "ada@example.com" }),
  })).json();
  await pollStatus(registered.registrationId, "delivered");
  await control(`/webinars/${webinar}/registrants`, { firstName: "Bo", lastName: "Kim", email: "bo@example.com" });
  const session = (await control("/sessions", {
    webinarKey: webinar, attendance: [{ email: "ada@example.com" }, { email: "bo@example.com" }],
  })).sessionKey;

  await page.getByRole("link", { name: "Attendance" }).click();
  const joined = page.locator(`[data-joined="${session}"]`);
  for (let i = 0; i < 100 && (await joined.count() === 0 || await joined.innerText() !== "2"); i++) {
    await new Promise((r) => setTimeout(r, 100));
    await page.reload();
  }
  assert.equal(await joined.innerText(), "2", "two people in the session");
  assert.match(await page.locator("main").innerText(), /bo@example\.com/);
  await page.getByRole("button", { name: "Check GoTo now" }).click();
  await page.getByText(/no webhook had brought/).waitFor();
  assert.ok(page.url().endsWith("/admin/attendance"), `post/redirect/get: at ${page.url()}`);
  await screenshot(page, "admin-attendance");
});

test("sources: a post that cannot be mapped waits on the Sources page until a replay", async () => {
  const webinar = (await (await fetch(`${goto.base}/_emulator/webinars`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ subject: "From a landing page" }),
  })).json()).webinarKey;
  const added = runG2w(["sources", "add", "unbounce", "--name", "landing", "--webinar", webinar], goto.base, dataDir);
  const path = added.match(/(\/in\/landing\/\S+)/)[1];
  // The page calls its email field "contact": nothing guesses that.
  const data = { first_name: ["Ada"], last_name: ["Lovelace"], contact: ["ada.sources@example.com"],
    date_submitted: ["2027-03-01"], time_submitted: ["10:14 AM UTC"] };
  const posted = await fetch(`${gateway.base}${path}`, {
    method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ page_id: "p-1", "data.json": JSON.stringify(data) }).toString(),
  });
  assert.equal(posted.status, 202);
  await page.getByRole("link", { name: "Sources" }).click();
  await page.getByText("email is required").waitFor();
  assert.ok(!(await page.content()).includes(path), "the URL's secret is not on the page");
  runG2w(["sources", "set", "landing", "--map", "email=contact"], goto.base, dataDir);
  await page.getByRole("button", { name: /Replay 1 post/ }).click();
  await page.getByText("1 post(s) registered").waitFor();
  assert.ok(page.url().endsWith("/admin/sources"), `post/redirect/get: at ${page.url()}`);
  await screenshot(page, "admin-sources");
});

test("keys: made on the Keys page, shown once, used, revoked after asking", async () => {
  await page.getByRole("link", { name: "Keys" }).click();
  await page.getByText("No keys yet.").waitFor();
  await page.getByLabel(/^Name/).fill("landing-app");
  await page.getByLabel("token").check();
  await page.getByLabel("proxy").check();
  await page.getByRole("button", { name: "Make the key" }).click();
  await page.getByText("it is shown this once").first().waitFor();
  const key = await page.getByLabel("The key").inputValue();
  assert.match(key, /^g2w_[a-z0-9]{8}_[A-Za-z0-9_-]{43}$/);
  const handed = await fetch(`${gateway.base}/api/v1/organizers/default/token`, { headers: { Authorization: `Bearer ${key}` } });
  assert.equal(handed.status, 200);
  await page.goto(`${gateway.base}/admin/keys`);
  assert.ok(!(await page.content()).includes(key), "the key is shown once only");
  await page.getByText(/token sha256:/).waitFor();
  // The picture holds no key: it was shown once, above, and is gone.
  await screenshot(page, "admin-keys");
  await page.getByRole("button", { name: "Revoke landing-app" }).click();
  await page.getByRole("heading", { name: /Revoke landing-app/ }).waitFor();
  const asked = await fetch(`${gateway.base}/api/v1/organizers/default/token`, { headers: { Authorization: `Bearer ${key}` } });
  assert.equal(asked.status, 200, "asking revokes nothing");
  await page.getByRole("button", { name: "Yes, revoke landing-app" }).click();
  await page.getByText(/is revoked/).waitFor();
  const refused = await fetch(`${gateway.base}/api/v1/organizers/default/token`, { headers: { Authorization: `Bearer ${key}` } });
  assert.equal(refused.status, 401);
  assert.equal((await refused.json()).error, "key_revoked");
});

test("every console page fits a phone: nothing scrolls sideways", async () => {
  const phone = await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage();
  await phone.goto(`${gateway.base}/admin/login`);
  await phone.getByLabel("Password").fill(PASSWORD);
  await phone.getByRole("button", { name: "Sign in" }).click();
  for (const path of ["/admin/tokens", "/admin/connect", "/admin/webinars", "/admin/outbox", "/admin/attendance", "/admin/sources", "/admin/keys"]) {
    await phone.goto(`${gateway.base}${path}`);
    const width = await phone.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `${path} is ${width}px wide at 390px`);
    // Stacked rows keep their column names: no bare "0" on its own.
    const unlabelled = await phone.evaluate(() => [...document.querySelectorAll("tbody td")]
      .filter((td) => td.innerText.trim() && !td.querySelector("form"))
      .filter((td) => !getComputedStyle(td, "::before").content.includes(":"))
      .map((td) => td.innerText.trim()));
    assert.deepEqual(unlabelled, [], `${path}: cells without their label`);
    // A moment is on one line.
    const broken = await phone.evaluate(() => [...document.querySelectorAll(".when")]
      .filter((t) => t.getClientRects().length > 1)
      .map((t) => t.innerText));
    assert.deepEqual(broken, [], `${path}: times broken across lines`);
  }
  await phone.goto(`${gateway.base}/admin/webinars`);
  await screenshot(phone, "admin-webinars-phone");
  await phone.context().close();
});
