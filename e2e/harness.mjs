// Starts `g2w serve --demo` and a headless Chromium for the browser tests.
import { spawn, execFileSync } from "node:child_process";
import { createInterface } from "node:readline";
import { existsSync, mkdirSync, copyFileSync } from "node:fs";
import { chromium } from "playwright-core";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const G2W = process.env.G2W_BIN || new URL("../target/debug/g2w", import.meta.url).pathname;

/** Fails loudly when the browser is missing: these tests never skip themselves. */
export function requireBrowser() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: install Debian's chromium package (e2e/run does) or set CHROMIUM`);
  }
  if (!existsSync(G2W)) {
    throw new Error(`g2w binary not found at ${G2W}: run cargo build -p g2w first (e2e/run does)`);
  }
}

/** Starts `g2w ARGS`, resolves with the URL its first line announces. */
async function startG2w(args, env, pattern) {
  requireBrowser();
  const child = spawn(G2W, args, { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, G2W_LOG: "warn", ...env } });
  const lines = createInterface({ input: child.stdout });
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`g2w ${args.join(" ")} did not start in 30 s`)), 30000);
    lines.on("line", (line) => {
      const m = line.match(pattern);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on("exit", (code) => reject(new Error(`g2w ${args.join(" ")} exited with ${code}`)));
  });
  lines.on("line", () => {});
  const stop = () => new Promise((resolve) => { child.on("exit", resolve); child.kill("SIGTERM"); });
  return { base, stop };
}

/** The standalone emulator (consent page on, demo data). */
export function startEmulator() {
  return startG2w(["emulator", "--listen", "127.0.0.1:0", "--seed-demo", "--rate-limit", "0"], {}, /^emulator listening on (http:\/\/\S+)/);
}

/** What `g2w` run by a test sees: the emulator at `goto`, the data in `dataDir`. */
function g2wEnv(goto, dataDir) {
  return {
    G2W_AUTH_URL: goto, G2W_API_URL: goto, G2W_DATA_DIR: dataDir, G2W_RATE_LIMIT: "0",
    G2W_CLIENT_ID: "", G2W_CLIENT_SECRET: "", XDG_CONFIG_HOME: dataDir,
  };
}

/** `g2w serve` on an empty data directory, pointed at `goto`, with a known admin password. */
export function startServe(goto, dataDir, password) {
  return startG2w(["serve", "--listen", "127.0.0.1:0", "--sync-wait", "0"], {
    ...g2wEnv(goto, dataDir), G2W_ADMIN_PASSWORD: password, G2W_INTAKE_RATE_PER_IP: "0",
  }, /^g2w gateway listening on (http:\/\/\S+)/);
}

/** Runs a `g2w` command against the same emulator and data as `startServe`; its stdout. */
export function runG2w(args, goto, dataDir) {
  requireBrowser();
  return execFileSync(G2W, args, { env: { ...process.env, G2W_LOG: "warn", ...g2wEnv(goto, dataDir) }, encoding: "utf8" });
}

/** Runs `g2w serve --demo` on a free port; resolves with its URL and a stop function. */
/** The demo's admin console password (set, so tests can sign in). */
export const DEMO_PASSWORD = "demo admin password";

export async function startDemo() {
  const { base, stop } = await startG2w(["serve", "--demo", "--listen", "127.0.0.1:0"],
    { G2W_INTAKE_RATE_PER_IP: "0", G2W_ADMIN_PASSWORD: DEMO_PASSWORD }, /^g2w gateway listening on (http:\/\/\S+)/);
  const webinars = (await (await fetch(`${base}/api/v1/webinars`)).json()).webinars;
  const withQuestions = webinars.find((w) => w.registrationFields.questions.length > 0);
  const series = webinars.find((w) => w.recurrenceKey)?.recurrenceKey;
  return {
    base,
    webinar: withQuestions,
    series,
    stop,
  };
}

/** A headless Chromium, started the way this machine needs (no sandbox as root, no network chatter). */
export async function launchBrowser() {
  requireBrowser();
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

const SHOTS = new URL("./out/", import.meta.url).pathname;

/** Saves a screenshot to e2e/out (and docs/screenshots with UPDATE_SCREENSHOTS=1). */
export async function screenshot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  const file = `${SHOTS}${name}.png`;
  await page.screenshot({ path: file, fullPage: true });
  if (process.env.UPDATE_SCREENSHOTS) {
    const docs = new URL("../docs/screenshots/", import.meta.url).pathname;
    mkdirSync(docs, { recursive: true });
    copyFileSync(file, `${docs}${name}.png`);
  }
}
