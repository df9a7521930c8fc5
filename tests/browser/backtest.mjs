// Runs rules over data in the playground and prints the result JSON, for
// comparison with `tocsin backtest --json` on the same files.
// usage: node backtest.mjs URL RULES DATA OUT [MODULE.wasm...] [--from MS --to MS --step MS]
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { openPlayground, engineClient, addModule } from './lib.mjs';

const args = process.argv.slice(2);
const opts = {};
for (const k of ['from', 'to', 'step']) {
  const i = args.indexOf(`--${k}`);
  if (i >= 0) {
    opts[k] = Number(args[i + 1]);
    args.splice(i, 2);
  }
}
const [url, rulesPath, dataPath, outPath, ...modules] = args;
const { page, problems, close } = await openPlayground(url, { ui: false });
try {
  await engineClient(page);
  for (const m of modules) await addModule(page, basename(m).replace(/\.wasm$/, ''), readFileSync(m));
  const rules = readFileSync(rulesPath, 'utf8');
  const data = readFileSync(dataPath, 'utf8');
  const result = await page.evaluate(
    async ([rules, data, dataName, opts]) => {
      await window.engine.loadData(dataName, data);
      return window.engine.backtest('rules.yml', rules, opts);
    },
    [rules, data, basename(dataPath), opts],
  );
  writeFileSync(outPath, JSON.stringify(result, null, 2));
  if (problems.length) throw new Error(problems.join('\n'));
} finally {
  await close();
}
