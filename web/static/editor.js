// A small code editor: a transparent <textarea> (which keeps native editing,
// undo, IME and accessibility) over a <pre> that shows the same text
// highlighted. Both use the same font metrics and no wrapping, so scrolling
// one and moving the other by the same offset keeps them aligned.
//
// Modes: 'yaml' (rule files and promtool input_series, with PromQL inside
// `expr:` and `series:` values) and 'prom' (exposition text).

const AGGREGATIONS = new Set('sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk limit_ratio'.split(' '));
const KEYWORDS = new Set('by without on ignoring group_left group_right offset bool and or unless atan2 start end'.split(' '));

const esc = (s) => s.replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));

// PromQL (and exposition lines, which are a subset lexically) into
// [text, class] tokens. `braces` is the matcher depth carried in from a
// previous line, so a selector split over lines still colours its labels.
function promTokens(src, out, ctx = { braces: 0 }) {
  const re = /(\s+)|(#.*)|("(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|`[^`]*`?)|(\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*\b)|(0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|\b(?:Inf|NaN)\b)|([A-Za-z_:][\w:.]*)|(=~|!~|!=|==|>=|<=|[-+*/%^<>=@,])|([(){}[\]])|(.)/gy;
  let m;
  while ((m = re.exec(src)) !== null) {
    const [t, ws, cmt, str, dur, num, ident, op, br] = m;
    if (ws) out.push([t, '']);
    else if (cmt) out.push([t, 't-cmt']);
    else if (str) out.push([t, 't-str']);
    else if (dur) out.push([t, 't-dur']);
    else if (num) out.push([t, 't-num']);
    else if (ident) {
      const next = src.slice(re.lastIndex).match(/^\s*(.)/)?.[1];
      let cls = 't-metric';
      if (ctx.braces > 0) cls = 't-label';
      else if (AGGREGATIONS.has(ident) && (next === '(' || next === 'b' || next === 'w')) cls = 't-agg';
      else if (KEYWORDS.has(ident)) cls = 't-kw';
      // A name before `(` that is no keyword can only be a function call.
      else if (next === '(') cls = 't-fn';
      out.push([t, cls]);
    } else if (op) out.push([t, 't-op']);
    else if (br) {
      if (t === '{') ctx.braces++;
      if (t === '}') ctx.braces = Math.max(0, ctx.braces - 1);
      out.push([t, 't-punct']);
    } else out.push([t, '']);
  }
  return out;
}

// Alertmanager-style templates inside annotation strings.
function stringTokens(s, out) {
  let last = 0;
  for (const m of s.matchAll(/\{\{.*?(?:\}\}|$)/g)) {
    if (m.index > last) out.push([s.slice(last, m.index), 't-str']);
    out.push([m[0], 't-tpl']);
    last = m.index + m[0].length;
  }
  if (last < s.length) out.push([s.slice(last), 't-str']);
}

// A plain YAML scalar value (or a flow mapping/sequence like `{ a: b }`).
function scalarTokens(v, out) {
  if (/^["']/.test(v)) return stringTokens(v, out);
  if (/^[[{]/.test(v)) {
    for (const m of v.matchAll(/([{}[\],])|([\w.-]+)(\s*:)|("(?:[^"\\]|\\.)*"?|'[^']*'?)|(\s+)|([^{}[\],\s"']+)/g)) {
      if (m[1]) out.push([m[0], 't-punct']);
      else if (m[2]) out.push([m[2], 't-key'], [m[3], 't-punct']);
      else if (m[4]) stringTokens(m[4], out);
      else if (m[5]) out.push([m[0], '']);
      else scalarTokens(m[6], out);
    }
    return;
  }
  if (/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(v)) out.push([v, 't-num']);
  else if (/^(\d+(ms|[smhdwy]))+$/.test(v)) out.push([v, 't-dur']);
  else if (/^(true|false|null|~)$/i.test(v)) out.push([v, 't-kw']);
  else if (/^[|>][-+]?\d*$/.test(v)) out.push([v, 't-punct']);
  else stringTokens(v, out);
}

// Splits a value into its text and a trailing ` # comment`, outside quotes.
function splitComment(v) {
  let q = '';
  for (let i = 0; i < v.length; i++) {
    const c = v[i];
    if (q) {
      if (c === q) q = '';
      else if (c === '\\' && q === '"') i++;
    } else if (c === '"' || c === "'") q = c;
    else if (c === '#' && (i === 0 || /\s/.test(v[i - 1]))) return [v.slice(0, i), v.slice(i)];
  }
  return [v, ''];
}

// A value in the PromQL-ish fields: highlight inside its quotes.
function quotedProm(v, out, kind) {
  const m = v.match(/^(["']?)(.*?)(\1)(\s*)$/s);
  const [, q, body, q2, tail] = m || ['', '', v, '', ''];
  if (q) out.push([q, 't-punct']);
  if (kind === 'values') {
    for (const t of body.matchAll(/(\s+)|(stale|_)|([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?|[-+]?Inf|NaN)|(x)|(.)/gi)) {
      out.push([t[0], t[1] ? '' : t[2] ? 't-kw' : t[3] ? 't-num' : t[4] ? 't-op' : 't-op']);
    }
  } else promTokens(body, out);
  if (q2) out.push([q2, 't-punct']);
  if (tail) out.push([tail, '']);
}

function yamlLines(text) {
  const lines = text.split('\n');
  const result = [];
  // A multi-line PromQL value (block scalar or continued plain scalar):
  // lines indented deeper than its key belong to it.
  let exprIndent = -1;
  for (const line of lines) {
    const out = [];
    const indent = line.match(/^ */)[0].length;
    if (exprIndent >= 0 && (indent > exprIndent || line.trim() === '')) {
      promTokens(line, out);
      result.push(out);
      continue;
    }
    exprIndent = -1;
    const m = line.match(/^(\s*)((?:-\s+)*)([^\s#'"{[][^:#]*?|"[^"]*"|'[^']*')(\s*:)(\s+|$)(.*)$/);
    if (!m) {
      const lm = line.match(/^(\s*)(-\s*)?(.*)$/);
      out.push([lm[1], '']);
      if (lm[2]) out.push([lm[2], 't-punct']);
      const [v, c] = splitComment(lm[3]);
      if (v.trimStart().startsWith('#')) out.push([v, 't-cmt']);
      else if (v) scalarTokens(v, out);
      if (c) out.push([c, 't-cmt']);
      result.push(out);
      continue;
    }
    const [, ws, dash, key, colon, sp, rest] = m;
    out.push([ws, '']);
    if (dash) out.push([dash, 't-punct']);
    out.push([key, 't-key'], [colon, 't-punct'], [sp, '']);
    const name = key.replace(/^["']|["']$/g, '');
    if (name === 'expr' || name === 'series' || name === 'values' || name === 'metric' || name === 'query') {
      const [v, c] = name === 'expr' || name === 'metric' || name === 'query' ? splitComment(rest) : [rest, ''];
      if (/^[|>][-+]?\d*\s*$/.test(v) || v.trim() === '') {
        out.push([v, 't-punct']);
        if (name !== 'values') exprIndent = ws.length + dash.length;
      } else {
        quotedProm(v, out, name === 'values' ? 'values' : 'prom');
        if (name === 'expr' && !/^["']/.test(v)) exprIndent = ws.length + dash.length;
      }
      if (c) out.push([c, 't-cmt']);
    } else {
      const [v, c] = splitComment(rest);
      if (v) scalarTokens(v, out);
      if (c) out.push([c, 't-cmt']);
    }
    result.push(out);
  }
  return result;
}

function promLines(text) {
  const ctx = { braces: 0 };
  return text.split('\n').map((line) => {
    ctx.braces = 0;
    return promTokens(line, [], ctx);
  });
}

// Renders one line's tokens with the problem ranges [start, end, class]
// underlined.
function renderLine(tokens, ranges) {
  const markAt = (at) => ranges.find(([a, b]) => at >= a && at < b)?.[2] || '';
  let html = '';
  let pos = 0;
  for (const [text, cls] of tokens) {
    if (!ranges.length) {
      html += cls ? `<span class="${cls}">${esc(text)}</span>` : esc(text);
      continue;
    }
    let i = 0;
    while (i < text.length) {
      const mark = markAt(pos + i);
      // The next offset where the mark changes, within this token.
      let j = i + 1;
      while (j < text.length && markAt(pos + j) === mark) j++;
      const piece = esc(text.slice(i, j));
      const c = [cls, mark].filter(Boolean).join(' ');
      html += c ? `<span class="${c}">${piece}</span>` : piece;
      i = j;
    }
    pos += text.length;
  }
  return html;
}

// Where to draw a problem's wavy line: from its column to the end of the
// word there, or the whole line's content when the column is unknown.
function errorRange(line, col) {
  if (!col || col > line.length + 1) {
    const s = line.search(/\S/);
    return s < 0 ? [0, 1] : [s, line.trimEnd().length];
  }
  const start = col - 1;
  const m = line.slice(start).match(/^[\w.:"'-]+|^\S/);
  return [start, start + (m ? m[0].length : 1)];
}

const isWarn = (p) => p.severity === 'warning';

export class Editor {
  // root: an element to build into (keeps its id). problems: the <ul> that
  // lists messages. onChange(text) is called on every edit.
  constructor(root, { value = '', mode = 'yaml', problems = null, onChange = () => {}, label = 'editor' } = {}) {
    this.root = root;
    this.mode = mode;
    this.onChange = onChange;
    this.problemsEl = problems;
    this.problems = [];
    root.classList.add('editor');
    root.innerHTML = `<div class="ed-gutter" aria-hidden="true"><div class="ed-gutter-in"></div></div>
      <div class="ed-body"><pre class="ed-hl" aria-hidden="true"><code></code></pre>
      <textarea class="editor-input" spellcheck="false" autocapitalize="off" autocomplete="off" wrap="off"
        aria-label="${label}"></textarea></div>`;
    [this.gutter, this.code, this.ta] = ['.ed-gutter-in', 'code', 'textarea'].map((q) => root.querySelector(q));
    this.ta.value = value;
    this.ta.addEventListener('input', () => {
      this.schedule();
      this.onChange(this.ta.value);
    });
    this.ta.addEventListener('scroll', () => this.syncScroll());
    this.ta.addEventListener('keydown', (e) => this.onKey(e));
    new ResizeObserver(() => this.syncScroll()).observe(this.ta);
    this.render();
  }

  get value() {
    return this.ta.value;
  }

  // Programmatic replacement; `notify` runs onChange like a user edit.
  setValue(text, notify = false) {
    if (text === this.ta.value) return;
    this.ta.value = text;
    this.render();
    if (notify) this.onChange(text);
  }

  setMode(mode) {
    this.mode = mode;
    this.render();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  // Only the lines around the viewport are in the DOM: a pasted /metrics
  // dump of thousands of lines would otherwise cost a relayout per keystroke.
  // Scrolling repaints when it leaves the painted window.
  syncScroll() {
    const { scrollTop: y, scrollLeft: x } = this.ta;
    const lh = this.lineHeight();
    const first = Math.floor(y / lh), last = Math.ceil((y + this.ta.clientHeight) / lh);
    if (!this.win || first < this.win[0] || last > this.win[1]) return this.paint();
    const dy = this.win[0] * lh - y;
    this.code.style.transform = `translate(${-x}px, ${dy}px)`;
    this.gutter.style.transform = `translateY(${dy}px)`;
  }

  lineHeight() {
    if (!this.lh) this.lh = parseFloat(getComputedStyle(this.ta).lineHeight) || 18;
    return this.lh;
  }

  render() {
    const text = this.ta.value;
    this.raw = text.split('\n');
    // Very large pastes stay editable; colour is the first thing to give up.
    this.lines = text.length > 300_000 ? this.raw.map((l) => [[l, '']])
      : this.mode === 'prom' ? promLines(text) : yamlLines(text);
    this.byLine = new Map();
    for (const p of this.problems) {
      if (!(p.line >= 1)) continue;
      // A problem at the end of input can point one line past the text.
      const l = Math.min(p.line, this.raw.length);
      if (!this.byLine.has(l)) this.byLine.set(l, []);
      this.byLine.get(l).push(p);
    }
    this.root.style.setProperty('--gutter-ch', String(Math.max(2, String(this.lines.length).length)));
    this.paint();
  }

  paint() {
    const lh = this.lineHeight();
    const view = Math.ceil((this.ta.clientHeight || 600) / lh);
    const top = Math.floor(this.ta.scrollTop / lh);
    const a = Math.max(0, top - view), b = Math.min(this.lines.length, top + 2 * view + 1);
    const html = [];
    const gutter = [];
    for (let i = a; i < b; i++) {
      const ps = this.byLine.get(i + 1);
      // Errors are drawn over warnings on the same spot.
      const sorted = ps ? [...ps].sort((x, y) => isWarn(x) - isWarn(y)) : [];
      const ranges = sorted.map((p) => [...errorRange(this.raw[i], p.col), isWarn(p) ? 'warn-mark' : 'err-mark']);
      html.push(renderLine(this.lines[i], ranges));
      if (ps) {
        const cls = ps.some((p) => !isWarn(p)) ? 'has-error' : 'has-warn';
        const title = esc(ps.map((p) => p.message).join('\n')).replace(/"/g, '&quot;');
        gutter.push(`<div class="ln ${cls}" title="${title}">${i + 1}</div>`);
      } else gutter.push(`<div class="ln">${i + 1}</div>`);
    }
    // The trailing space keeps the last empty line's height in the <pre>.
    this.code.innerHTML = html.join('\n') + ' \n';
    this.gutter.innerHTML = gutter.join('');
    this.win = [a, Math.max(b, a + 1)];
    // The window ends with the text: it covers any viewport below.
    if (b >= this.lines.length) this.win[1] = Infinity;
    this.syncScroll();
  }

  // problems: [{line, col, message}] (line 0: position unknown).
  setProblems(problems) {
    this.problems = problems || [];
    this.render();
    const ul = this.problemsEl;
    if (!ul) return;
    ul.replaceChildren(...this.problems.map((p) => {
      const li = document.createElement('li');
      li.className = isWarn(p) ? 'problem warn' : 'problem';
      li.tabIndex = 0;
      const pos = p.line ? `${p.line}${p.col ? `:${p.col}` : ''}` : '—';
      li.innerHTML = `<span class="pos">${pos}</span><span class="msg"></span>`;
      li.querySelector('.msg').textContent = p.message;
      if (p.line) {
        li.title = 'Show in the editor';
        const go = () => this.focusAt(p.line, p.col);
        li.addEventListener('click', go);
        li.addEventListener('keydown', (e) => e.key === 'Enter' && go());
      }
      return li;
    }));
    ul.hidden = this.problems.length === 0;
  }

  focusAt(line, col = 1) {
    const lines = this.ta.value.split('\n');
    let off = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) off += lines[i].length + 1;
    off += Math.max(0, Math.min((col || 1) - 1, (lines[line - 1] || '').length));
    this.ta.focus();
    this.ta.setSelectionRange(off, off);
    // Bring the line into view: the textarea only scrolls to the caret on
    // some browsers.
    const lh = this.lineHeight();
    const top = (line - 1) * lh;
    if (top < this.ta.scrollTop || top > this.ta.scrollTop + this.ta.clientHeight - 2 * lh) {
      this.ta.scrollTop = Math.max(0, top - this.ta.clientHeight / 3);
    }
  }

  // Tab indents with spaces (YAML forbids tabs); Enter keeps the indent.
  // insertText keeps the browser's undo history working.
  onKey(e) {
    const ta = this.ta;
    if (e.key === 'Tab' && !e.ctrlKey && !e.metaKey && !e.altKey) {
      e.preventDefault();
      const { selectionStart: s, selectionEnd: en, value } = ta;
      const ls = value.lastIndexOf('\n', s - 1) + 1;
      if (s === en && !e.shiftKey) return insert(ta, '  ');
      // Indent or outdent every selected line.
      const le = en > s && value[en - 1] === '\n' ? en - 1 : en;
      const block = value.slice(ls, le);
      const next = e.shiftKey ? block.replace(/^ {1,2}/gm, '') : block.replace(/^/gm, '  ');
      ta.setSelectionRange(ls, le);
      insert(ta, next);
      ta.setSelectionRange(ls, ls + next.length);
    } else if (e.key === 'Enter' && !e.ctrlKey && !e.metaKey && !e.shiftKey && !e.altKey) {
      const { selectionStart: s, value } = ta;
      const ls = value.lastIndexOf('\n', s - 1) + 1;
      const line = value.slice(ls, s);
      let ind = line.match(/^\s*(-\s+)?/)[0].replace(/-/, ' ');
      if (/:\s*(\|[-+]?|>[-+]?)?$/.test(line)) ind += '  ';
      e.preventDefault();
      insert(ta, '\n' + ind);
    }
  }
}

function insert(ta, text) {
  if (!document.execCommand('insertText', false, text)) {
    ta.setRangeText(text, ta.selectionStart, ta.selectionEnd, 'end');
    ta.dispatchEvent(new Event('input'));
  }
}
