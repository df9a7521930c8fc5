// The playground as a user meets it, in Chromium: load the page, edit the
// rule, run it, see the chart, alert table, timeline and notifications; break
// the YAML, the PromQL and the data and see each error where it is; reload
// from the shared URL and get the same state back. Screenshots go to the
// artifacts directory. Prints "ok" on success; any failure throws.
// usage: node playground.mjs URL ARTIFACTS_DIR
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { openPlayground } from './lib.mjs';

const [url, artifacts] = process.argv.slice(2);
mkdirSync(artifacts, { recursive: true });

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function setEditor(page, id, text) {
  const input = page.locator(`#${id} .editor-input`);
  await input.fill(text);
}

async function runAndWait(page) {
  await page.click('#run');
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 30000 });
  return page.evaluate(() => document.body.dataset.state);
}

// Something other than the background was drawn on the chart's canvas.
async function chartHasInk(page) {
  return page.evaluate(() => {
    const c = document.querySelector('#chart canvas');
    if (!c || !c.width || !c.height) return false;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const seen = new Set();
    for (let i = 0; i < d.length; i += 4 * 97) seen.add(`${d[i]},${d[i + 1]},${d[i + 2]},${d[i + 3]}`);
    return seen.size > 3;
  });
}

const RULES = `groups:
  - name: checkout
    interval: 1m
    rules:
      - alert: CheckoutErrors
        expr: sum by (job) (rate(http_errors_total[5m])) > 0.1
        for: 3m
        labels: {severity: page}
        annotations:
          summary: "{{ $labels.job }} fails {{ $value | humanize }} requests/s"
`;
const DATA = `interval: 1m
input_series:
  - series: 'http_errors_total{job="checkout", instance="a"}'
    values: '0+1x20 20+30x20 620+1x30'
  - series: 'http_errors_total{job="search", instance="b"}'
    values: '0+2x70'
`;

const { page, problems, close } = await openPlayground(url);
try {
  // 1. The default example runs as it is.
  check((await runAndWait(page)) === 'done', `the default example did not run: ${await page.textContent('#run-error')}`);
  check(await chartHasInk(page), 'the chart is empty after running the default example');

  // 2. Edit the rule and the data, run, see every result view.
  await setEditor(page, 'data-editor', DATA);
  await setEditor(page, 'rules-editor', RULES);
  check((await runAndWait(page)) === 'done', `the edited rule did not run: ${await page.textContent('#run-error')}`);
  const result = await page.evaluate(() => window.tocsin.lastResult);
  const states = result.transitions.map((t) => t.to);
  check(states.includes('pending') && states.includes('firing') && states.includes('resolved'),
    `expected pending, firing and resolved, got ${states}`);
  check(await chartHasInk(page), 'the chart is empty');
  const alertRows = await page.locator('#alerts tbody tr').count();
  check(alertRows >= 1, 'the alert table has no rows');
  check((await page.textContent('#alerts')).includes('checkout'), 'the alert table does not show the alert labels');
  check((await page.locator('#timeline tbody tr').count()) >= 3, 'the timeline has fewer than 3 transitions');
  check((await page.textContent('#notifications')).includes('CheckoutErrors'), 'no notifications listed');
  await page.screenshot({ path: join(artifacts, 'playground.png'), fullPage: true });

  // 3. The shared URL restores the edited state in a fresh page.
  await page.waitForFunction(() => location.hash.length > 10, null, { timeout: 10000 });
  await page.waitForTimeout(600);
  const shared = await page.evaluate(() => location.href);
  const again = await openPlayground(shared);
  try {
    const rules = await again.page.inputValue('#rules-editor .editor-input');
    check(rules === RULES, `the shared link restored different rules:\n${rules}`);
    const data = await again.page.inputValue('#data-editor .editor-input');
    check(data === DATA, 'the shared link restored different data');
    check(again.problems.length === 0, again.problems.join('\n'));
  } finally {
    await again.close();
  }

  // 4. Errors are shown where they are.
  await setEditor(page, 'rules-editor', RULES.replace('rate(http_errors_total[5m])', 'rate(http_errors_total[5m]'));
  await page.waitForSelector('#rule-problems .problem', { timeout: 10000 });
  const promqlProblem = await page.textContent('#rule-problems');
  check(/unclosed|expected|parse/i.test(promqlProblem), `no PromQL error shown: ${promqlProblem}`);
  check((await page.locator('#rules-editor .has-error').count()) >= 1, 'the PromQL error line is not marked');
  const errLine = await page.locator('#rules-editor .has-error').first().textContent();
  check(errLine.trim() === '6', `the PromQL error is marked on line ${errLine}, expected 6`);

  await setEditor(page, 'rules-editor', 'groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: up\n        fore: 5m\n');
  await page.waitForFunction(() => /fore/.test(document.querySelector('#rule-problems').textContent), null, { timeout: 10000 });
  check((await runAndWait(page)) === 'error', 'running a broken rule file did not report an error');
  check((await page.textContent('#run-error')).length > 0, 'the run error is not shown');
  await page.screenshot({ path: join(artifacts, 'playground-rule-error.png'), fullPage: true });

  await setEditor(page, 'rules-editor', RULES);
  await setEditor(page, 'data-editor', DATA.replace("'0+2x70'", "'0+2x70 oops'"));
  await page.waitForSelector('#data-problems .problem', { timeout: 10000 });
  check((await page.locator('#data-editor .has-error').count()) >= 1, 'the data error line is not marked');
  await page.screenshot({ path: join(artifacts, 'playground-data-error.png'), fullPage: true });

  check(problems.length === 0, `page errors:\n${problems.join('\n')}`);
  console.log('ok');
} finally {
  await close();
}
