// The engine's Web Worker: tocsin-engine (wasm-bindgen build of web/) plus
// the runner for user .wasm rules. Everything heavy happens here, so the page
// stays responsive, and a module that never returns can be stopped by
// terminating this worker (see client.js).
import init, { Playground } from './tocsin_web.js';
import { GuestRunner } from './guest.js';

// The bundle's path is given explicitly: the glue is generated without a
// default one (see host/build.rs).
const ready = init({ module_or_path: new URL('./tocsin_web_bg.wasm', import.meta.url) });
// Each request awaits `ready` and reports its failure; this keeps the same
// rejection from also surfacing as an unhandled one.
ready.catch(() => {});
let playground = null;
const runner = new GuestRunner();
let lastBeat = 0;
// The engine calls this after every evaluation time: forward a throttled
// heartbeat so the watchdog knows the run is alive.
runner.progress = (done, total) => {
  const now = performance.now();
  if (now - lastBeat > 100 || done === total) {
    lastBeat = now;
    postMessage({ op: 'progress', done, total });
  }
};

// A Prometheus API matrix (`data.result` of /api/v1/query_range) as
// exposition text with millisecond timestamps, which the engine loads like a
// pasted /metrics snapshot. Series without a metric name (a query rather than
// a selector) cannot be written that way and are refused by name.
function matrixToText(result) {
  if (!Array.isArray(result)) throw new Error('host data: expected a matrix (a JSON array of series)');
  const esc = (v) => String(v).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
  const lines = [];
  for (const s of result) {
    const { __name__: name, ...labels } = s.metric || {};
    if (!name) throw new Error(`host data: a series without a metric name (${JSON.stringify(s.metric)}): fetch a selector, not an expression`);
    const ls = Object.entries(labels).map(([k, v]) => `${k}="${esc(v)}"`).join(',');
    for (const [t, v] of s.values || []) lines.push(`${name}{${ls}} ${v} ${Math.round(t * 1000)}`);
  }
  return lines.join('\n') + '\n';
}

const ops = {
  loadData: ({ name, text }) => JSON.parse(playground.load_data(name, text)),
  addMatrix: ({ json }) => JSON.parse(playground.add_data('host.prom', matrixToText(JSON.parse(json)))),
  checkRules: ({ name, text }) => JSON.parse(playground.check_rules(name, text)),
  addModule: ({ name, bytes }) => runner.add(name, new Uint8Array(bytes)),
  removeModule: ({ name }) => runner.remove(name),
  backtest: ({ name, rules, options }) => {
    const started = performance.now();
    const o = options || {};
    const num = (v) => (v === undefined || v === null || v === '' ? NaN : Number(v));
    const ext = Object.entries(o.external_labels || {}).map(([k, v]) => `${k}=${v}`).join('\n');
    const result = JSON.parse(playground.backtest(name, rules, num(o.from), num(o.to), num(o.step), ext, runner));
    result.elapsedMs = performance.now() - started;
    return result;
  },
  queryRange: ({ expr, from, to, step }) => JSON.parse(playground.query_range(expr, from, to, step)),
  exportTest: ({ ruleFile }) => playground.export_test(ruleFile),
};

onmessage = async (ev) => {
  const { id, op, args } = ev.data;
  try {
    await ready;
    if (!playground) playground = new Playground();
    const fn = ops[op];
    if (!fn) throw new Error(`unknown operation ${op}`);
    postMessage({ id, ok: true, result: fn(args || {}) });
  } catch (e) {
    postMessage({ id, ok: false, error: e instanceof Error ? e.message : String(e) });
  }
};
