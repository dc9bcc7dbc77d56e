// The playground: an editor, Run and Stop, a stdin line, and the output
// streamed over the gateway's WebSocket protocol (/ws). No dependencies.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const code = $("code"), gutter = $("gutter"), output = $("output"), status = $("status");
  const runBtn = $("run"), stopBtn = $("stop"), stdinForm = $("stdin-form"), stdinBox = $("stdin");
  const eofBtn = $("eof"), language = $("language"), conn = $("conn");
  const token = new URLSearchParams(location.search).get("token");
  let ws = null, running = false, escaped = false, openLine = null;

  // Line numbers beside the editor, kept in step with its scrolling.
  function numberLines() {
    const n = code.value.split("\n").length;
    let s = "";
    for (let i = 1; i <= n; i++) s += i + "\n";
    gutter.textContent = s;
    gutter.scrollTop = code.scrollTop;
  }
  code.addEventListener("input", numberLines);
  code.addEventListener("scroll", () => { gutter.scrollTop = code.scrollTop; });

  // Appends text in a colour of its kind; a partial line (a prompt) stays
  // open for the rest of it.
  function append(kind, text, partial) {
    const atEnd = output.scrollTop + output.clientHeight >= output.scrollHeight - 4;
    if (openLine && openLine.dataset.kind === kind) {
      openLine.textContent += text + (partial ? "" : "\n");
    } else {
      // Input typed after a prompt goes on the prompt's line; any other
      // stream ends the open line first.
      if (openLine && kind !== "stdin") openLine.textContent += "\n";
      const span = document.createElement("span");
      span.className = kind;
      span.dataset.kind = kind;
      span.textContent = text + (partial ? "" : "\n");
      output.appendChild(span);
      openLine = span;
    }
    if (!partial) openLine = null;
    if (atEnd) output.scrollTop = output.scrollHeight;
  }

  function setRunning(on) {
    running = on;
    runBtn.disabled = on || !ws || ws.readyState !== WebSocket.OPEN;
    stopBtn.disabled = !on;
  }

  function setStatus(text, cls) {
    status.textContent = text;
    status.className = "status" + (cls ? " " + cls : "");
  }

  function measures(m) {
    const parts = [];
    if (m.verdict) parts.push("verdict " + m.verdict);
    if (m.exit_code !== undefined) parts.push("exit " + m.exit_code);
    if (m.cpu_time_ms !== undefined) parts.push("cpu " + m.cpu_time_ms.toFixed(1) + " ms");
    if (m.wall_time_ms !== undefined) parts.push("wall " + m.wall_time_ms.toFixed(1) + " ms");
    if (m.memory_peak_bytes !== undefined) parts.push("mem " + (m.memory_peak_bytes / 1048576).toFixed(1) + " MiB");
    return parts.join(" · ");
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let url = scheme + "//" + location.host + "/ws";
    if (token) url += "?token=" + encodeURIComponent(token);
    ws = new WebSocket(url);
    conn.textContent = "connecting…";
    ws.onopen = () => { conn.textContent = "connected"; setRunning(false); };
    ws.onclose = (e) => {
      conn.textContent = "disconnected" + (e.reason ? ": " + e.reason : "") + "; reconnecting…";
      if (running) setStatus("The connection closed while the program ran.", "bad");
      setRunning(false);
      runBtn.disabled = true;
      setTimeout(connect, 1500);
    };
    ws.onmessage = (e) => {
      let m;
      try { m = JSON.parse(e.data); } catch (err) { return; }
      switch (m.type) {
        case "execution_start":
          setRunning(true);
          setStatus("Running… (" + m.execution_id + ")");
          break;
        case "stdout":
        case "stderr":
          append(m.type, m.content, m.partial);
          break;
        case "execution_complete":
          setRunning(false);
          setStatus((m.stopped ? "Stopped" : m.message) + " — " + measures(m), m.verdict === "ok" ? "ok" : "bad");
          break;
        case "timeout":
          setRunning(false);
          append("sys", m.message, false);
          setStatus("Timeout — " + measures(m), "bad");
          break;
        case "error":
          if (m.verdict !== undefined) {
            // The program's error (an exception, a failed compile): its
            // stderr lines are in the output already.
            setRunning(false);
            setStatus("Error: " + m.message.split("\n").pop() + " — " + measures(m), "bad");
          } else {
            append("sys", m.message, false);
            if (m.execution_id) { setRunning(false); setStatus("Error", "bad"); }
            else if (running && /^(code|language|execute|the sandbox)/.test(m.message)) { setRunning(false); setStatus(m.message, "bad"); }
          }
          break;
      }
    };
  }

  function run() {
    if (running || !ws || ws.readyState !== WebSocket.OPEN) return;
    output.textContent = "";
    openLine = null;
    setStatus("Starting…");
    setRunning(true);
    ws.send(JSON.stringify({ type: "execute", language: language.value, code: code.value }));
  }

  function stop() {
    if (running && ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "stop" }));
  }

  runBtn.addEventListener("click", run);
  stopBtn.addEventListener("click", stop);
  stdinForm.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!running) return;
    const line = stdinBox.value;
    ws.send(JSON.stringify({ type: "stdin", data: line + "\n" }));
    append("stdin", line, false);
    stdinBox.value = "";
  });
  eofBtn.addEventListener("click", () => {
    if (running) ws.send(JSON.stringify({ type: "stdin", data: "", eof: true }));
  });

  document.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter") { e.preventDefault(); run(); }
    else if ((e.ctrlKey || e.metaKey) && e.key === ".") { e.preventDefault(); stop(); }
  });
  // Tab indents in the editor; Esc, then Tab, moves the focus on.
  code.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { escaped = true; return; }
    if (e.key === "Tab" && !escaped && !e.ctrlKey && !e.altKey) {
      e.preventDefault();
      const s = code.selectionStart, t = code.selectionEnd;
      code.setRangeText("    ", s, t, "end");
      numberLines();
    }
    escaped = false;
  });

  fetch("languages" + (token ? "?token=" + encodeURIComponent(token) : ""))
    .then((r) => r.ok ? r.json() : [])
    .then((list) => {
      if (!list.length) return;
      language.textContent = "";
      for (const l of list) {
        const o = document.createElement("option");
        o.value = l.language;
        o.textContent = l.language + (l.version ? " " + l.version : "");
        if (l.language === "python") o.selected = true;
        language.appendChild(o);
      }
    })
    .catch(() => {});

  numberLines();
  setRunning(false);
  connect();
})();
