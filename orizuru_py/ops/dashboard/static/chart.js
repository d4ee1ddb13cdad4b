"use strict";
// Line charts as inline SVG, drawn with DOM calls only (no library, no markup strings).
window.orizuruChart = (function () {
  const NS = "http://www.w3.org/2000/svg";
  const W = 600, H = 190, LEFT = 46, RIGHT = 12, TOP = 10, BOTTOM = 24;

  function node(tag, attrs, text) {
    const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, String(v));
    if (text !== undefined) n.textContent = text;
    return n;
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function short(v) {
    const a = Math.abs(v);
    if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
    if (a >= 1e3) return (v / 1e3).toFixed(a >= 1e4 ? 0 : 1) + "k";
    if (a > 0 && a < 10 && !Number.isInteger(v)) return v.toFixed(1);
    return String(Math.round(v));
  }

  // series: [{label, cls, values}], t: sample times (ms); the x axis is the last windowMs.
  function draw(box, t, series, opts) {
    const now = opts.now, span = opts.windowMs, gap = opts.intervalMs * 2.5;
    const x0 = now - span;
    const all = series.flatMap((s) => s.values);
    const max = niceMax(all.length ? Math.max(...all) : 0);
    const x = (ms) => LEFT + ((ms - x0) / span) * (W - LEFT - RIGHT);
    const y = (v) => TOP + (1 - v / max) * (H - TOP - BOTTOM);
    const svg = node("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.title });
    for (const f of [0, 0.5, 1]) {
      const v = max * f;
      svg.append(node("line", { class: "grid", x1: LEFT, x2: W - RIGHT, y1: y(v), y2: y(v) }));
      svg.append(node("text", { class: "axis", x: LEFT - 6, y: y(v) + 4, "text-anchor": "end" },
        short(v)));
    }
    const ago = (ms) => (span >= 600000 ? `−${Math.round(ms / 60000)} min` : `−${Math.round(ms / 1000)} s`);
    for (const f of [0, 0.25, 0.5, 0.75, 1]) {
      const label = f === 1 ? "now" : ago(span * (1 - f));
      const anchor = f === 0 ? "start" : f === 1 ? "end" : "middle";
      svg.append(node("text", { class: "axis", x: x(x0 + span * f), y: H - 6,
        "text-anchor": anchor }, label));
    }
    if (!t.length) {
      svg.append(node("text", { class: "empty", x: W / 2, y: H / 2, "text-anchor": "middle" },
        "collecting samples…"));
    }
    for (const s of series) {
      let d = "";
      for (let i = 0; i < t.length; i++) {
        if (t[i] < x0) continue;
        const move = !d || t[i] - t[i - 1] > gap;
        d += `${move ? "M" : "L"}${x(t[i]).toFixed(1)},${y(s.values[i]).toFixed(1)}`;
      }
      if (d) svg.append(node("path", { class: `series ${s.cls}`, d }));
    }
    const legend = document.createElement("div");
    legend.className = "legend";
    for (const s of series) {
      const item = document.createElement("span");
      const swatch = node("svg", { viewBox: "0 0 22 10", "aria-hidden": "true" });
      swatch.append(node("line", { class: s.cls, x1: 1, x2: 21, y1: 5, y2: 5 }));
      const last = s.values.length ? s.values[s.values.length - 1] : null;
      item.append(swatch, `${s.label} `);
      const value = document.createElement("b");
      value.className = "num";
      value.textContent = last === null ? "–" : short(last);
      item.append(value);
      legend.append(item);
    }
    box.replaceChildren(svg, legend);
  }

  return { draw };
})();
