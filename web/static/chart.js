// A canvas time-series chart in the spirit of uPlot: each series is one path,
// hover work happens on a second canvas so the (possibly hundreds of) series
// are not redrawn on every mouse move, and nothing but the legend is DOM.

// No reds or ambers: those colours mean pending and firing in the bands.
const PALETTE = ['#3b82f6', '#10b981', '#8b5cf6', '#06b6d4', '#ec4899', '#84cc16', '#6366f1',
  '#14b8a6', '#d946ef', '#0ea5e9', '#22c55e', '#a855f7', '#64748b', '#2563eb', '#059669'];
const MIN = 60_000, DAY = 1440 * MIN;
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
  172800, 604800, 1209600, 2592000, 7862400, 31536000].map((s) => s * 1000);
const LEGEND_MAX = 12;
const pad2 = (n) => String(n).padStart(2, '0');

export function formatTime(ms, withSeconds = true) {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ` +
    `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}${withSeconds ? `:${pad2(d.getUTCSeconds())}` : ''}`;
}

// Six significant digits, no float noise: 0.19999999999999998 -> 0.2.
export function formatValue(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  return String(Number(v.toPrecision(6)));
}

function niceStep(span, count) {
  const rough = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(rough));
  const n = rough / mag;
  return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * mag;
}

function tickLabel(v, step) {
  const a = Math.max(Math.abs(v), Math.abs(step));
  for (const [f, s] of [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']]) {
    if (a >= f && Math.abs(step) >= f / 1000) return trimZeros((v / f).toFixed(decimals(step / f))) + s;
  }
  return trimZeros(v.toFixed(decimals(step)));
}
const decimals = (step) => Math.min(12, Math.max(0, -Math.floor(Math.log10(step) + 1e-9)));
const trimZeros = (s) => (s.includes('.') ? s.replace(/\.?0+$/, '') : s);

function lowerBound(xs, t) {
  let lo = 0, hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    [lo, hi] = xs[mid] < t ? [mid + 1, hi] : [lo, mid];
  }
  return lo;
}

function line(ctx, color, x0, y0, x1, y1) {
  ctx.strokeStyle = color;
  ctx.beginPath();
  ctx.moveTo(x0, y0);
  ctx.lineTo(x1, y1);
  ctx.stroke();
}

export class Chart {
  constructor(el, { height = 280 } = {}) {
    this.el = el;
    el.classList.add('chart');
    el.innerHTML = `<div class="chart-plot" style="height:${height}px">
      <canvas class="chart-main"></canvas><canvas class="chart-over"></canvas>
      <div class="chart-tip" hidden></div><div class="chart-empty" hidden></div></div>
      <div class="chart-legend"></div>`;
    const q = (c) => el.querySelector(`.chart-${c}`);
    [this.plot, this.main, this.over, this.tip, this.emptyEl, this.legend] =
      ['plot', 'main', 'over', 'tip', 'empty', 'legend'].map(q);
    this.series = [];
    this.bands = [];
    this.focus = -1;
    new ResizeObserver(() => this.resize()).observe(this.plot);
    this.over.addEventListener('mousemove', (e) => this.hover(e));
    this.over.addEventListener('mouseleave', () => this.clearHover());
  }

  // series: [{label, points: [[ms, v|null], ...]}]; bands: [{from, to,
  // kind: 'pending'|'firing'}]; threshold: {value, label} or null.
  setData({ series = [], bands = [], threshold = null, from, to, empty = 'no data' }) {
    this.series = series.map((s, i) => {
      const n = s.points.length;
      const xs = new Float64Array(n), ys = new Float64Array(n);
      // Gaps (null) and infinities are not drawn and do not scale the axis.
      for (let j = 0; j < n; j++) {
        xs[j] = s.points[j][0];
        ys[j] = Number.isFinite(s.points[j][1]) ? s.points[j][1] : NaN;
      }
      return { label: s.label, xs, ys, color: PALETTE[i % PALETTE.length] };
    });
    this.bands = bands;
    this.threshold = threshold;
    this.from = from ?? Math.min(...this.series.map((s) => s.xs[0] ?? Infinity));
    this.to = to ?? Math.max(...this.series.map((s) => s.xs[s.xs.length - 1] ?? -Infinity));
    if (!Number.isFinite(this.from) || !Number.isFinite(this.to)) [this.from, this.to] = [0, 1];
    if (this.to <= this.from) this.to = this.from + MIN;
    this.focus = -1;
    this.emptyEl.hidden = this.series.some((s) => s.ys.some(Number.isFinite));
    this.emptyEl.textContent = empty;
    this.computeY();
    this.renderLegend();
    this.draw();
  }

  computeY() {
    let lo = Infinity, hi = -Infinity;
    for (const s of this.series) {
      for (const v of s.ys) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
    if (this.threshold) [lo, hi] = [Math.min(lo, this.threshold.value), Math.max(hi, this.threshold.value)];
    if (!Number.isFinite(lo) || !Number.isFinite(hi)) [lo, hi] = [0, 1];
    // Positive data reads best against zero, unless zero would squash it.
    if (lo >= 0 && lo <= hi - lo) lo = 0;
    if (hi === lo) [lo, hi] = lo === 0 ? [0, 1] : [lo - Math.abs(lo) * 0.1, hi + Math.abs(hi) * 0.1];
    this.yLo = lo;
    this.yHi = hi;
  }

  renderLegend() {
    const items = this.series.slice(0, LEGEND_MAX).map((s, i) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'legend-item';
      b.innerHTML = `<i style="background:${s.color}"></i><span></span>`;
      b.lastChild.textContent = s.label || '{}';
      b.title = 'Click to single out this series';
      b.addEventListener('click', () => {
        this.focus = this.focus === i ? -1 : i;
        this.legend.querySelectorAll('.legend-item').forEach((x, j) => x.classList.toggle('dim', this.focus >= 0 && j !== this.focus));
        this.draw();
      });
      return b;
    });
    if (this.series.length > LEGEND_MAX) {
      const more = document.createElement('span');
      more.className = 'legend-more';
      more.textContent = `+${this.series.length - LEGEND_MAX} more`;
      more.title = this.series.slice(LEGEND_MAX, LEGEND_MAX + 40).map((s) => s.label).join('\n');
      items.push(more);
    }
    this.legend.replaceChildren(...items);
  }

  resize() {
    const w = this.plot.clientWidth, h = this.plot.clientHeight;
    if (!w || !h) return;
    const dpr = window.devicePixelRatio || 1;
    for (const c of [this.main, this.over]) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
      c.style.width = `${w}px`;
      c.style.height = `${h}px`;
    }
    this.draw();
  }

  // From style.css, so the chart follows the light or dark theme.
  colors() {
    const cs = getComputedStyle(this.el);
    const v = (n) => cs.getPropertyValue(n).trim();
    return {
      text: v('--chart-text'), grid: v('--chart-grid'), axis: v('--chart-axis'),
      pending: v('--band-pending'), firing: v('--band-firing'),
      pendingEdge: v('--band-pending-edge'), firingEdge: v('--band-firing-edge'),
    };
  }

  // Pixel geometry of the plot area for the current size and data.
  layout(ctx) {
    const w = this.plot.clientWidth, h = this.plot.clientHeight;
    const count = Math.max(2, Math.floor((h - 40) / 36));
    const step = niceStep(this.yHi - this.yLo, count);
    const lo = Math.floor(this.yLo / step) * step, hi = Math.ceil(this.yHi / step) * step;
    const ticks = [];
    for (let v = lo; v <= hi + step / 2; v += step) ticks.push(Math.abs(v) < step / 1e6 ? 0 : v);
    const labels = ticks.map((v) => tickLabel(v, step));
    ctx.font = '11px system-ui, sans-serif';
    const left = Math.ceil(Math.max(...labels.map((l) => ctx.measureText(l).width))) + 14;
    return { w, h, left, right: w - 12, top: 8, bottom: h - 34, lo, hi, ticks, labels };
  }

  x(t, L) {
    return L.left + ((t - this.from) / (this.to - this.from)) * (L.right - L.left);
  }

  y(v, L) {
    return L.bottom - ((v - L.lo) / (L.hi - L.lo)) * (L.bottom - L.top);
  }

  draw() {
    const c = this.main;
    if (!c.width) return;
    const ctx = c.getContext('2d');
    const dpr = c.width / this.plot.clientWidth;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, c.width, c.height);
    const L = (this.L = this.layout(ctx));
    const col = (this.col = this.colors());

    // Bands first, behind everything: pending under firing.
    for (const kind of ['pending', 'firing']) {
      for (const b of this.bands) {
        if (b.kind !== kind) continue;
        const x0 = Math.max(L.left, this.x(b.from, L)), x1 = Math.min(L.right, this.x(b.to, L));
        if (x1 <= x0) continue;
        ctx.fillStyle = col[kind];
        ctx.fillRect(x0, L.top, Math.max(1, x1 - x0), L.bottom - L.top);
        ctx.fillStyle = col[`${kind}Edge`];
        ctx.fillRect(x0, L.top, Math.max(1, x1 - x0), 3);
      }
    }

    // Y grid and tick labels.
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'right';
    ctx.lineWidth = 1;
    L.ticks.forEach((v, i) => {
      const y = Math.round(this.y(v, L)) + 0.5;
      line(ctx, col.grid, L.left, y, L.right, y);
      ctx.fillStyle = col.text;
      ctx.fillText(L.labels[i], L.left - 6, y);
    });

    // X grid and labels (UTC); the date goes under the first tick and
    // wherever the day changes.
    const span = this.to - this.from;
    const tstep = TIME_STEPS.find((s) => (s / span) * (L.right - L.left) >= 90) || TIME_STEPS.at(-1);
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    let lastDay = '';
    for (let t = Math.ceil(this.from / tstep) * tstep; t <= this.to; t += tstep) {
      const x = Math.round(this.x(t, L)) + 0.5;
      line(ctx, col.grid, x, L.top, x, L.bottom + 4);
      const [day, time] = formatTime(t, tstep < MIN).split(' ');
      // Labels near the edges are pulled in rather than cut off.
      const put = (text, y) => {
        const hw = ctx.measureText(text).width / 2;
        ctx.fillText(text, Math.min(Math.max(x, hw + 2), L.w - hw - 2), y);
      };
      ctx.fillStyle = col.text;
      put(tstep >= DAY ? day.slice(5) : time, L.bottom + 6);
      if (day !== lastDay) {
        ctx.fillStyle = col.axis;
        put(day, L.bottom + 19);
        lastDay = day;
      }
    }
    line(ctx, col.axis, L.left, L.bottom + 0.5, L.right, L.bottom + 0.5);

    ctx.save();
    ctx.beginPath();
    ctx.rect(L.left, L.top - 2, L.right - L.left, L.bottom - L.top + 4);
    ctx.clip();
    if (this.threshold) {
      const y = Math.round(this.y(this.threshold.value, L)) + 0.5;
      ctx.setLineDash([5, 4]);
      line(ctx, col.firingEdge, L.left, y, L.right, y);
      ctx.setLineDash([]);
      ctx.fillStyle = col.firingEdge;
      ctx.textAlign = 'right';
      ctx.textBaseline = 'bottom';
      ctx.fillText(this.threshold.label, L.right - 4, y - 2);
    }
    this.series.forEach((s, i) => {
      if (i !== this.focus) this.path(ctx, s, L, this.focus >= 0 ? 0.15 : 1, 1.25);
    });
    if (this.focus >= 0) this.path(ctx, this.series[this.focus], L, 1, 2.25);
    ctx.restore();
    this.clearHover();
  }

  // One path per series; gaps (null) lift the pen, and a point with no
  // neighbours gets a dot so it does not vanish.
  path(ctx, s, L, alpha, width) {
    ctx.globalAlpha = alpha;
    ctx.strokeStyle = ctx.fillStyle = s.color;
    ctx.lineWidth = width;
    ctx.lineJoin = 'round';
    ctx.beginPath();
    let down = false;
    const n = s.xs.length;
    for (let j = 0; j < n; j++) {
      const v = s.ys[j];
      if (!Number.isFinite(v)) {
        down = false;
        continue;
      }
      const x = this.x(s.xs[j], L), y = this.y(v, L);
      if (down) ctx.lineTo(x, y);
      else {
        ctx.moveTo(x, y);
        if (!(j + 1 < n && Number.isFinite(s.ys[j + 1]))) ctx.rect(x - 1.5, y - 1.5, 3, 3);
      }
      down = true;
    }
    ctx.stroke();
    ctx.globalAlpha = 1;
  }

  clearHover() {
    const c = this.over;
    c.getContext('2d').clearRect(0, 0, c.width, c.height);
    this.tip.hidden = true;
  }

  // Nearest point (in pixels) among each series' point nearest in time.
  hover(e) {
    const L = this.L;
    if (!L) return;
    const r = this.over.getBoundingClientRect();
    const mx = e.clientX - r.left, my = e.clientY - r.top;
    const ctx = this.over.getContext('2d');
    const dpr = this.over.width / this.plot.clientWidth;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, this.over.width, this.over.height);
    if (mx < L.left || mx > L.right || my < L.top || my > L.bottom) {
      this.tip.hidden = true;
      return;
    }
    const t = this.from + ((mx - L.left) / (L.right - L.left)) * (this.to - this.from);
    let best = null;
    this.series.forEach((s, si) => {
      if (this.focus >= 0 && si !== this.focus) return;
      const i = lowerBound(s.xs, t);
      for (const j of [i - 1, i]) {
        if (j < 0 || j >= s.xs.length || !Number.isFinite(s.ys[j])) continue;
        const dx = this.x(s.xs[j], L) - mx, dy = this.y(s.ys[j], L) - my;
        const d = dx * dx * 4 + dy * dy;
        if (!best || d < best.d) best = { d, s, j };
      }
    });
    const col = this.col;
    const cx = Math.round(best ? this.x(best.s.xs[best.j], L) : mx) + 0.5;
    ctx.lineWidth = 1;
    ctx.setLineDash([3, 3]);
    line(ctx, col.axis, cx, L.top, cx, L.bottom);
    if (best) {
      const cy = Math.round(this.y(best.s.ys[best.j], L)) + 0.5;
      line(ctx, col.axis, L.left, cy, L.right, cy);
    }
    ctx.setLineDash([]);
    const at = best ? best.s.xs[best.j] : t;
    const state = this.bands.filter((b) => at >= b.from && at < b.to).map((b) => b.kind);
    const stateText = state.includes('firing') ? 'firing' : state.includes('pending') ? 'pending' : '';
    let html = `<div class="tip-time">${formatTime(at)} UTC${stateText ? ` <b class="st st-${stateText}">${stateText}</b>` : ''}</div>`;
    if (best) {
      ctx.save();
      ctx.beginPath();
      ctx.rect(L.left, L.top, L.right - L.left, L.bottom - L.top);
      ctx.clip();
      this.path(ctx, best.s, L, 1, 2.5);
      ctx.restore();
      ctx.fillStyle = best.s.color;
      ctx.beginPath();
      ctx.arc(this.x(best.s.xs[best.j], L), this.y(best.s.ys[best.j], L), 4, 0, 2 * Math.PI);
      ctx.fill();
      const label = best.s.label.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]);
      html += `<div class="tip-row"><i style="background:${best.s.color}"></i><span class="tip-label">${label || '{}'}</span>` +
        `<b>${formatValue(best.s.ys[best.j])}</b></div>`;
    }
    this.tip.innerHTML = html;
    this.tip.hidden = false;
    // Keep the tooltip inside the plot: flip to the left of the cursor
    // near the right edge.
    const tw = this.tip.offsetWidth, th = this.tip.offsetHeight;
    const left = mx + 14 + tw > L.w ? Math.max(0, mx - 14 - tw) : mx + 14;
    const top = Math.min(Math.max(0, my - th - 10), L.h - th);
    this.tip.style.transform = `translate(${left}px, ${top}px)`;
  }
}
