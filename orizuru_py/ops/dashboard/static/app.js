"use strict";
// The orizuru dashboard: draws the overview or a queue from the JSON API and polls it.
// Everything a producer controls (payloads, reasons, ids, names) enters the document as
// text nodes or attribute values, never as markup: there is no innerHTML in this file.
(function () {
  const config = JSON.parse(document.getElementById("config").textContent);
  const REFRESH_MS = config.refresh_s * 1000;
  const CAN_ACT = !config.read_only;
  const main = document.getElementById("main");

  // ---- small helpers ---------------------------------------------------------------
  function el(tag, props, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") n.className = v;
      else if (k === "text") n.textContent = v;
      else if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
      else n.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) n.append(c);
    return n;
  }

  const numbers = new Intl.NumberFormat("en-US");
  const int = (n) => numbers.format(n);
  function rate(x) {
    if (!x) return "0";
    return x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : int(Math.round(x));
  }
  function duration(s) {
    if (s === null || s === undefined) return "–";
    if (s < 1) return `${Math.round(s * 1000)} ms`;
    if (s < 60) return `${s.toFixed(1)} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
    const h = Math.floor(m / 60);
    return h < 48 ? `${h} h ${m % 60} min` : `${Math.floor(h / 24)} d ${h % 24} h`;
  }
  function ago(ms) {
    if (!ms) return "–";
    const s = (Date.now() - ms) / 1000;
    return s >= 0 ? `${duration(s)} ago` : `in ${duration(-s)}`;
  }
  const stamp = (ms) => (ms ? new Date(ms).toLocaleString() : null);
  const when = (ms) => el("span", { title: stamp(ms), text: ago(ms) });
  function count(n, extraClass) {
    return el("td", { class: `num ${n ? extraClass || "" : "zero"}`, text: int(n) });
  }
  function tile(label, value, sub, tone) {
    return el("div", { class: `tile ${tone || ""}` },
      el("div", { class: "label", text: label }),
      el("div", { class: "value", text: value }),
      el("div", { class: "sub", text: sub || "\u00a0" }));
  }
  function table(head, rows, emptyText) {
    const body = rows.length ? rows
      : [el("tr", { class: "empty-row" }, el("td", { colspan: head.length, text: emptyText }))];
    return el("table", {},
      el("thead", {}, el("tr", {}, head.map(([text, cls]) => el("th", { class: cls, text })))),
      el("tbody", {}, body));
  }

  // ---- talking to the API ----------------------------------------------------------
  async function api(path, options) {
    const response = await fetch(path, Object.assign({ cache: "no-store" }, options));
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      const error = new Error((body && body.error) || `${response.status} ${response.statusText}`);
      error.status = response.status;
      throw error;
    }
    return body;
  }
  function post(path, body) {
    return api(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", [config.csrf_header]: config.csrf_token },
      body: JSON.stringify(body || {}),
    });
  }

  // ---- status, toasts, confirmation --------------------------------------------------
  const status = document.getElementById("status");
  const statusText = document.getElementById("status-text");
  function setStatus(error) {
    status.className = error ? "status down" : "status live";
    statusText.textContent = error
      ? `not updating: ${error.message}`
      : `live · ${new Date().toLocaleTimeString()}${config.read_only ? " · read-only" : ""}`;
  }
  function toast(text, bad) {
    const t = el("div", { class: bad ? "toast bad" : "toast", text });
    document.getElementById("toasts").append(t);
    setTimeout(() => t.remove(), bad ? 8000 : 4000);
  }
  function confirmed({ title, text, label, typed }) {
    const dialog = document.getElementById("confirm");
    const ok = document.getElementById("confirm-ok");
    const input = document.getElementById("confirm-typed");
    document.getElementById("confirm-title").textContent = title;
    document.getElementById("confirm-text").textContent = text;
    document.getElementById("confirm-typed-label").hidden = !typed;
    document.getElementById("confirm-expected").textContent = typed || "";
    input.value = "";
    ok.textContent = label;
    ok.disabled = Boolean(typed);
    input.oninput = () => { ok.disabled = input.value !== typed; };
    return new Promise((resolve) => {
      const done = (answer) => { dialog.close(); resolve(answer); };
      ok.onclick = () => done(true);
      document.getElementById("confirm-cancel").onclick = () => done(false);
      dialog.oncancel = () => resolve(false);
      dialog.showModal();
      (typed ? input : document.getElementById("confirm-cancel")).focus();
    });
  }

  // ---- the poll loop -----------------------------------------------------------------
  // Each poll redraws the page: a control with a data-key gets the focus back after it,
  // also one focused while the poll was fetching (the redraw replaced that element).
  let render = async () => {};
  let timer = null, busy = false, again = false, focusKey = null, focusedMeanwhile = null;
  main.addEventListener("focusin", (event) => {
    if (busy) focusedMeanwhile = event.target.dataset ? event.target.dataset.key || null : null;
  });
  async function tick() {
    clearTimeout(timer);
    if (busy) { again = true; return; }
    busy = true;
    const active = document.activeElement;
    const before = focusKey || (active && active.dataset ? active.dataset.key : null);
    focusKey = focusedMeanwhile = null;
    try { await render(); setStatus(null); } catch (error) { setStatus(error); }
    const key = focusedMeanwhile || before;
    const back = key ? main.querySelector(`[data-key="${CSS.escape(key)}"]`) : null;
    if (back && back !== document.activeElement) back.focus();
    busy = false;
    if (again) { again = false; tick(); return; }
    timer = setTimeout(tick, REFRESH_MS);
  }

  // ---- charts (the server samples; we fetch when a new sample is due) ----------------
  function historyOf(queue) {
    const path = "/api/history" + (queue ? `?queue=${encodeURIComponent(queue)}` : "");
    let data = null, fetchedAt = 0;
    return async () => {
      if (!data || Date.now() - fetchedAt >= data.interval_s * 1000) {
        data = await api(path);
        fetchedAt = Date.now();
      }
      return { data, now: data.now_ms + (Date.now() - fetchedAt) };
    };
  }
  function chartCards() {
    const throughput = el("div", { class: "chart" });
    const depth = el("div", { class: "chart" });
    const cards = el("div", { class: "charts" },
      el("div", { class: "card" }, el("h2", { text: "Throughput (messages/s)" }), throughput),
      el("div", { class: "card" }, el("h2", { text: "Depth" }), depth));
    function draw({ data, now }) {
      const opts = { now, windowMs: data.size * data.interval_s * 1000,
                     intervalMs: data.interval_s * 1000 };
      window.orizuruChart.draw(throughput, data.t, [
        { label: "acked/s", cls: "s-acked", values: data.acked_per_s },
        { label: "failed/s", cls: "s-failed", values: data.failed_per_s },
      ], Object.assign({ title: "throughput" }, opts));
      window.orizuruChart.draw(depth, data.t, [
        { label: "waiting", cls: "s-waiting", values: data.waiting },
        { label: "in flight", cls: "s-in_flight", values: data.in_flight },
        { label: "dead", cls: "s-dead", values: data.dead },
      ], Object.assign({ title: "depth" }, opts));
    }
    return { cards, draw };
  }

  function setCrumbs(...parts) {
    document.getElementById("crumbs").replaceChildren(
      ...parts.flatMap((p, i) => (i ? [el("span", { text: "/" }), p] : [p])));
  }

  // ---- the overview ------------------------------------------------------------------
  function overview() {
    document.title = "Queues · orizuru";
    setCrumbs(el("span", { text: `prefix ${config.prefix}` }));
    const tiles = el("div", { class: "tiles" });
    const charts = chartCards();
    const list = el("div", { class: "card flush" });
    const periodic = el("div", { class: "card flush", id: "schedules", hidden: true });
    main.replaceChildren(
      el("div", { class: "title-row" }, el("h1", { text: "Queues" })), tiles, charts.cards, list,
      periodic);
    const history = historyOf(null);
    let offset = Math.max(0, parseInt(new URLSearchParams(location.search).get("offset") || "0", 10) || 0);
    function go(o) {
      offset = o;
      window.history.replaceState(null, "", offset ? `?offset=${offset}` : "/");
      tick();
    }
    render = async () => {
      const [doc, h, sched] = await Promise.all(
        [api(`/api/queues?offset=${offset}`), history(), api("/api/schedules")]);
      tiles.replaceChildren(...overviewTiles(doc));
      const shown = doc.queues.length;
      const range = shown ? `${int(offset + 1)}–${int(offset + shown)} of ${int(doc.total)} queues`
        : offset ? "nothing on this page" : "";
      const pager = doc.total > doc.limit || offset ? [el("div", { class: "toolbar" },
        el("span", { text: range }),
        el("div", { class: "right" }, ...pagerButtons(offset, doc.limit, doc.more, go)))] : [];
      list.replaceChildren(...pager, table([
        ["Queue"], ["Waiting", "num"], ["Delayed", "num"], ["In flight", "num"],
        ["Unacked", "num"], ["Dead", "num"], ["Consumers", "num"], ["Acked/s", "num"],
        ["Failed/s", "num"], ["Latency", "num"], ["State"],
      ], doc.queues.map(queueRow), "No queues yet: a queue is listed once a producer or consumer uses it."));
      periodic.hidden = !sched.total;
      periodic.replaceChildren(...scheduleCard(sched));
      charts.draw(h);
    };
  }

  // The periodic entries, soonest due first: one past due (late) has had nobody to push
  // it, no worker or scheduler running for its queue.
  function scheduleCard(doc) {
    const shown = doc.schedules.length < doc.total
      ? ` (the ${doc.schedules.length} due soonest of ${int(doc.total)})` : "";
    const skew = Date.now() - doc.now_ms;  // the server's clock on this browser's
    const rows = doc.schedules.map((e) => {
      const late = e.next_due_ms !== null && e.next_due_ms + skew < Date.now() - 1000;
      return el("tr", { "data-entry": e.name },
        el("td", { class: "mono", text: e.name }),
        el("td", { class: "name" },
          el("a", { href: `/queues/${encodeURIComponent(e.queue)}`, text: e.queue })),
        el("td", { class: "mono", text: e.cadence }),
        el("td", { class: "num" }, e.next_due_ms === null ? "–" : when(e.next_due_ms + skew),
          late ? [" ", el("span", { class: "badge warn", text: "late",
            title: "due, and not pushed yet: is a worker or a scheduler running for its queue?" })] : null),
        el("td", {}, e.error ? el("span", { class: "badge bad", text: "unreadable", title: e.error })
          : el("span", { class: "badge ok", text: "scheduled" })));
    });
    return [el("h2", { text: `Periodic messages${shown}` }), table([
      ["Entry"], ["Queue"], ["Cadence"], ["Next due", "num"], ["State"],
    ], rows, "No periodic messages.")];
  }

  // Totals over every queue: of the page when it holds them all, else of the last sample.
  function overviewTiles(doc) {
    const t = doc.totals;
    if (!t) return [tile("Queues", int(doc.total), "totals after the first sample")];
    const of = doc.totals_ms && t.queues !== doc.queues.length ? ` · ${ago(doc.totals_ms)}` : "";
    const late = t.overdue_consumers, quiet = t.silent_consumers;
    return [
      tile("Queues", int(t.queues), (t.paused ? `${t.paused} paused` : "none paused") + of,
        t.paused ? "warn" : ""),
      tile("Waiting", int(t.waiting),
        t.oldest_waiting_s !== null ? `oldest ${duration(t.oldest_waiting_s)}` : "nothing waiting"),
      tile("In flight", int(t.in_flight), `${int(t.delayed)} delayed`),
      tile("Dead letters", int(t.dead), `${int(t.unacked)} unacked`, t.dead ? "bad" : ""),
      tile("Consumers", int(t.live_consumers),
        late ? `${late} overdue` : quiet ? `${quiet} silent` : "none overdue",
        late ? "bad" : quiet ? "warn" : ""),
      tile("Acked/s", rate(t.acked_per_s), `${rate(t.failed_per_s)} failed/s`),
    ];
  }

  function pagerButtons(offset, limit, more, go) {
    return [
      el("button", { class: "btn small", text: "‹ Prev", disabled: offset === 0, "data-key": "prev",
        "aria-label": "previous page", onclick: () => go(Math.max(0, offset - limit)) }),
      el("button", { class: "btn small", text: "Next ›", disabled: !more, "data-key": "next",
        "aria-label": "next page", onclick: () => go(offset + limit) }),
    ];
  }

  function queueRow(q) {
    const late = q.consumers.length - q.live_consumers;
    return el("tr", { "data-queue": q.queue },
      el("td", { class: "name" },
        el("a", { href: `/queues/${encodeURIComponent(q.queue)}`, text: q.queue })),
      count(q.waiting), count(q.delayed), count(q.in_flight), count(q.unacked),
      count(q.dead, "hot"),
      el("td", { class: "num", "data-field": "consumers" }, int(q.live_consumers),
        late ? [" ", el("span", { class: "badge bad", text: `${late} overdue` })] : null,
        q.silent_consumers ? [" ", el("span", { class: "badge warn", text: `${q.silent_consumers} silent` })] : null),
      el("td", { class: "num", text: rate(q.acked_per_s) }),
      el("td", { class: `num ${q.failed_per_s ? "hot" : "zero"}`, text: rate(q.failed_per_s) }),
      el("td", { class: "num", text: duration(q.oldest_waiting_s) }),
      el("td", {}, ...stateBadges(q)));
  }

  // Paused or running, and throttled while a rate limiter holds starts back (its keys
  // are a pusher's: shown as text only, a few at most).
  function stateBadges(q) {
    const badges = [q.paused ? el("span", { class: "badge warn", text: "paused" })
      : el("span", { class: "badge ok", text: "running" })];
    const limiters = Object.entries(q.throttled || {});
    if (limiters.length) {
      const named = limiters.slice(0, 5).map(([key, left]) =>
        `${key === "" ? "the queue's limit" : key} (${duration(left)})`).join(", ");
      badges.push(" ", el("span", { class: "badge warn", "data-field": "throttled",
        title: `rate limited: ${named}${limiters.length > 5 ? ", ..." : ""}`,
        text: limiters.length === 1 ? "throttled" : `${limiters.length} throttled` }));
    }
    return badges;
  }

  // ---- one queue ---------------------------------------------------------------------
  const TABS = [
    ["waiting", "Waiting"], ["delayed", "Delayed"], ["unacked", "Unacked"], ["dead", "Dead"],
  ];

  function queuePage(name) {
    document.title = `${name} · orizuru`;
    setCrumbs(el("a", { href: "/", text: "Queues" }), el("span", { text: name }));
    const quoted = encodeURIComponent(name);
    const base = `/api/queues/${quoted}`;
    const params = new URLSearchParams(location.search);
    let where = TABS.some(([w]) => w === params.get("where")) ? params.get("where") : "waiting";
    let offset = Math.max(0, parseInt(params.get("offset") || "0", 10) || 0);
    const expanded = new Set();
    const actions = el("div", { class: "actions" });
    const badges = el("span");
    const tiles = el("div", { class: "tiles" });
    const charts = chartCards();
    const consumers = el("div", { class: "card flush" });
    const messages = el("div", { class: "card flush" });
    main.replaceChildren(
      el("div", { class: "title-row" }, el("h1", { text: name }), badges, actions),
      tiles, charts.cards, consumers, messages);
    const samples = historyOf(name);
    let missing = false;

    async function act(action, body, confirm, said) {
      if (confirm && !(await confirmed(confirm))) return;
      try {
        toast(said(await post(`/api/actions/${action}/${quoted}`, body)));
      } catch (error) {
        toast(`${action} failed: ${error.message}`, true);
      }
      tick();
    }
    function go(w, o) {
      where = w;
      offset = o;
      const query = new URLSearchParams({ where });
      if (offset) query.set("offset", String(offset));
      window.history.replaceState(null, "", `?${query}`);
      tick();
    }

    render = async () => {
      let s;
      try {
        s = await api(base);
      } catch (error) {
        if (error.status !== 404) throw error;
        missing = true;
        main.replaceChildren(el("div", { class: "banner", text: error.message }),
          el("a", { href: "/", text: "All queues" }));
        return;
      }
      if (missing) {  // it appeared meanwhile: build the page afresh
        queuePage(name);
        return render();
      }
      const [page, h] = await Promise.all([
        api(`/api/messages/${quoted}?where=${where}&offset=${offset}`), samples()]);
      badges.replaceChildren(...stateBadges(s));
      actions.replaceChildren(...queueActions(s, act));
      tiles.replaceChildren(...queueTiles(s));
      consumers.replaceChildren(el("h2", { text: "Consumers" }), consumerTable(s.consumers));
      messages.replaceChildren(...messageViews(s, page, { where, offset, expanded, go, act }));
      charts.draw(h);
    };
  }

  function queueActions(s, act) {
    if (!CAN_ACT) return [];
    const toggle = s.paused
      ? el("button", { class: "btn", text: "Resume", onclick: () =>
          act("resume", {}, null, () => `${s.queue} resumed`) })
      : el("button", { class: "btn", text: "Pause", onclick: () =>
          act("pause", {}, null, () => `${s.queue} paused: consumers take nothing from it`) });
    const purge = el("button", { class: "btn danger", text: "Purge…", onclick: () =>
      act("purge", { confirm: s.queue, dead: false }, {
        title: `Purge ${s.queue}?`,
        text: `Deletes its ${int(s.waiting)} waiting, ${int(s.delayed)} delayed and ` +
          `${int(s.unacked)} unacked messages and forgets its unique keys. Messages in ` +
          "flight stay with their consumers; dead letters are kept.",
        label: "Purge", typed: s.queue,
      }, (r) => `purged ${int(r.purged)} messages`) });
    return [toggle, purge];
  }

  function queueTiles(s) {
    const late = s.consumers.length - s.live_consumers;
    return [
      tile("Waiting", int(s.waiting), `${int(s.delayed)} delayed`),
      tile("Latency", duration(s.oldest_waiting_s), "age of the next message"),
      tile("In flight", int(s.in_flight), `${int(s.unacked)} unacked`),
      tile("Dead letters", int(s.dead), null, s.dead ? "bad" : ""),
      tile("Consumers", int(s.live_consumers),
        late ? `${late} overdue` : s.silent_consumers ? `${s.silent_consumers} silent` : "none overdue",
        late ? "bad" : s.silent_consumers ? "warn" : ""),
      tile("Acked/s", rate(s.acked_per_s), `${rate(s.failed_per_s)} failed/s`),
      tile("GC recovered", int(s.recovered), `from ${int(s.reaped)} reaped consumers`),
      tile("Expired", int(s.expired), `${int(s.cancelled)} cancelled`),
    ];
  }

  function consumerTable(list) {
    const rank = { overdue: 0, silent: 1, live: 2 };
    const sorted = [...list].sort((a, b) => (rank[a.state] - rank[b.state]) || a.name.localeCompare(b.name));
    const rows = sorted.map((c) => {
      const at = c.name.lastIndexOf("@");
      return el("tr", { class: c.overdue ? "overdue" : "", "data-consumer": c.name },
        el("td", { class: "mono" }, el("b", { text: at > 0 ? c.name.slice(0, at) : c.name }),
          el("span", { class: "muted", text: at > 0 ? c.name.slice(at) : "" })),
        el("td", { class: "mono", text: c.host ? `${c.host} · ${c.pid}` : "–" }),
        count(c.held),
        el("td", { class: `num ${c.overdue ? "hot" : ""}`, text: `${duration(c.last_beat_s)} ago` }),
        el("td", {}, consumerState(c)),
        count(c.handled), count(c.failed, "hot"),
        el("td", { class: "num", text: rate(c.acked_per_s) }),
        el("td", { class: "num", text: duration(c.uptime_s) }));
    });
    return table([
      ["Consumer"], ["Host · PID"], ["Held", "num"], ["Last beat", "num"], ["Status"],
      ["Handled", "num"], ["Failed", "num"], ["Acked/s", "num"], ["Uptime", "num"],
    ], rows, "No consumer is registered on this queue.");
  }

  function consumerState(c) {
    if (c.state === "overdue") {
      return el("span", { class: "badge bad", text: "OVERDUE",
        title: "its deadline passed: dead or frozen; the GC will return what it holds" });
    }
    if (c.state === "silent") {
      return el("span", { class: "badge warn", text: `silent ${duration(c.last_beat_s)}`,
        title: `it missed two beats: its process may have died; overdue after ${duration(c.timeout_s)}` });
    }
    return el("span", { class: "badge ok", text: "live" });
  }

  function messageViews(s, page, view) {
    const sizes = { waiting: s.waiting, delayed: s.delayed, unacked: s.unacked, dead: s.dead };
    const tabs = el("div", { class: "tabs", role: "tablist", "aria-label": "messages by state" },
      TABS.map(([w, label]) => el("button", {
        class: `tab ${w} ${w === view.where ? "active" : ""}`, role: "tab", "data-tab": w,
        id: `tab-${w}`, "data-key": `tab-${w}`, "aria-controls": "messages-panel", tabindex: w === view.where ? 0 : -1,
        "aria-selected": String(w === view.where), onclick: () => view.go(w, 0),
        onkeydown: (event) => moveTab(event, w, view),
      }, label, el("span", { class: `count ${sizes[w] ? "some" : ""}`, text: int(sizes[w]),
        "aria-label": `${int(sizes[w])} messages` }))));
    const total = sizes[view.where];
    const shown = page.messages.length;
    const right = el("div", { class: "right" });
    if (CAN_ACT && view.where === "dead" && s.dead) {
      right.append(
        el("button", { class: "btn primary", text: "Requeue all", onclick: () =>
          view.act("requeue", {}, {
            title: `Requeue ${int(s.dead)} dead letters?`,
            text: "Each goes back to the queue with a fresh attempt count.", label: "Requeue",
          }, (r) => `requeued ${int(r.requeued)}` + (r.garbage ? `; ${r.garbage} undecodable kept` : "")) }),
        el("button", { class: "btn danger", text: "Purge with dead…", onclick: () =>
          view.act("purge", { confirm: s.queue, dead: true }, {
            title: `Purge ${s.queue} and its dead letters?`,
            text: "Deletes every waiting, delayed, unacked and dead message of this queue.",
            label: "Purge", typed: s.queue,
          }, (r) => `purged ${int(r.purged)} messages`) }));
    }
    right.append(...pagerButtons(view.offset, page.limit, page.more, (o) => view.go(view.where, o)));
    const range = shown ? `${int(view.offset + 1)}–${int(view.offset + shown)} of ${int(total)}`
      : view.offset ? "nothing on this page" : "";
    const toolbar = el("div", { class: "toolbar" }, el("span", { text: range }), right);
    const panel = el("div", { role: "tabpanel", id: "messages-panel",
      "aria-labelledby": `tab-${view.where}` }, toolbar, messageTable(s.queue, page, view));
    return [tabs, panel];
  }

  // Arrow keys move between tabs, as a tablist does (WAI-ARIA tabs pattern).
  function moveTab(event, w, view) {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    const i = TABS.findIndex(([t]) => t === w);
    const next = TABS[(i + step + TABS.length) % TABS.length][0];
    focusKey = `tab-${next}`;
    view.go(next, 0);
  }

  function messageTable(queue, page, view) {
    const w = view.where;
    const head = [["ID"], ["Attempts", "num"], ["Enqueued"]];
    if (w === "delayed") head.push(["Due"]);
    if (w === "dead") head.push(["Dead-lettered"]);
    head.push(["Payload"]);
    if (CAN_ACT) head.push(["", "num"]);
    const rows = page.messages.map((m, i) => {
      const cells = [
        el("td", { class: "id", text: m.id || "–" }),
        el("td", { class: "num", text: m.attempts === null ? "–" : int(m.attempts) }),
        el("td", { class: "when" }, when(m.enqueued_ms)),
      ];
      if (w === "delayed") cells.push(el("td", { class: "when" }, when(m.due_ms)));
      if (w === "dead") {
        cells.push(el("td", { class: "dead-cell" }, el("div", { class: "reason", text: m.reason || "–" }),
          el("div", { class: "muted" }, when(m.dead_ms))));
      }
      cells.push(payloadCell(m, `${w}:${view.offset + i}:${m.id}`, view.expanded));
      if (CAN_ACT) cells.push(el("td", { class: "acts" }, messageActions(queue, m, w, view.act)));
      return el("tr", { "data-id": m.id || "" }, cells);
    });
    return table(head, rows, `No ${w} messages${view.offset ? " on this page" : ""}.`);
  }

  // Collapsed: the payload on one line; expanded: pretty-printed, as the API sends it.
  function payloadCell(m, key, expanded) {
    const text = m.payload;
    const line = text.replace(/\s+/g, " ").slice(0, 400);
    const long = line !== text || line.length > 120 || Boolean(m.note);
    const cell = el("td", { class: "payload" });
    if (m.error) cell.append(el("div", { class: "error", text: `does not decode: ${m.error}` }));
    const show = (open) => {
      const view = open ? el("pre", { class: "payload", text })
        : el("code", { class: "preview", text: line, title: long ? null : text });
      const parts = [view];
      if (long) {
        parts.push(el("button", { class: "more", text: open ? "collapse" : "expand",
          onclick: () => {
            if (open) expanded.delete(key); else expanded.add(key);
            show(!open);
          } }));
      }
      if (m.note) parts.push(el("div", { class: "muted", text: m.note }));
      holder.replaceChildren(...parts);
    };
    const holder = el("div");
    cell.append(holder);
    show(expanded.has(key));
    return cell;
  }

  function messageActions(queue, m, where, act) {
    if (!m.id) return [];
    const id = m.id;
    const del = el("button", { class: "btn small danger", text: "Delete", onclick: () =>
      act("delete", { id, where }, {
        title: "Delete this message?", text: `${id} is removed from ${queue} for good.`,
        label: "Delete",
      }, () => `deleted ${id}`) });
    const cancel = el("button", { class: "btn small", text: "Cancel", onclick: () =>
      act("cancel", { id }, {
        title: "Cancel this message?", text: `${id} will never be delivered.`,
        label: "Cancel message",
      }, (r) => (r.cancelled ? `cancelled ${id}` : `${id} is in a handler: its guard is told`)) });
    const requeue = el("button", { class: "btn small primary", text: "Requeue", onclick: () =>
      act("requeue", { id }, null, () => `requeued ${id}`) });
    return { waiting: [cancel, del], delayed: [cancel, del], unacked: [del], dead: [requeue, del] }[where];
  }

  // ---- start -------------------------------------------------------------------------
  if (config.page === "queue") queuePage(config.queue); else overview();
  tick();
})();
