// toolauth demo chat. Plain DOM, no libraries; every text goes in through textContent.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const messages = $("messages");
  const chat = $("chat");
  const input = $("input");
  const send = $("send");
  const stop = $("stop");
  const intro = $("intro");

  let threadId = newThreadId();
  let busy = false;
  let controller = null;
  const bubbles = new Map(); // model run id -> assistant bubble
  const tools = new Map(); // tool run id -> tool element
  const cards = new Map(); // connect link id -> card
  let turnCards = []; // connect cards of the running turn

  function newThreadId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function add(node) {
    intro.hidden = true;
    messages.appendChild(node);
    chat.scrollTop = chat.scrollHeight;
    return node;
  }

  function say(kind, text) {
    return add(el("li", "msg " + kind, text));
  }

  function setBusy(value) {
    busy = value;
    send.disabled = value;
    stop.hidden = !value;
    input.disabled = value;
    if (!value) input.focus();
  }

  // ---- connections chips -------------------------------------------------------------
  async function refreshConnections() {
    let data;
    try {
      const response = await fetch("api/connections", { cache: "no-store" });
      if (!response.ok) return;
      data = await response.json();
    } catch (e) {
      return;
    }
    const list = $("connections");
    list.replaceChildren();
    for (const c of data.connections || []) {
      const chip = el("li", "chip " + c.status);
      chip.appendChild(el("span", "dot"));
      const label = c.status === "active" ? "connected" : c.status.replace("_", " ");
      chip.appendChild(el("span", "label", c.name + " · " + label));
      if (c.status === "active") {
        const off = el("button", "", "Disconnect");
        off.type = "button";
        off.title = "Delete this connection so you can try the flow again";
        off.addEventListener("click", () => disconnect(c.toolkit));
        chip.appendChild(off);
      }
      list.appendChild(chip);
    }
  }

  async function disconnect(toolkit) {
    try {
      const response = await fetch("api/connections/" + encodeURIComponent(toolkit) + "/disconnect", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: "{}",
      });
      if (!response.ok) say("error", "Could not disconnect: HTTP " + response.status);
    } catch (e) {
      say("error", "Could not disconnect: " + e.message);
    }
    refreshConnections();
  }

  // ---- rendering of agent events -----------------------------------------------------
  function assistant(id) {
    let bubble = bubbles.get(id);
    if (!bubble) {
      bubble = add(el("li", "msg assistant", ""));
      bubbles.set(id, bubble);
    }
    return bubble;
  }

  function compactArgs(args) {
    if (!args || typeof args !== "object" || Object.keys(args).length === 0) return "()";
    try {
      const text = JSON.stringify(args);
      return text.length > 160 ? text.slice(0, 160) + "…" : text;
    } catch (e) {
      return "(…)";
    }
  }

  function toolStart(event) {
    const item = el("li", "tool");
    const head = el("div", "head");
    head.appendChild(el("span", "tlabel", "tool"));
    head.appendChild(el("span", "tname", event.name));
    head.appendChild(el("span", "targs", compactArgs(event.args)));
    const waiting = event.name === "COMPOSIO_MANAGE_CONNECTIONS";
    const state = el("span", "state running", waiting ? "waiting for you to connect…" : "running…");
    head.appendChild(state);
    item.appendChild(head);
    item.state = state;
    item.running = true;
    tools.set(event.id, item);
    add(item);
  }

  function pretty(text) {
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch (e) {
      return text;
    }
  }

  function toolEnd(event) {
    let item = tools.get(event.id);
    if (!item) {
      toolStart({ id: event.id, name: event.name, args: {} });
      item = tools.get(event.id);
    }
    item.running = false;
    let parsed = null;
    try {
      parsed = JSON.parse(event.result);
    } catch (e) {
      parsed = null;
    }
    if (event.status === "error") {
      item.state.className = "state error";
      item.state.textContent = "error";
    } else if (parsed && parsed.error === "connection_required") {
      item.state.className = "state needs";
      item.state.textContent = "needs your permission";
    } else {
      item.state.className = "state ok";
      item.state.textContent = "done";
    }
    const details = el("details");
    details.appendChild(el("summary", "", "Result"));
    details.appendChild(el("pre", "", pretty(event.result)));
    item.appendChild(details);
  }

  function safeUrl(url) {
    try {
      const parsed = new URL(url, window.location.href);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (e) {
      return null;
    }
  }

  function connectCard(event) {
    const linkId = String(event.link_id || "");
    const url = safeUrl(event.redirect_url);
    if (!linkId || !url || cards.has(linkId)) return;
    const name = event.toolkit_name || event.toolkit;
    const card = el("li", "connect");
    card.dataset.link = linkId;
    card.appendChild(el("p", "title", name + " needs your permission"));
    card.appendChild(
      el("p", "why", "This opens " + name + "'s own sign-in page. The assistant never sees your password or tokens.")
    );
    const button = el("button", "connect-button", "Connect " + name);
    button.type = "button";
    button.addEventListener("click", () => {
      const popup = window.open(url, "toolauth-connect-" + linkId, "popup,width=520,height=720");
      if (popup) popup.opener = null; // the provider's page gets no handle on this one
      else window.open(url, "_blank", "noopener"); // popup blocked: try a plain new tab
      if (card.pending)
        status.textContent = card.stopped
          ? "Finish on " + name + "'s page, then ask again."
          : "Waiting for you to finish on " + name + "'s page…";
    });
    card.appendChild(button);
    const status = el("p", "status", "Waiting for your permission. The assistant continues by itself.");
    card.appendChild(status);
    card.button = button;
    card.status = status;
    card.name = name;
    card.linkId = linkId;
    card.pending = true; // neither connected nor failed yet
    card.stopped = false; // the turn that waited for it has ended
    cards.set(linkId, card);
    turnCards.push(card);
    add(card);
    poll(linkId, card);
  }

  function markConnected(card) {
    if (!card.pending) return;
    card.pending = false;
    card.className = "connect connected";
    card.button.textContent = "Connected";
    card.button.disabled = true;
    card.status.textContent = card.stopped
      ? "Connected — ask again and the assistant will use it."
      : card.name + " is connected.";
    refreshConnections();
  }

  // The turn that waited for this link is over (Stop, a lost connection, or it gave up):
  // nothing continues by itself any more, but the link still works.
  function markStopped(card) {
    if (!card.pending || card.stopped) return;
    card.stopped = true;
    card.className = "connect stopped";
    card.status.textContent =
      "The assistant stopped waiting. You can still connect " + card.name + "; then ask again.";
  }

  // After a turn that ended by itself, cards still pending are no longer waited for; ask the
  // server first, so a connection that has just completed is not called stopped.
  async function settle(card) {
    try {
      const response = await fetch("api/links/" + encodeURIComponent(card.linkId), { cache: "no-store" });
      if (response.ok) {
        const data = await response.json();
        if (data.connected_account_status === "ACTIVE" && data.status === "COMPLETED") return;
      }
    } catch (e) {}
    markStopped(card);
  }

  function stopTools() {
    for (const item of tools.values()) {
      if (!item.running) continue;
      item.running = false;
      item.state.className = "state stopped";
      item.state.textContent = "stopped";
    }
  }

  function markFailed(card, why) {
    card.pending = false;
    card.className = "connect failed";
    card.button.disabled = true;
    card.status.textContent = why;
  }

  async function poll(linkId, card) {
    const deadline = Date.now() + 15 * 60 * 1000;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      let data;
      try {
        const response = await fetch("api/links/" + encodeURIComponent(linkId), { cache: "no-store" });
        if (response.status === 404) return markFailed(card, "This link no longer exists.");
        if (!response.ok) continue;
        data = await response.json();
      } catch (e) {
        continue; // the server restarts or the network hiccups: keep trying
      }
      if (data.connected_account_status === "ACTIVE" && data.status === "COMPLETED") {
        return markConnected(card);
      }
      if (data.status === "FAILED") {
        return markFailed(card, "Not connected: " + (data.error || "the flow failed") + ". Ask again for a new link.");
      }
      if (data.status === "EXPIRED") {
        return markFailed(card, "This link expired. Ask again for a new one.");
      }
    }
  }

  function handle(type, event) {
    switch (type) {
      case "token":
        assistant(event.id).textContent += event.text;
        break;
      case "message":
        assistant(event.id).textContent = event.text;
        break;
      case "tool_start":
        toolStart(event);
        break;
      case "tool_end":
        toolEnd(event);
        break;
      case "connect_link":
        connectCard(event);
        break;
      case "error":
        say("error", "Error: " + event.message);
        break;
      default:
        break;
    }
    chat.scrollTop = chat.scrollHeight;
  }

  // ---- server-sent events over fetch (POST) ------------------------------------------
  function parseBlock(block) {
    let type = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue;
      if (line.startsWith("event:")) type = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    if (!data.length) return null;
    return { type, event: JSON.parse(data.join("\n")) };
  }

  async function ask(text) {
    if (busy || !text.trim()) return;
    say("user", text);
    setBusy(true);
    turnCards = [];
    controller = new AbortController();
    let finished = false;
    let failed = false; // the server reported an error (already shown)
    try {
      const response = await fetch("api/chat", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify({ thread_id: threadId, message: text }),
        signal: controller.signal,
      });
      if (!response.ok) {
        let why = "HTTP " + response.status;
        try {
          why = (await response.json()).error || why;
        } catch (e) {}
        say("error", "The demo server refused the message: " + why);
        finished = true;
        return;
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const parsed = parseBlock(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
          if (!parsed) continue;
          if (parsed.type === "done") finished = true;
          if (parsed.type === "error") failed = true;
          handle(parsed.type, parsed.event);
        }
      }
      if (!finished && !failed) say("error", "The answer stopped before it was complete.");
    } catch (e) {
      if (e.name === "AbortError") say("notice", "Stopped.");
      else say("error", "Lost the connection to the demo server: " + e.message);
    } finally {
      const waited = turnCards;
      turnCards = [];
      if (!finished) {
        stopTools();
        for (const card of waited) markStopped(card);
        threadId = newThreadId(); // the interrupted turn may be half done: start afresh
        say("notice", "The next message starts a new conversation.");
      } else {
        for (const card of waited) if (card.pending) settle(card);
      }
      controller = null;
      setBusy(false);
      refreshConnections();
    }
  }

  // ---- wiring -------------------------------------------------------------------------
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value;
    input.value = "";
    ask(text);
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("composer").requestSubmit();
    }
  });
  stop.addEventListener("click", () => controller && controller.abort());
  for (const button of document.querySelectorAll(".suggestion")) {
    button.addEventListener("click", () => ask(button.textContent));
  }

  fetch("api/info", { cache: "no-store" })
    .then((r) => r.json())
    .then((info) => {
      const line = $("model-line");
      line.textContent = info.scripted
        ? "Answers come from a scripted model (no LLM, fully offline). Set TOOLAUTH_DEMO_MODEL to use a real one."
        : "Answers come from " + info.model + ". Your apps still run on this machine.";
      if (info.note) {
        const note = el("p", "fine warn", info.note);
        line.after(note);
      }
    })
    .catch(() => {});
  refreshConnections();
  input.focus();
})();
