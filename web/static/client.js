// The page's handle on the engine worker: promise-based calls, progress
// events, and a watchdog. Browsers have no fuel or epochs for WebAssembly, so
// a rule module stuck in a loop is stopped the only way possible: when a call
// hears nothing (no reply, no progress) for `timeoutMs`, the worker is
// terminated and a fresh one is started, replaying the data and modules.

export class EngineClient {
  constructor({ timeoutMs = 5000, onProgress = () => {} } = {}) {
    this.timeoutMs = timeoutMs;
    this.onProgress = onProgress;
    this.nextId = 1;
    this.pending = new Map();
    // What a fresh worker needs to be back where the old one was.
    this.replay = { data: null, matrices: [], modules: new Map() };
    this.start();
  }

  start() {
    this.worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    this.worker.onmessage = (ev) => this.onMessage(ev.data);
    this.worker.onerror = (ev) => {
      ev.preventDefault();
      this.failAll(new Error(`the engine worker failed to start: ${ev.message || 'see the browser console'}`));
    };
    this.restored = this.restore();
  }

  async restore() {
    const r = this.replay;
    if (r.data) await this.raw('loadData', r.data);
    for (const json of r.matrices) await this.raw('addMatrix', { json });
    for (const [name, bytes] of r.modules) await this.raw('addModule', { name, bytes: bytes.slice(0) });
  }

  onMessage(msg) {
    if (msg.op === 'progress') {
      for (const p of this.pending.values()) p.arm();
      this.onProgress(msg.done, msg.total);
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.ok) p.resolve(msg.result);
    else p.reject(new Error(msg.error));
  }

  failAll(err) {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }

  raw(op, args, transfer = []) {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const entry = { resolve, reject, timer: 0 };
      entry.arm = () => {
        clearTimeout(entry.timer);
        entry.timer = setTimeout(() => this.timedOut(op), this.timeoutMs);
      };
      entry.arm();
      this.pending.set(id, entry);
      this.worker.postMessage({ id, op, args }, transfer);
    });
  }

  timedOut(op) {
    this.worker.terminate();
    const secs = (this.timeoutMs / 1000).toFixed(1);
    this.failAll(new Error(
      op === 'backtest'
        ? `stopped: an evaluation ran longer than ${secs}s (a .wasm rule stuck in a loop?). The engine was restarted.`
        : `stopped: the engine did not answer within ${secs}s and was restarted.`,
    ));
    this.start();
  }

  async call(op, args) {
    try {
      await this.restored;
    } catch (_) {
      // Replay failures surface on the calls that replay them.
    }
    return this.raw(op, args);
  }

  async loadData(name, text) {
    const summary = await this.call('loadData', { name, text });
    this.replay.data = { name, text };
    this.replay.matrices = [];
    return summary;
  }

  async addMatrix(json) {
    const summary = await this.call('addMatrix', { json });
    this.replay.matrices.push(json);
    return summary;
  }

  async addModule(name, bytes) {
    const info = await this.call('addModule', { name, bytes: bytes.slice(0) });
    this.replay.modules.set(name, bytes.slice(0));
    return info;
  }

  async removeModule(name) {
    this.replay.modules.delete(name);
    return this.call('removeModule', { name });
  }

  checkRules(name, text) {
    return this.call('checkRules', { name, text });
  }

  backtest(name, rules, options) {
    return this.call('backtest', { name, rules, options });
  }

  queryRange(expr, from, to, step) {
    return this.call('queryRange', { expr, from, to, step });
  }

  exportTest(ruleFile) {
    return this.call('exportTest', { ruleFile });
  }
}
