// Measures the playground engine in Chromium: a backtest of 1 rule over
// 1,000 series × 24 h of 15 s samples, at the group's 1m interval and at a
// 15s step. Prints one JSON line; `cargo bench -p tocsin-tests --bench
// playground` runs it next to the same work natively.
// usage: node bench.mjs URL DATA_FILE RULES_FILE [RUNS]
import { readFileSync } from 'node:fs';
import { openPlayground, engineClient } from './lib.mjs';

const [url, dataPath, rulesPath, runsArg] = process.argv.slice(2);
const runs = Number(runsArg || 5);
const { page, problems, close } = await openPlayground(url, { ui: false });
try {
  await engineClient(page);
  const out = await page.evaluate(
    async ([data, rules, runs]) => {
      const e = window.engine;
      const t0 = performance.now();
      const summary = await e.loadData('data.yml', data);
      const load = performance.now() - t0;
      const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
      const measure = async (options) => {
        const times = [];
        let result;
        for (let i = 0; i < runs; i++) {
          result = await e.backtest('rules.yml', rules, options);
          times.push(result.elapsedMs);
        }
        return { ms: median(times), evaluations: result.evaluations, transitions: result.transitions.length };
      };
      return { summary, loadMs: load, interval1m: await measure({}), step15s: await measure({ step: 15000 }) };
    },
    [readFileSync(dataPath, 'utf8'), readFileSync(rulesPath, 'utf8'), runs],
  );
  console.log(JSON.stringify(out));
  if (problems.length) throw new Error(problems.join('\n'));
} finally {
  await close();
}
