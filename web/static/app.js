// The playground page: rule and data editors, runs through the engine
// worker, and the views of a run (chart, alerts, timeline, notifications).
// State lives in `state` and, compressed, in the URL fragment so a link
// reproduces what the sender saw.
import { EngineClient } from './client.js';
import { Editor } from './editor.js';
import { Chart, formatTime, formatValue } from './chart.js';

const DEFAULT_RULES = `groups:
  - name: example
    interval: 1m
    rules:
      - alert: HighErrorRate
        expr: sum by (job) (rate(http_errors_total[5m])) / sum by (job) (rate(http_requests_total[5m])) > 0.05
        for: 5m
        labels: { severity: page }
        annotations:
          summary: "{{ $labels.job }} error ratio is {{ $value | humanizePercentage }}"
`;

const DEFAULT_SERIES = `# promtool input_series: 'a+bxN' is a, a+b, ... N more times.
interval: 1m
input_series:
  - series: 'http_requests_total{job="api"}'
    values: '0+100x60'
  - series: 'http_errors_total{job="api"}'
    values: '0+1x15 15+20x20 415+1x25'
`;

// A /metrics scrape replayed once a minute, with the sample timestamps (ms)
// that make exposition text usable as history.
function defaultExposition() {
  const t0 = Date.UTC(2024, 0, 1);
  const req = [], err = [];
  let e = 0;
  for (let i = 0; i <= 40; i++) {
    const t = t0 + i * 60_000;
    req.push(`http_requests_total{job="api"} ${i * 100} ${t}`);
    err.push(`http_errors_total{job="api"} ${e} ${t}`);
    e += i >= 10 && i < 22 ? 20 : 1;
  }
  return `# HELP http_requests_total Requests handled.\n# TYPE http_requests_total counter\n${req.join('\n')}\n` +
    `# HELP http_errors_total Requests that failed.\n# TYPE http_errors_total counter\n${err.join('\n')}\n`;
}

const DATA_FILE = { series: 'data.yml', exposition: 'data.prom' };

const state = {
  rules: DEFAULT_RULES,
  data: { kind: 'series', text: DEFAULT_SERIES },
  host: { query: '', range: '1h', start: '', end: '', step: '1m' },
  run: { from: '', to: '', step: '', labels: '' },
  chart: { rule: '', expr: '', raw: false },
};

const $ = (s) => document.querySelector(s);
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
const body = document.body;

let client = null;
let rulesEditor, dataEditor, chart;
let lastResult = null;
let dataSummary = null;
// Editor text per data kind, so switching kinds back and forth loses nothing.
const drafts = {};
const modules = new Map();

let resolveReady, rejectReady;
const ready = new Promise((res, rej) => {
  resolveReady = res;
  rejectReady = rej;
});
// A failed start is shown in the banner; nobody has to catch this.
ready.catch(() => {});

window.tocsin = {
  get client() { return client; },
  state,
  run: () => run(),
  setRules: (text) => rulesEditor.setValue(text, true),
  setData: (text, kind = 'series') => {
    setKind(kind);
    dataEditor.setValue(text, true);
  },
  get lastResult() { return lastResult; },
  ready,
};

// --- helpers

function showError(el, msg) {
  el.textContent = msg || '';
  el.hidden = !msg;
}
const banner = (msg) => showError($('#banner'), msg);

const DUR_UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 31_536_000_000 };

// Prometheus durations (`1m30s`) or plain seconds, in ms.
function parseDuration(text) {
  const s = text.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(parseFloat(s) * 1000);
  if (!/^(\d+(ms|[smhdwy]))+$/.test(s)) return null;
  let ms = 0;
  for (const m of s.matchAll(/(\d+)(ms|[smhdwy])/g)) ms += Number(m[1]) * DUR_UNITS[m[2]];
  return ms;
}

function formatDuration(ms) {
  let rest = Math.abs(ms), out = '';
  for (const u of ['d', 'h', 'm', 's', 'ms']) {
    if (rest >= DUR_UNITS[u]) out += `${Math.floor(rest / DUR_UNITS[u])}${u}`;
    rest %= DUR_UNITS[u];
  }
  return (ms < 0 ? '-' : '') + (out || '0s');
}

// A time the way an SRE would type it: RFC 3339 (UTC unless a zone is
// given), `2024-01-01 10:00`, unix seconds or ms, or `+30m` from the data's
// start.
function parseTime(text, what) {
  const s = text.trim();
  if (!s) return undefined;
  if (s[0] === '+') {
    const d = parseDuration(s.slice(1));
    if (d === null || dataSummary?.from == null) throw new Error(`${what}: "${s}" needs loaded data and a duration like +30m`);
    return dataSummary.from + d;
  }
  if (/^\d+(\.\d+)?$/.test(s)) {
    const n = parseFloat(s);
    return n > 1e11 ? Math.round(n) : Math.round(n * 1000);
  }
  const iso = s.replace(' ', 'T');
  const t = Date.parse(/(Z|[+-]\d\d:?\d\d)$/i.test(iso) ? iso : `${iso}Z`);
  if (Number.isNaN(t)) throw new Error(`${what}: cannot read "${s}"; use 2024-01-01T10:00:00Z, unix seconds or +30m`);
  return t;
}

// `name{a="b", ...}`, leaving out the labels in `skip`.
function labelsText(labels, skip = []) {
  const inner = Object.entries(labels || {}).filter(([k]) => k !== '__name__' && !skip.includes(k));
  return `${skip.includes('__name__') ? '' : labels?.__name__ || ''}{${inner.map(([k, v]) => `${k}="${v}"`).join(', ')}}`;
}

function chips(labels, skip = ['alertname']) {
  return Object.entries(labels || {})
    .filter(([k]) => !skip.includes(k))
    .map(([k, v]) => `<span class="chip"><span class="chip-k">${esc(k)}</span>=<span class="chip-v">${esc(v)}</span></span>`)
    .join('');
}

function annotationsHtml(ann) {
  return Object.entries(ann || {})
    .map(([k, v]) => `<div class="ann"><span class="ann-k">${esc(k)}</span> ${esc(v)}</div>`)
    .join('');
}

const stateBadge = (s) => `<span class="st st-${esc(s)}">${esc(s)}</span>`;
// Times in tables: the clock time (the date too when the run spans days),
// and the offset from the run's start, which is what promtool's eval_time
// counts.
function timeCell(ms, r) {
  if (ms == null) return '<span class="muted">—</span>';
  const full = formatTime(ms);
  const oneDay = formatTime(r.from).slice(0, 10) === formatTime(r.to).slice(0, 10);
  return `<span class="t" title="${full} UTC">${oneDay ? full.slice(11) : full.slice(5)}</span>` +
    ` <span class="muted off">+${formatDuration(ms - r.from)}</span>`;
}

// `rules.yml:6:15: message` lines (as the engine reports them) into editor
// problems; lines without a position continue the previous message.
function parseProblems(message, file) {
  const re = new RegExp(`^${file.replace('.', '\\.')}:(\\d+)(?::(\\d+))?:\\s*(.*)$`);
  const out = [];
  for (const line of String(message).split('\n')) {
    if (!line.trim()) continue;
    const m = line.match(re);
    if (m) out.push({ line: Number(m[1]), col: Number(m[2] || 0), message: m[3] });
    else if (out.length) out[out.length - 1].message += `\n${line}`;
    else out.push({ line: 0, col: 0, message: line });
  }
  return out;
}

function download(a, text, type) {
  if (a.href.startsWith('blob:')) URL.revokeObjectURL(a.href);
  a.href = URL.createObjectURL(new Blob([text], { type }));
}

// The host's answer as Prometheus API JSON, or an error saying why not:
// unreachable, plain text (a 401), or an HTML page (static hosting, where
// there is no host API at all).
async function hostApi(path, init) {
  const url = new URL(path, document.baseURI);
  let res;
  try {
    res = await fetch(url, init);
  } catch (e) {
    throw new Error(`could not reach ${url.origin}: ${e.message}`);
  }
  const text = await res.text();
  let j = null;
  try {
    j = JSON.parse(text);
  } catch {
    if (/^\s*</.test(text)) throw new Error(`HTTP ${res.status} from ${url.pathname}: this page is not served by tocsin (static hosting?)`);
  }
  if (!res.ok || j?.status !== 'success') throw new Error(`HTTP ${res.status}: ${j?.error || text.trim().slice(0, 300) || res.statusText}`);
  return j.data;
}

// --- sharing

function toBase64Url(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text) {
  const b = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(b, (c) => c.charCodeAt(0));
}

async function pipe(bytes, stream) {
  return new Uint8Array(await new Response(new Blob([bytes]).stream().pipeThrough(stream)).arrayBuffer());
}

async function encodeState() {
  const json = new TextEncoder().encode(JSON.stringify(state));
  return toBase64Url(await pipe(json, new CompressionStream('deflate-raw')));
}

async function decodeState(text) {
  const json = await pipe(fromBase64Url(text), new DecompressionStream('deflate-raw'));
  return JSON.parse(new TextDecoder().decode(json));
}

// Only known keys of the right type: a link is input from someone else.
function applyState(s) {
  const pick = (dst, src) => {
    for (const k of Object.keys(dst)) {
      if (src && typeof src[k] === typeof dst[k] && src[k] !== null) dst[k] = src[k];
    }
  };
  if (typeof s?.rules === 'string') state.rules = s.rules;
  pick(state.data, s?.data);
  if (!['series', 'exposition', 'host'].includes(state.data.kind)) state.data.kind = 'series';
  pick(state.host, s?.host);
  pick(state.run, s?.run);
  pick(state.chart, s?.chart);
}

let shareTimer = 0;
let writtenHash = '';
const MAX_LINK = 1_500_000;

function scheduleShare() {
  clearTimeout(shareTimer);
  shareTimer = setTimeout(() => writeHash().catch((e) => console.warn('share link:', e)), 400);
}

async function writeHash() {
  clearTimeout(shareTimer);
  const enc = await encodeState();
  if (enc.length > MAX_LINK) {
    $('#share').title = 'The state is too large for a link (paste less data)';
    return false;
  }
  writtenHash = `#s=${enc}`;
  if (location.hash !== writtenHash) history.replaceState(null, '', writtenHash);
  return true;
}

async function copyLink() {
  const btn = $('#share');
  const ok = await writeHash();
  if (!ok) return flash(btn, 'Too large', true);
  try {
    await navigator.clipboard.writeText(location.href);
    flash(btn, modules.size ? 'Copied (without modules)' : 'Copied');
  } catch {
    // No clipboard (plain http, or permission): let the user copy it.
    window.prompt('Copy this link (modules are not included):', location.href);
  }
}

function flash(btn, text, bad = false) {
  const old = (btn.dataset.label ||= btn.textContent);
  btn.textContent = text;
  btn.classList.toggle('bad', bad);
  setTimeout(() => {
    btn.textContent = old;
    btn.classList.remove('bad');
  }, 1400);
}

// --- rules

let checkTimer = 0;
let checkSeq = 0;

function scheduleCheck() {
  clearTimeout(checkTimer);
  checkTimer = setTimeout(checkRules, 300);
}

// `wasm: NAME` of a module this tab does not have: the engine would only
// say so at run time.
function moduleWarnings(text) {
  const out = [];
  text.split('\n').forEach((line, i) => {
    const m = line.match(/^(\s*(?:-\s+)?wasm:\s*)["']?([\w.-]+)/);
    if (m && !modules.has(m[2])) {
      out.push({ line: i + 1, col: m[1].length + 1, severity: 'warning',
        message: `module "${m[2]}" is not loaded: drop ${m[2]}.wasm on the page` });
    }
  });
  return out;
}

async function checkRules() {
  clearTimeout(checkTimer);
  const seq = ++checkSeq;
  const text = state.rules;
  let problems;
  try {
    problems = (await client.checkRules('rules.yml', text)).map((p) => ({ line: p.line, col: p.col, message: p.message }));
  } catch (e) {
    problems = [{ line: 0, col: 0, message: e.message }];
  }
  if (seq !== checkSeq) return;
  const errors = problems.length;
  problems.push(...moduleWarnings(text));
  rulesEditor.setProblems(problems);
  const badge = $('#rules-badge');
  badge.className = `badge ${errors ? 'bad' : problems.length ? 'warn' : 'good'}`;
  badge.textContent = errors ? `${errors} problem${errors > 1 ? 's' : ''}` : problems.length ? 'module missing' : 'valid';
}

// --- modules

async function addModuleFile(file) {
  const name = file.name.replace(/\.wasm$/i, '');
  const err = $('#module-error');
  try {
    const bytes = await file.arrayBuffer();
    const info = await client.addModule(name, bytes);
    modules.set(name, { bytes, size: info.size ?? bytes.byteLength });
    showError(err, '');
  } catch (e) {
    showError(err, `${file.name}: ${e.message}`);
  }
  renderModules();
  checkRules();
}

function renderModules() {
  $('#modules').innerHTML = [...modules].map(([name, m]) => `<li data-name="${esc(name)}"><code>${esc(name)}</code>
    <span class="muted">${(m.size / 1024).toFixed(1)} KiB</span>
    <button class="small" data-act="upload" title="POST it to this host's module registry">Upload to host</button>
    <button class="small ghost" data-act="remove" title="Remove from this tab">Remove</button>
    <div class="upload-result" hidden></div></li>`).join('');
  $('#module-upload').hidden = modules.size === 0;
}

async function onModuleClick(e) {
  const btn = e.target.closest('button[data-act]');
  if (!btn) return;
  const li = btn.closest('li'), name = li.dataset.name;
  if (btn.dataset.act === 'upload') return uploadModule(name, modules.get(name), li, btn);
  modules.delete(name);
  try {
    await client.removeModule(name);
  } catch (e) {
    showError($('#module-error'), e.message);
  }
  renderModules();
  checkRules();
}

// host/src/api/modules.rs: POST /api/v1/modules?name=N, body = the bytes,
// `Authorization: Bearer T` when the host has a token configured.
async function uploadModule(name, m, li, btn) {
  const out = li.querySelector('.upload-result');
  const token = $('#host-token').value.trim();
  const headers = { 'Content-Type': 'application/wasm' };
  if (token) headers.Authorization = `Bearer ${token}`;
  btn.disabled = true;
  out.className = 'upload-result';
  out.hidden = false;
  out.textContent = 'uploading…';
  try {
    const d = await hostApi(`api/v1/modules?name=${encodeURIComponent(name)}`, { method: 'POST', headers, body: m.bytes });
    out.classList.add('ok');
    out.textContent = `uploaded as "${d.name}" (${d.size} bytes, sha256 ${String(d.sha256).slice(0, 16)}…, ${d.uploadedAt})`;
  } catch (e) {
    out.classList.add('bad');
    out.textContent = e.message;
  } finally {
    btn.disabled = false;
  }
}

// --- data

let dataTimer = 0;
let dataSeq = 0;
let dataDirty = false;
let dataPromise = Promise.resolve();
let dataError = null;
let hostLoaded = false;

function scheduleData() {
  dataDirty = true;
  clearTimeout(dataTimer);
  dataTimer = setTimeout(loadData, 300);
}

function loadData() {
  clearTimeout(dataTimer);
  dataDirty = false;
  const { kind, text } = state.data;
  if (kind === 'host') return dataPromise;
  const name = DATA_FILE[kind];
  const seq = ++dataSeq;
  dataPromise = client.loadData(name, text).then(
    (summary) => {
      if (seq !== dataSeq) return;
      dataError = null;
      dataEditor.setProblems([]);
      showSummary(summary);
    },
    (e) => {
      if (seq !== dataSeq) return;
      dataError = e;
      dataEditor.setProblems(parseProblems(e.message, name));
      showSummary('data has errors');
    },
  );
  return dataPromise;
}

async function ensureData() {
  if (dataDirty) loadData();
  await dataPromise;
  if (state.data.kind === 'host' && !hostLoaded) throw new Error('no data from the host yet: enter a selector and press Load');
  if (dataError && state.data.kind !== 'host') throw new Error(`fix the data first: ${dataError.message}`);
}

// s: the engine's data summary, or a string saying why there is none.
function showSummary(s) {
  const el = $('#data-summary');
  el.classList.toggle('bad', typeof s === 'string');
  if (typeof s === 'string') el.textContent = s;
  else {
    dataSummary = s;
    el.textContent = !s.series ? 'no series' : `${s.series} series · ${s.samples} samples · ${formatTime(s.from, false)} → ` +
      `${formatTime(s.to, false)} UTC${s.interval ? ` · every ${formatDuration(s.interval)}` : ''}`;
    // Empty run options mean the data's range: show it.
    $('#run-from').placeholder = s.series ? formatTime(s.from) : 'data start';
    $('#run-to').placeholder = s.series ? formatTime(s.to) : 'data end';
  }
  updateStatus();
}

function setKind(kind) {
  if (!['series', 'exposition', 'host'].includes(kind)) throw new Error(`unknown data kind ${kind}`);
  const prev = state.data.kind;
  if (prev !== 'host') drafts[prev] = state.data.text;
  state.data.kind = kind;
  if (kind !== 'host' && prev !== kind) {
    state.data.text = drafts[kind] ?? (kind === 'series' ? DEFAULT_SERIES : defaultExposition());
    dataEditor.setValue(state.data.text);
    dataEditor.setMode(kind === 'series' ? 'yaml' : 'prom');
    dataEditor.setProblems([]);
  }
  renderKind();
  if (prev !== kind) {
    if (kind === 'host') {
      hostLoaded = false;
      $('#data-summary').textContent = 'load series from the host';
    } else loadData();
    scheduleShare();
  }
}

function renderKind() {
  const kind = state.data.kind;
  for (const b of document.querySelectorAll('.seg [data-kind]')) {
    b.setAttribute('aria-selected', String(b.dataset.kind === kind));
  }
  $('#data-editor').hidden = kind === 'host';
  $('#host-form').hidden = kind !== 'host';
  $('#data-problems').hidden = kind === 'host' || !dataEditor.problems.length;
  const custom = state.host.range === 'custom';
  for (const el of document.querySelectorAll('.custom-range')) el.hidden = !custom;
}

function fromLocalInput(v) {
  return v ? Date.parse(`${v}${v.length === 16 ? ':00' : ''}Z`) : NaN;
}

// Prometheus' query_range from the serving host, in place of the data.
async function loadFromHost() {
  const err = $('#host-error');
  showError(err, '');
  readHostForm();
  const h = state.host;
  try {
    if (!h.query.trim()) throw new Error('enter a PromQL selector');
    let start, end;
    if (h.range === 'custom') {
      start = fromLocalInput(h.start);
      end = fromLocalInput(h.end);
      if (Number.isNaN(start) || Number.isNaN(end)) throw new Error('set both start and end');
    } else {
      end = Date.now();
      start = end - parseDuration(h.range);
    }
    if (end <= start) throw new Error('the range ends before it starts');
    const step = parseDuration(h.step || '1m');
    if (!step) throw new Error(`cannot read the step "${h.step}"; use e.g. 30s or 1m`);
    const q = new URLSearchParams({ query: h.query, start: start / 1000, end: end / 1000, step: step / 1000 });
    const data = await hostApi(`api/v1/query_range?${q}`);
    if (data?.resultType !== 'matrix') throw new Error(`expected a range vector (matrix), got ${data?.resultType}`);
    await client.loadData('data.yml', 'input_series: []');
    const summary = await client.addMatrix(JSON.stringify(data.result));
    hostLoaded = true;
    showSummary(summary);
    if (!data.result.length) showError(err, 'the selector matched no series in that range');
  } catch (e) {
    showError(err, e.message);
  }
}

function readHostForm() {
  for (const k of Object.keys(state.host)) state.host[k] = $(`#host-${k}`).value;
}

// --- run

let running = null;

function onProgress(done, total) {
  const p = $('#progress');
  p.max = total || 1;
  p.value = done;
  if (body.dataset.state === 'running') $('#status').textContent = `evaluating ${done} / ${total}`;
}

const RUN_INPUTS = { from: '#run-from', to: '#run-to', step: '#run-step', labels: '#run-labels' };

function readRunOptions() {
  for (const [k, id] of Object.entries(RUN_INPUTS)) state.run[k] = $(id).value;
  const r = state.run;
  const opts = {};
  const from = parseTime(r.from, 'From'), to = parseTime(r.to, 'To');
  if (from !== undefined) opts.from = from;
  if (to !== undefined) opts.to = to;
  if (r.step.trim()) {
    const step = parseDuration(r.step);
    if (!step) throw new Error(`Step: cannot read "${r.step}"; use e.g. 30s or 1m`);
    opts.step = step;
  }
  if (r.labels.trim()) {
    opts.external_labels = {};
    for (const part of r.labels.split(',')) {
      const m = part.trim().match(/^([a-zA-Z_]\w*)\s*=\s*"?(.*?)"?$/);
      if (!m) throw new Error(`External labels: cannot read "${part.trim()}"; use name=value, name=value`);
      opts.external_labels[m[1]] = m[2];
    }
  }
  return opts;
}

// A run asked for while one is under way starts after it (once, however
// often asked), so it sees the edits made in the meantime.
let queued = null;

function run() {
  if (!running) {
    running = doRun().finally(() => {
      running = null;
    });
    return running;
  }
  if (!queued) {
    queued = running.catch(() => {}).then(() => {
      queued = null;
      return run();
    });
  }
  return queued;
}

async function doRun() {
  body.dataset.state = 'running';
  $('#run').disabled = true;
  showError($('#run-error'), '');
  showError($('#run-opts-error'), '');
  const p = $('#progress');
  try {
    let opts;
    try {
      opts = readRunOptions();
    } catch (e) {
      showError($('#run-opts-error'), e.message);
      throw e;
    }
    await ensureData();
    p.value = 0;
    p.hidden = false;
    $('#status').textContent = 'running…';
    const result = await client.backtest('rules.yml', state.rules, opts);
    lastResult = result;
    await renderResult(result);
    body.dataset.state = 'done';
    updateStatus();
    return result;
  } catch (e) {
    const problems = parseProblems(e.message, 'rules.yml');
    const positioned = problems.filter((x) => x.line > 0);
    if (positioned.length) rulesEditor.setProblems(positioned);
    showError($('#run-error'), e.message);
    body.dataset.state = 'error';
    updateStatus();
    throw e;
  } finally {
    $('#run').disabled = false;
    p.hidden = true;
  }
}

function updateStatus() {
  const st = $('#status');
  if (!client || body.dataset.state === 'running') return;
  const parts = [];
  if (dataSummary?.series) parts.push(`${dataSummary.series} series loaded`);
  if (body.dataset.state === 'error') parts.push('<span class="bad">run failed</span>');
  else if (lastResult) {
    parts.push(`last run: ${lastResult.evaluations} evaluations in ${lastResult.elapsedMs < 10 ? lastResult.elapsedMs.toFixed(1) : Math.round(lastResult.elapsedMs)} ms`);
    const firing = new Set(lastResult.transitions.filter((t) => t.to === 'firing').map((t) => t.rule)).size;
    parts.push(firing ? `<span class="bad">${firing} rule${firing > 1 ? 's' : ''} fired</span>` : 'nothing fired');
  } else parts.push('ready: press Run');
  st.innerHTML = parts.join(' · ');
}

// --- results

const labelsKey = (l) => JSON.stringify(Object.entries(l || {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

// Per alert (rule + labels): its active episodes, each a list of pending and
// firing segments. An episode opens at a pending or firing transition and
// closes at resolved (or at inactive, when a pending alert clears before
// `for` elapsed); one still open at the end runs to the end of the range.
function alertEpisodes(r) {
  const byKey = new Map();
  for (const t of r.transitions) {
    const key = `${t.group}\u0000${t.rule}\u0000${labelsKey(t.labels)}`;
    if (!byKey.has(key)) byKey.set(key, []);
    byKey.get(key).push({ ...t, ms: Date.parse(t.time) });
  }
  const alerts = [];
  for (const [key, list] of byKey) {
    list.sort((a, b) => a.ms - b.ms);
    const episodes = [];
    let cur = null;
    const close = (ms) => {
      const seg = cur.segs.at(-1);
      if (seg && seg.to == null) seg.to = ms;
    };
    for (const t of list) {
      if (t.to === 'pending' || t.to === 'firing') {
        if (!cur) {
          cur = { group: t.group, rule: t.rule, labels: t.labels, activeAt: t.ms, firedAt: null, resolvedAt: null, segs: [] };
          episodes.push(cur);
        } else close(t.ms);
        cur.segs.push({ kind: t.to, from: t.ms, to: null });
        if (t.to === 'firing' && cur.firedAt == null) cur.firedAt = t.ms;
        cur.state = t.to;
        cur.value = t.value;
        if (t.annotations && Object.keys(t.annotations).length) cur.annotations = t.annotations;
      } else if (cur) {
        close(t.ms);
        cur.state = t.to === 'resolved' ? 'resolved' : 'cancelled';
        if (t.to === 'resolved') cur.resolvedAt = t.ms;
        cur = null;
      }
    }
    if (cur) close(r.to);
    alerts.push({ key, labels: list[0].labels, group: list[0].group, rule: list[0].rule, episodes });
  }
  return alerts;
}

function mergeBands(segs) {
  const out = [];
  for (const kind of ['pending', 'firing']) {
    const xs = segs.filter((s) => s.kind === kind).sort((a, b) => a.from - b.from);
    let cur = null;
    for (const s of xs) {
      if (cur && s.from <= cur.to) cur.to = Math.max(cur.to, s.to);
      else {
        cur = { kind, from: s.from, to: s.to };
        out.push(cur);
      }
    }
  }
  return out;
}

// A top-level comparison with a number (`... > 0.05`): chart the left side
// and draw the number as a threshold line, so the values below it that the
// filter drops stay visible.
function splitThreshold(expr) {
  let depth = 0, quote = '', found = null;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = '';
      continue;
    }
    if (c === '"' || c === "'" || c === '`') quote = c;
    else if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) depth--;
    else if (c === '#') break;
    else if (depth === 0) {
      const m = expr.slice(i).match(/^(>=|<=|==|!=|>|<)/);
      if (m) {
        if (found) return null;
        found = { at: i, op: m[1] };
        i += m[1].length - 1;
      } else if (/^\s(and|or|unless)\s/i.test(expr.slice(i - 1 < 0 ? 0 : i - 1, i + 8))) return null;
    }
  }
  if (!found) return null;
  const rhs = expr.slice(found.at + found.op.length).trim();
  const lhs = expr.slice(0, found.at).trim();
  if (!lhs || /^bool\b/.test(rhs) || !/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(rhs)) return null;
  return { lhs, op: found.op, value: Number(rhs) };
}

function ruleKey(rule) {
  return `${rule.group}/${rule.name}`;
}

function renderRuleSelect(r) {
  const sel = $('#chart-rule');
  const rules = r.rules || [];
  const groups = [['alert', 'Alerting rules'], ['record', 'Recording rules']].map(([kind, label]) => {
    const og = document.createElement('optgroup');
    og.label = label;
    rules.forEach((rule, i) => {
      if (rule.kind !== kind) return;
      const o = document.createElement('option');
      o.value = String(i);
      const dup = rules.filter((x) => x.name === rule.name).length > 1;
      o.textContent = `${rule.name}${dup ? ` (${rule.group})` : ''}${rule.wasm ? ' [wasm]' : ''}`;
      og.append(o);
    });
    return og;
  }).filter((og) => og.children.length);
  sel.replaceChildren(...groups);
  let idx = rules.findIndex((rule) => ruleKey(rule) === state.chart.rule);
  if (idx < 0) idx = Math.max(0, rules.findIndex((rule) => rule.kind === 'alert'));
  if (rules.length) sel.value = String(idx);
  sel.disabled = !rules.length;
}

function selectedRule() {
  const r = lastResult;
  const i = Number($('#chart-rule').value);
  return r?.rules?.[i] || null;
}

let chartSeq = 0;

async function updateChart() {
  const r = lastResult;
  if (!r) return;
  const seq = ++chartSeq;
  const rule = selectedRule();
  const custom = state.chart.expr.trim();
  const errEl = $('#chart-error');
  let series = [], threshold = null, note = '', empty = 'no data';
  try {
    if (custom) {
      series = await client.queryRange(custom, r.from, r.to, r.step);
      note = `<code>${esc(custom)}</code>`;
      empty = 'the expression returned no series in this range';
    } else if (rule?.wasm) {
      series = (r.alertValues || []).filter((a) => a.group === rule.group && a.rule === rule.name)
        .map((a) => ({ labels: a.labels, points: a.points }));
      note = `values of <code>wasm: ${esc(rule.wasm)}</code> at each evaluation`;
      empty = 'the module returned no samples';
    } else if (rule) {
      const split = !state.chart.raw && rule.kind === 'alert' ? splitThreshold(rule.expr) : null;
      const expr = split ? split.lhs : rule.expr;
      if (split) threshold = { value: split.value, label: `${split.op} ${formatValue(split.value)}` };
      series = await client.queryRange(expr, r.from, r.to, r.step);
      note = `<code>${esc(expr)}</code>${split ? ` <span class="muted">— threshold <code>${esc(split.op)} ${esc(split.value)}</code> dashed</span>` : ''}`;
      empty = 'the expression returned no series in this range';
    }
    showError(errEl, '');
  } catch (e) {
    if (seq !== chartSeq) return;
    showError(errEl, e.message);
  }
  if (seq !== chartSeq) return;
  $('#chart-note').innerHTML = note;
  const segs = [];
  // The selected rule's bands stay behind a custom expression too: that is
  // how one checks a candidate expression against when the rule fired.
  if (rule) {
    for (const a of alertEpisodes(r)) {
      if (a.group === rule.group && a.rule === rule.name) for (const ep of a.episodes) segs.push(...ep.segs);
    }
  }
  chart.setData({
    series: series.map((s) => ({ label: labelsText(s.labels), points: s.points })),
    bands: mergeBands(segs),
    threshold,
    from: r.from,
    to: r.to,
    empty,
  });
}

function renderAlerts(r, alerts) {
  const rows = alerts.flatMap((a) => a.episodes.map((ep) => ({ ...ep, labels: a.labels })))
    .sort((x, y) => x.activeAt - y.activeAt);
  $('#alerts-count').textContent = rows.length ? `${rows.length}` : '';
  $('#alerts tbody').innerHTML = rows.length ? rows.map((e) => `<tr>
      <td>${stateBadge(e.state)}</td><td class="rule">${esc(e.rule)}</td><td>${chips(e.labels)}</td>
      <td class="anns">${annotationsHtml(e.annotations)}</td>
      <td>${timeCell(e.activeAt, r)}</td><td>${timeCell(e.firedAt, r)}</td><td>${timeCell(e.resolvedAt, r)}</td></tr>`).join('')
    : '<tr class="empty"><td colspan="7">No alert became active in this range.</td></tr>';
}

const MAX_ROWS = 1000;

function renderTimeline(r, alerts) {
  const ts = r.transitions;
  $('#timeline-count').textContent = ts.length ? `${ts.length} transition${ts.length > 1 ? 's' : ''}` : '';
  const rows = ts.slice(0, MAX_ROWS).map((t) => `<tr>
      <td>${timeCell(Date.parse(t.time), r)}</td><td class="rule">${esc(t.rule)}</td>
      <td>${t.from ? stateBadge(t.from) : '<span class="muted">new</span>'} → ${stateBadge(t.to)}</td>
      <td class="num">${esc(formatValue(t.value === null ? null : Number(t.value)))}</td><td>${chips(t.labels)}</td></tr>`);
  if (ts.length > MAX_ROWS) rows.push(`<tr class="empty"><td colspan="5">… ${ts.length - MAX_ROWS} more not shown</td></tr>`);
  $('#timeline tbody').innerHTML = rows.length ? rows.join('')
    : '<tr class="empty"><td colspan="5">No state changes.</td></tr>';

  // One row per alert, segments placed on the chart's time axis.
  const span = r.to - r.from || 1;
  const pct = (ms) => `${Math.max(0, Math.min(100, ((ms - r.from) / span) * 100)).toFixed(3)}%`;
  const MAX_TL = 40;
  const vis = alerts.slice(0, MAX_TL).map((a) => {
    const segs = a.episodes.flatMap((ep) => ep.segs).map((s) => {
      const w = Math.max(0.2, ((Math.min(s.to, r.to) - Math.max(s.from, r.from)) / span) * 100);
      return `<span class="seg-${s.kind}" style="left:${pct(s.from)};width:${w.toFixed(3)}%" title="${s.kind} ${formatTime(s.from)} → ${formatTime(s.to)} (${formatDuration(s.to - s.from)})"></span>`;
    }).join('');
    const label = `${a.rule} ${labelsText(a.labels, ['__name__', 'alertname'])}`;
    return `<div class="tl-row"><div class="tl-label" title="${esc(label)}">${esc(label)}</div><div class="tl-bar">${segs}</div></div>`;
  });
  if (alerts.length > MAX_TL) vis.push(`<div class="tl-more">+${alerts.length - MAX_TL} more alerts</div>`);
  const axis = alerts.length
    ? `<div class="tl-row tl-axis"><div class="tl-label"></div><div class="tl-bar"><span>${formatTime(r.from, false)}</span><span>${formatTime(r.to, false)} UTC</span></div></div>` : '';
  $('#timeline-visual').innerHTML = vis.join('') + axis;
}

const MAX_NOTIFICATIONS = 200;
const ALERTS_PER_NOTIFICATION = 10;

function renderNotifications(r) {
  const ns = r.notifications;
  $('#notifications-count').textContent = ns.length ? `${ns.length} sent` : '';
  const html = ns.slice(0, MAX_NOTIFICATIONS).map((n) => `<div class="notif">
      <div class="notif-head">${timeCell(Date.parse(n.time), r)}
        <b>${esc(n.rule)}</b><span class="muted">${esc(n.group)}</span>
        <span class="muted">${n.alerts.length} alert${n.alerts.length > 1 ? 's' : ''}</span></div>
      <table class="grid mini"><tbody>${n.alerts.slice(0, ALERTS_PER_NOTIFICATION).map((a) => `<tr><td>${stateBadge(a.status)}</td><td>${chips(a.labels, [])}</td>
        <td class="anns">${annotationsHtml(a.annotations)}</td>
        <td class="nowrap"><span class="muted">startsAt</span> ${esc(a.startsAt)}<br><span class="muted">endsAt</span> ${esc(a.endsAt)}</td></tr>`).join('')}
      ${n.alerts.length > ALERTS_PER_NOTIFICATION ? `<tr><td colspan="4" class="muted">… ${n.alerts.length - ALERTS_PER_NOTIFICATION} more alerts in this notification</td></tr>` : ''}
      </tbody></table></div>`);
  if (ns.length > MAX_NOTIFICATIONS) html.push(`<div class="tl-more">… ${ns.length - MAX_NOTIFICATIONS} more not shown</div>`);
  $('#notifications').innerHTML = html.join('') || '<div class="empty">Nothing would be sent.</div>';
}

// Evaluation errors repeat every interval: one line per rule and message.
function renderRuleErrors(r) {
  const box = $('#rule-errors');
  const groups = new Map();
  for (const e of r.errors) {
    const k = `${e.group}\u0000${e.rule}\u0000${e.error}`;
    const g = groups.get(k) || { ...e, count: 0, first: e.time, last: e.time };
    g.count++;
    g.last = e.time;
    groups.set(k, g);
  }
  box.hidden = groups.size === 0;
  box.innerHTML = groups.size ? `<b>Rule evaluation errors</b><ul>${[...groups.values()].map((g) =>
    `<li><span class="rule">${esc(g.rule)}</span> <span class="muted">(${esc(g.group)})</span>: ${esc(g.error)}
      <span class="muted">— ${g.count}× from ${esc(g.first)}${g.count > 1 ? ` to ${esc(g.last)}` : ''}</span></li>`).join('')}</ul>` : '';
}

async function renderResult(r) {
  const alerts = alertEpisodes(r);
  renderRuleErrors(r);
  renderRuleSelect(r);
  renderAlerts(r, alerts);
  renderTimeline(r, alerts);
  renderNotifications(r);
  await updateChart();
}

// --- export

async function exportTest() {
  const btn = $('#export-test');
  btn.disabled = true;
  try {
    // Always a fresh run: the test must describe the rules and data as they
    // are now, the same rules.yml offered next to it.
    await run();
    const text = await client.exportTest('rules.yml');
    download($('#dl-test'), text, 'application/yaml');
    download($('#dl-rules'), state.rules, 'application/yaml');
    $('#export-preview').textContent = text;
    $('#export-panel').hidden = false;
    $('#export-panel').scrollIntoView({ behavior: 'smooth', block: 'nearest' });
  } catch (e) {
    showError($('#run-error'), `export: ${e.message}`);
  } finally {
    btn.disabled = false;
  }
}

// --- wiring

function syncInputsFromState() {
  for (const [k, id] of Object.entries(RUN_INPUTS)) $(id).value = state.run[k];
  for (const k of Object.keys(state.host)) $(`#host-${k}`).value = state.host[k];
  $('#chart-expr').value = state.chart.expr;
  $('#chart-raw').checked = state.chart.raw;
}

// Text files dropped on the page: a rule file goes to the rule editor,
// anything else to the data editor.
async function dropText(file) {
  const text = await file.text();
  if (/^\s*groups\s*:/m.test(text)) return window.tocsin.setRules(text);
  window.tocsin.setData(text, /^\s*input_series\s*:/m.test(text) ? 'series' : 'exposition');
}

function wire() {
  $('#run').addEventListener('click', () => run().catch(() => {}));
  document.addEventListener('keydown', (e) => {
    if (!(e.ctrlKey || e.metaKey) || e.key !== 'Enter') return;
    e.preventDefault();
    run().catch(() => {});
  });
  for (const [k, id] of Object.entries(RUN_INPUTS)) {
    $(id).addEventListener('input', () => {
      state.run[k] = $(id).value;
      scheduleShare();
    });
    $(id).addEventListener('keydown', (e) => e.key === 'Enter' && run().catch(() => {}));
  }
  $('#chart-rule').addEventListener('change', () => {
    const rule = selectedRule();
    state.chart.rule = rule ? ruleKey(rule) : '';
    updateChart();
    scheduleShare();
  });
  const chartInput = (e) => {
    if (e.type === 'keydown' && e.key !== 'Enter') return;
    const { expr, raw } = state.chart;
    state.chart.expr = $('#chart-expr').value;
    state.chart.raw = $('#chart-raw').checked;
    if (expr === state.chart.expr && raw === state.chart.raw && e.type !== 'keydown') return;
    updateChart();
    scheduleShare();
  };
  for (const ev of ['keydown', 'change']) $('#chart-expr').addEventListener(ev, chartInput);
  $('#chart-raw').addEventListener('change', chartInput);
  for (const b of document.querySelectorAll('.seg [data-kind]')) {
    b.addEventListener('click', () => setKind(b.dataset.kind));
  }
  $('#host-form').addEventListener('submit', (e) => {
    e.preventDefault();
    loadFromHost();
  });
  $('#host-form').addEventListener('input', () => {
    readHostForm();
    renderKind();
    scheduleShare();
  });
  $('#module-file').addEventListener('change', async (e) => {
    for (const f of e.target.files) await addModuleFile(f);
    e.target.value = '';
  });
  $('#modules').addEventListener('click', onModuleClick);
  $('#module-upload').addEventListener('submit', (e) => e.preventDefault());
  $('#export-test').addEventListener('click', exportTest);
  $('#export-close').addEventListener('click', () => { $('#export-panel').hidden = true; });
  $('#share').addEventListener('click', () => copyLink().catch((e) => flash($('#share'), e.message, true)));

  // Drops anywhere on the page; the overlay says what will happen.
  // dragenter/dragleave fire for every child crossed: count them.
  const overlay = $('#drop-overlay');
  let depth = 0;
  const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
  addEventListener('dragenter', (e) => {
    if (hasFiles(e)) overlay.hidden = !++depth;
  });
  addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    overlay.hidden = !depth;
  });
  addEventListener('dragover', (e) => hasFiles(e) && e.preventDefault());
  addEventListener('drop', async (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    overlay.hidden = !(depth = 0);
    for (const f of e.dataTransfer.files) {
      if (/\.wasm$/i.test(f.name)) await addModuleFile(f);
      else await dropText(f);
    }
  });
  // Another link pasted into this tab changes only the fragment: start
  // over from it.
  addEventListener('hashchange', () => {
    if (location.hash !== writtenHash) location.reload();
  });
}


async function start() {
  if (location.hash.startsWith('#s=')) {
    try {
      applyState(await decodeState(location.hash.slice(3)));
      writtenHash = location.hash;
    } catch (e) {
      banner(`This link's state could not be read (${e.message}); showing the example instead.`);
    }
  }
  rulesEditor = new Editor($('#rules-editor'), {
    value: state.rules, mode: 'yaml', problems: $('#rule-problems'), label: 'Rule file (YAML)',
    onChange: (text) => {
      state.rules = text;
      scheduleCheck();
      scheduleShare();
    },
  });
  dataEditor = new Editor($('#data-editor'), {
    value: state.data.text, mode: state.data.kind === 'exposition' ? 'prom' : 'yaml', problems: $('#data-problems'),
    label: 'Data',
    onChange: (text) => {
      state.data.text = text;
      scheduleData();
      scheduleShare();
    },
  });
  chart = new Chart($('#chart'), { height: 300 });
  chart.setData({ empty: 'Run the rules (Ctrl+Enter) to chart them' });
  syncInputsFromState();
  renderKind();
  wire();

  client = new EngineClient({ onProgress });
  // The first call waits for the worker and the engine bundle: a failure
  // here is a page that cannot work, said in the banner.
  try {
    await client.checkRules('rules.yml', 'groups: []');
  } catch (e) {
    throw new Error(`the engine did not start: ${e.message}. The page needs tocsin_web.js and tocsin_web_bg.wasm next to it (serve it with \`tocsin serve\` or \`tocsin playground export DIR\`).`);
  }
  await checkRules();
  if (state.data.kind === 'host') {
    await loadFromHost();
  } else {
    await loadData();
  }
  updateStatus();
  // Open on results, as the link's sender saw them; a failing run shows
  // its error in place like any other.
  if (state.data.kind !== 'host' || hostLoaded) await run().catch(() => {});
}

start().then(
  () => resolveReady(),
  (e) => {
    console.warn(e);
    banner(`The playground could not start: ${e.message}`);
    $('#status').textContent = 'engine unavailable';
    body.dataset.state = 'error';
    rejectReady(e);
  },
);
