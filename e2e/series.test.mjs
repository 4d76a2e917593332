// One form for a series in Chromium: the visitor picks a date and registers for that
// date's webinar, with JavaScript on and off.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startDemo, launchBrowser, screenshot } from "./harness.mjs";

let demo;
let browser;
let dates;

before(async () => {
  demo = await startDemo();
  browser = await launchBrowser();
  assert.ok(demo.series, "the demo has a series");
  dates = (await (await fetch(`${demo.base}/api/v1/webinars?series=${demo.series}`)).json()).webinars;
  assert.equal(dates.length, 3, "the demo series has three dates");
});

after(async () => {
  await browser?.close();
  await demo?.stop();
});

async function fillPerson(page, email) {
  await page.getByLabel("First name").fill("Ada");
  await page.getByLabel("Last name").fill("Lovelace");
  await page.getByLabel("Email").fill(email);
}

/** The radio of the `i`-th date, found by its label as a visitor reads it. */
function dateRadio(page, i) {
  return page.locator(`input[name=webinarKey][value="${dates[i].webinarKey}"]`);
}

test("without JavaScript: every open date offered, the second one picked and registered", async () => {
  const context = await browser.newContext({ javaScriptEnabled: false, timezoneId: "Europe/Berlin" });
  const page = await context.newPage();
  await page.goto(`${demo.base}/r/series/${demo.series}`);
  assert.equal(await page.locator("input[name=webinarKey]").count(), 3);
  const labels = await page.locator("fieldset#webinarKey label").allInnerTexts();
  assert.ok(labels.every((l) => l.includes("(Europe/Berlin)")), labels.join("\n"));
  await screenshot(page, "series-form");
  await fillPerson(page, "series-nojs@example.com");
  await page.getByRole("button", { name: "Register" }).click();
  // No date yet: the form again, the problem named, what was typed kept.
  await page.locator("#webinarKey-error", { hasText: "“Date”: an answer is required." }).waitFor();
  assert.equal(await page.getByLabel("Last name").inputValue(), "Lovelace");
  await dateRadio(page, 1).check();
  await page.getByRole("button", { name: "Register" }).click();
  await page.waitForURL(/\/confirmation\//);
  assert.match(await page.locator("h1").innerText(), /registered|Thank you/);
  const body = await page.locator("main").innerText();
  const second = new Date(dates[1].times[0].startTime);
  const day = second.toLocaleDateString("en-GB", { timeZone: "Europe/Berlin", day: "numeric", month: "long" });
  assert.ok(body.includes(day), `the confirmation names the date picked (${day}):\n${body}`);
  await context.close();
});

test("with JavaScript: the date is checked in place and the join URL appears", async () => {
  const context = await browser.newContext({ timezoneId: "America/Los_Angeles" });
  const page = await context.newPage();
  const url = `${demo.base}/r/series/${demo.series}`;
  await page.goto(url);
  // A visitor elsewhere also sees their own time beside each date.
  await page.locator("fieldset#webinarKey .yours", { hasText: "Your time:" }).first().waitFor();
  await fillPerson(page, "series-js@example.com");
  await page.getByRole("button", { name: "Register" }).click();
  assert.equal(await page.locator("#webinarKey-error").innerText(), "“Date”: an answer is required.");
  await dateRadio(page, 2).check();
  await page.getByRole("button", { name: "Register" }).click();
  const join = page.locator("#join-url");
  await join.waitFor();
  assert.match(await join.getAttribute("href"), new RegExp(`/join/${dates[2].webinarKey}/\\d+$`));
  assert.equal(page.url(), url, "no navigation happened");
  await context.close();
});
