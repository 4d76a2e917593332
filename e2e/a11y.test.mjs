// Every page g2w serves, checked by axe-core in Chromium against WCAG 2.2 A and AA:
// the hosted form (fresh, and refused), a series' form, the confirmation and error pages, and each
// admin console page.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDemo, startEmulator, startServe, launchBrowser, screenshot, DEMO_PASSWORD } from "./harness.mjs";

const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
const PASSWORD = "a11y admin password";
let demo, goto, gateway, browser, dataDir;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "g2w-a11y-"));
  demo = await startDemo();
  goto = await startEmulator();
  gateway = await startServe(goto.base, dataDir, PASSWORD);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await gateway?.stop();
  await goto?.stop();
  await demo?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** axe-core's WCAG 2.2 A/AA violations on the page as it stands. */
async function violations(page) {
  await page.addScriptTag({ path: AXE });
  return page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"] },
    });
    return result.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
  });
}

async function expectClean(page, what) {
  const found = await violations(page);
  assert.deepEqual(found, [], `${what}:\n${found.join("\n")}`);
}

test("the hosted form, its refusals, confirmation and error pages", async () => {
  // The pages' own policy allows only their script: let the checker in.
  const context = await browser.newContext({ bypassCSP: true });
  const page = await context.newPage();
  await page.goto(`${demo.base}/r/${demo.webinar.webinarKey}`);
  await expectClean(page, "the form");
  await page.getByRole("button", { name: "Register" }).click();
  await page.locator("#g2w-summary").waitFor();
  await expectClean(page, "the form with errors (JavaScript)");
  await page.goto(`${demo.base}/r/123`);
  await expectClean(page, "an unknown webinar");

  const noScript = await browser.newContext({ bypassCSP: true, javaScriptEnabled: false });
  const plain = await noScript.newPage();
  await plain.goto(`${demo.base}/r/${demo.webinar.webinarKey}`);
  await plain.getByRole("button", { name: "Register" }).click();
  await plain.locator("#g2w-summary").waitFor();
  await noScript.close();
  // axe needs script; the refused page as the server rendered it, checked with script on.
  const html = await (await fetch(`${demo.base}/api/v1/webinars/${demo.webinar.webinarKey}/registrations`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "text/html" },
    body: "firstName=Ada&email=nope",
  })).text();
  await page.setContent(html);
  await expectClean(page, "the form refused by the server");

  const answer = await (await fetch(`${demo.base}/api/v1/webinars/${demo.webinar.webinarKey}/registrations`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      firstName: "Axe", lastName: "Core", email: "axe@example.com",
      responses: demo.webinar.registrationFields.questions.map((q) => q.type === "shortAnswer"
        ? { questionKey: q.questionKey, responseText: "checking" }
        : { questionKey: q.questionKey, answerKey: q.answers[0].answerKey }),
    }),
  })).json();
  await page.goto(`${demo.base}/confirmation/${answer.registrationId}`);
  await expectClean(page, "the confirmation page");
  await context.close();
});

test("a series' form: fresh, refused with script, refused by the server, and with no dates", async () => {
  const context = await browser.newContext({ bypassCSP: true });
  const page = await context.newPage();
  await page.goto(`${demo.base}/r/series/${demo.series}`);
  await expectClean(page, "the series form");
  await page.getByRole("button", { name: "Register" }).click();
  await page.locator("#g2w-summary").waitFor();
  await expectClean(page, "the series form with errors (JavaScript)");
  const html = await (await fetch(`${demo.base}/r/series/${demo.series}`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: "firstName=Ada&lastName=Lovelace&email=ada%40example.com",
  })).text();
  await page.setContent(html);
  await expectClean(page, "the series form refused by the server");
  await page.goto(`${demo.base}/r/series/123`);
  await expectClean(page, "a series with no dates");
  await context.close();
});

test("every admin console page", async () => {
  const context = await browser.newContext({ bypassCSP: true });
  const page = await context.newPage();
  await page.goto(`${gateway.base}/admin/login`);
  await expectClean(page, "sign-in");
  await page.getByLabel("Password").fill("wrong");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("Wrong password.").waitFor();
  await expectClean(page, "sign-in refused");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  for (const path of ["/admin/tokens", "/admin/connect", "/admin/webinars", "/admin/outbox", "/admin/attendance", "/admin/sources", "/admin/keys"]) {
    await page.goto(`${gateway.base}${path}`);
    await expectClean(page, path);
  }
  // A key just made (shown once), and the question before a revoke.
  await page.getByLabel(/^Name/).fill("a11y-key");
  await page.getByLabel("token").check();
  await page.getByRole("button", { name: "Make the key" }).click();
  await page.getByLabel("The key").waitFor();
  await expectClean(page, "/admin/keys with a key just made");
  await page.getByRole("button", { name: "Revoke a11y-key" }).click();
  await page.getByRole("heading", { name: /Revoke a11y-key/ }).waitFor();
  await expectClean(page, "/admin/keys asking before a revoke");
  await context.close();
});

test("the console's pictures, at 1280 and 390 px wide", async () => {
  // Someone signs up, so there is something to draw.
  const signed = await fetch(`${demo.base}/api/v1/webinars/${demo.webinar.webinarKey}/registrations`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ firstName: "Ada", lastName: "Lovelace", email: "ada.pictures@example.com",
      responses: demo.webinar.registrationFields.questions.filter((q) => q.required)
        .map((q) => q.answers?.length ? { questionKey: q.questionKey, answerKey: q.answers[0].answerKey } : { questionKey: q.questionKey, responseText: "pictures" }) }),
  });
  assert.ok(signed.status < 300, `registered: ${signed.status} ${await signed.text()}`);
  for (const width of [1280, 390]) {
    const context = await browser.newContext({ bypassCSP: true, viewport: { width, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${demo.base}/admin/login`);
    await page.getByLabel("Password").fill(DEMO_PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    for (const path of [`/admin/webinars/${demo.webinar.webinarKey}`, "/admin/activity"]) {
      await page.goto(`${demo.base}${path}`);
      assert.ok(await page.locator("svg.chart[role=img] title").count() > 0, `${path}: pictures with titles`);
      await expectClean(page, `${path} at ${width} px`);
      const scroll = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(scroll <= width, `${path} is ${scroll}px wide at ${width}px`);
      if (width === 1280) await screenshot(page, path === "/admin/activity" ? "admin-activity" : "admin-webinar");
    }
    await context.close();
  }
});
