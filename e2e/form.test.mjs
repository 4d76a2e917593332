// The hosted registration form in Chromium, with JavaScript on and off.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startDemo, launchBrowser, screenshot } from "./harness.mjs";

let demo;
let browser;

before(async () => {
  demo = await startDemo();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await demo?.stop();
});

/** Fills the demo webinar's form: names, email, the required short answer, a choice. */
async function fill(page, email) {
  const questions = demo.webinar.registrationFields.questions;
  await page.getByLabel("First name").fill("Ada");
  await page.getByLabel("Last name").fill("Lovelace");
  await page.getByLabel("Email").fill(email);
  for (const q of questions) {
    if (q.type === "shortAnswer") {
      await page.getByLabel(q.question).fill("Reliable delivery");
    } else {
      await page.getByLabel(q.answers[1].answer).check();
    }
  }
}

test("without JavaScript: post, 303, a confirmation page with the join URL", async () => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(`${demo.base}/r/${demo.webinar.webinarKey}`);
  await fill(page, "nojs@example.com");
  await page.getByRole("button", { name: "Register" }).click();
  await page.waitForURL(/\/confirmation\//);
  const join = page.locator("#join-url");
  assert.match(await join.getAttribute("href"), /\/join\/\d+\/\d+$/);
  assert.match(await page.locator("h1").innerText(), /registered/);
  await screenshot(page, "confirmation");
  await context.close();
});

test("with JavaScript: no reload, the join URL appears in place", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const url = `${demo.base}/r/${demo.webinar.webinarKey}`;
  await page.goto(url);
  await fill(page, "js@example.com");
  await page.getByRole("button", { name: "Register" }).click();
  const join = page.locator("#join-url");
  await join.waitFor();
  assert.match(await join.getAttribute("href"), /\/join\/\d+\/\d+$/);
  assert.equal(page.url(), url, "no navigation happened");
  await context.close();
});

test("validation errors appear beside their fields, with and without JavaScript", async () => {
  for (const javaScriptEnabled of [true, false]) {
    const context = await browser.newContext({ javaScriptEnabled });
    const page = await context.newPage();
    await page.goto(`${demo.base}/r/${demo.webinar.webinarKey}`);
    await page.getByLabel("First name").fill("Ada");
    await page.getByLabel("Email").fill("not-an-email");
    await page.getByRole("button", { name: "Register" }).click();
    await page.locator("#lastName-error", { hasText: "Last name is required." }).waitFor();
    assert.equal(await page.locator("#email-error").innerText(), "Email is not a valid email address.");
    const summary = page.locator("#g2w-summary");
    assert.match(await summary.innerText(), /Please check \d fields/);
    if (javaScriptEnabled) {
      assert.equal(await page.evaluate(() => document.activeElement.id), "g2w-summary", "focus on the summary");
    }
    assert.equal(await page.getByLabel("Last name").getAttribute("aria-invalid"), "true");
    assert.equal(await page.getByLabel("First name").inputValue(), "Ada", "what was typed is kept");
    if (!javaScriptEnabled) await screenshot(page, "form-errors");
    await context.close();
  }
});

test("usable by keyboard alone", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${demo.base}/r/${demo.webinar.webinarKey}`);
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.id), "firstName");
  await page.keyboard.type("Key");
  await page.keyboard.press("Tab");
  await page.keyboard.type("Board");
  await page.keyboard.press("Tab");
  await page.keyboard.type("keyboard@example.com");
  // Through the optional fields and to the short answer, then a choice with the arrows.
  const questions = demo.webinar.registrationFields.questions;
  const short = questions.find((q) => q.type === "shortAnswer");
  await page.getByLabel(short.question).focus();
  await page.keyboard.type("Typed without a mouse");
  await page.keyboard.press("Enter"); // a newline in the textarea, not a submit
  const button = page.getByRole("button", { name: "Register" });
  await button.focus();
  await page.keyboard.press("Enter");
  await page.locator("#join-url").waitFor();
  await context.close();
});

test("screenshots: desktop and phone widths", async () => {
  for (const [name, viewport] of [["form-desktop", { width: 1280, height: 900 }], ["form-phone", { width: 390, height: 844 }]]) {
    const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
    const page = await context.newPage();
    await page.goto(`${demo.base}/r/${demo.webinar.webinarKey}`);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= viewport.width, `no sideways scrolling at ${viewport.width}px (page is ${width}px)`);
    await screenshot(page, name);
    await context.close();
  }
});

test("times in the webinar's own zone, the visitor's beside them, with and without JavaScript", async () => {
  const start = demo.webinar.times[0].startTime;
  const end = demo.webinar.times[0].endTime;
  const own = demo.webinar.timeZone;
  assert.ok(own, "the demo webinar names its zone");
  let reference;
  for (const timezoneId of ["America/New_York", "Asia/Tokyo", "Europe/Berlin"]) {
    for (const javaScriptEnabled of [false, true]) {
      const context = await browser.newContext({ timezoneId, locale: "en-US", javaScriptEnabled });
      const page = await context.newPage();
      await page.goto(`${demo.base}/r/${demo.webinar.webinarKey}`);
      const shown = await page.locator("time").first().innerText();
      // The webinar's own time, its zone named: the same words wherever the visitor is.
      reference ??= shown;
      assert.equal(shown, reference, `${timezoneId}, script ${javaScriptEnabled}`);
      assert.ok(shown.endsWith(`(${own})`) || own === "UTC", `${shown} names ${own}`);
      const yours = page.locator(".yours").first();
      if (javaScriptEnabled && timezoneId !== own) {
        const from = new Date(start).toLocaleString("en-US", { dateStyle: "full", timeStyle: "short", timeZone: timezoneId });
        const until = new Date(end).toLocaleTimeString("en-US", { hour: "numeric", minute: "2-digit", timeZoneName: "short", timeZone: timezoneId });
        assert.equal(await yours.innerText(), `Your time: ${from} – ${until}`, timezoneId);
        assert.ok(await yours.isVisible());
      } else {
        assert.ok(!(await yours.isVisible()), `${timezoneId}, script ${javaScriptEnabled}: nothing beside`);
      }
      await context.close();
    }
  }
});

test("tabbing through says nothing; focus follows the answer; a refusal shows GoTo's reason", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${demo.base}/r/${demo.webinar.webinarKey}`);
  for (let i = 0; i < 5; i++) await page.keyboard.press("Tab");
  const shown = await page.locator(".error").allInnerTexts();
  assert.deepEqual(shown.filter((t) => t.trim()), [], "no error for fields merely passed through");

  // GoTo refuses the registration (a 422 with its reason): the form stays, the reason shows.
  await page.route("**/registrations", (route) => route.fulfill({
    status: 422, contentType: "application/json",
    body: JSON.stringify({ status: "failed", registrationId: "x", reason: "GoTo refused the registration (email: blocked domain)" }),
  }));
  await fill(page, "refused@example.com");
  await page.getByRole("button", { name: "Register" }).click();
  const heading = page.locator("#g2w-result h2");
  await heading.waitFor();
  assert.equal(await heading.innerText(), "Sorry");
  assert.match(await page.locator("#g2w-result").innerText(), /blocked domain/);
  assert.ok(await page.locator("#g2w-form").isVisible(), "the form stays to be corrected");
  assert.equal(await page.evaluate(() => document.activeElement.tagName), "H2", "focus on the answer");

  await page.unroute("**/registrations");
  await page.getByLabel("Email").fill("accepted@example.com");
  await page.getByRole("button", { name: "Register" }).click();
  await page.locator("#join-url").waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "You're registered");
  await context.close();
});
