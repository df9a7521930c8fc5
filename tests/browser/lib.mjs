// Shared by the browser tests: launch Debian's chromium through
// playwright-core (which never downloads a browser), open the playground,
// and fail on any page error.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CHROMIUM = process.env.TOCSIN_CHROMIUM || '/usr/bin/chromium';

// `ui: false` skips waiting for the page's app: for tests of the engine
// itself, which make their own client (see engineClient).
export async function openPlayground(url, { width = 1400, height = 1000, ui = true } = {}) {
  // A fresh profile per run, removed afterwards; nothing reaches the network
  // except 127.0.0.1.
  const profile = mkdtempSync(join(tmpdir(), 'tocsin-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width, height },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const page = context.pages()[0] || (await context.newPage());
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()} (${m.location().url})`);
  });
  await page.goto(url, { waitUntil: 'load', timeout: 30000 });
  if (ui) {
    await page.waitForFunction(() => window.tocsin && window.tocsin.ready, null, { timeout: 30000 });
    await page.evaluate(() => window.tocsin.ready);
  }
  const close = async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  };
  return { page, problems, close };
}

// A fresh engine client in the page, as `window.engine`: the same worker,
// bundle and module runner the app uses, without the app around it.
export async function engineClient(page, options = {}) {
  await page.evaluate(async (options) => {
    const { EngineClient } = await import(new URL('client.js', document.baseURI).href);
    window.engine = new EngineClient(options);
  }, options);
}

// Adds a .wasm module to `window.engine`, as a drop on the page would.
export async function addModule(page, name, bytes) {
  const b64 = Buffer.from(bytes).toString('base64');
  return page.evaluate(async ([name, b64]) => {
    const bin = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return window.engine.addModule(name, bin.buffer);
  }, [name, b64]);
}

export function fail(msg) {
  console.error(`FAIL: ${msg}`);
  process.exitCode = 1;
}
