// Hostile rule modules in the browser: each is added to a fresh engine
// client (watchdog 2 s) and run as a `wasm:` rule; prints one JSON object
// {module: outcome} where outcome is {added, error} for the upload-time check
// and {run} for the evaluation's rule error or the call's rejection, then
// {after} for a plain PromQL backtest proving the engine still answers.
// usage: node hostile.mjs URL MODULE.wasm...
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { openPlayground, engineClient, addModule } from './lib.mjs';

const [url, ...modules] = process.argv.slice(2);
const DATA = "interval: 1m\ninput_series:\n  - series: 'x{job=\"a\"}'\n    values: '1+1x5'\n";
const rules = (m) => `groups:\n- name: g\n  rules:\n  - alert: A\n    wasm: ${m}\n`;
const { page, problems, close } = await openPlayground(url, { ui: false });
const out = {};
try {
  await engineClient(page, { timeoutMs: 2000 });
  await page.evaluate((d) => window.engine.loadData('data.yml', d), DATA);
  for (const path of modules) {
    const name = basename(path).replace(/\.wasm$/, '');
    const o = (out[name] = {});
    try {
      await addModule(page, name, readFileSync(path));
      o.added = true;
    } catch (e) {
      o.added = false;
      o.error = e.message;
      continue;
    }
    const t0 = Date.now();
    try {
      const r = await page.evaluate((r) => window.engine.backtest('rules.yml', r, {}), rules(name));
      o.run = r.errors.length ? r.errors[0].error : 'no error';
    } catch (e) {
      o.run = e.message.replace(/^page\.evaluate: Error: /, '').split('\n')[0];
    }
    o.ms = Date.now() - t0;
  }
  const after = await page.evaluate(() =>
    window.engine.backtest('rules.yml', "groups:\n- name: g\n  rules:\n  - alert: B\n    expr: x > 3\n", {}),
  );
  out.after = after.transitions.map((t) => t.to);
  console.log(JSON.stringify(out));
  if (problems.length) throw new Error(problems.join('\n'));
} finally {
  await close();
}
