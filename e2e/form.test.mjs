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
    await page.locator("#lastName-error", { hasText: "is required" }).waitFor();
    assert.equal(await page.locator("#email-error").innerText(), "is not a valid email address");
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
