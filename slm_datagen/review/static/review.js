// slm review: one pair at a time; every decision is on disk (fsync'ed) before the page moves on.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { ids: [], current: null, detail: null, cache: new Map(), facetsLoaded: false, panel: null };

function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

async function api(path, options = {}) {
  const headers = { "Content-Type": "application/json" };
  const key = sessionStorage.getItem("slm-review-key");
  if (key) headers.Authorization = `Bearer ${key}`;
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    const given = prompt("API key for this review server");
    if (given) { sessionStorage.setItem("slm-review-key", given); return api(path, options); }
  }
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  return { ok: response.ok, status: response.status, body };
}

function filters() {
  const form = new FormData($("#filters"));
  const params = new URLSearchParams();
  for (const [key, value] of form.entries()) if (value) params.set(key, value);
  return params;
}

function renderProgress(p) {
  const share = p.held ? Math.round((100 * p.reviewed) / p.held) : 100;
  const rules = Object.entries(p.by_rule).map(([rule, r]) => `<span>${esc(rule)} ${r.reviewed}/${r.held}</span>`).join("");
  const pending = p.pending_build ? ` · <b>${p.pending_build}</b> not yet applied (run <code>slm build</code>)` : "";
  const stale = p.stale ? ` · <b>${p.stale}</b> stale` : "";
  $("#progress").innerHTML =
    `reviewed <b id="reviewed">${p.reviewed}</b> / held <b id="held">${p.held}</b> · waiting <b id="waiting">${p.waiting}</b>${stale}${pending}` +
    `<div class="bar"><i style="width:${share}%"></i></div><div class="chips">${rules}</div>`;
}

function fillFacets(facets) {
  for (const name of ["rule", "law", "kind", "split", "teacher", "audience", "status"]) {
    const select = $(`#filters [name=${name}]`);
    for (const value of facets[name] || []) select.add(new Option(value, value));
  }
  state.reasons = facets.reasons;
  state.facetsLoaded = true;
}

async function loadSummary() {
  const { ok, body } = await api("/api/summary");
  if (!ok) return showBanner(body.error);
  $("#run").textContent = `${body.run} · ${body.reviewer}`;
  renderProgress(body.progress);
  if (!state.facetsLoaded) fillFacets(body.facets);
  if (body.tear) showBanner(body.tear);
}

function showBanner(text) {
  $("#banner").hidden = !text;
  $("#banner").textContent = text || "";
}

async function loadList(keepCurrent = true) {
  const { ok, body } = await api(`/api/pairs?${filters()}`);
  if (!ok) return showBanner(body.error);
  state.ids = body.rows.map((r) => r.id);
  $("#count").textContent = `${body.total} pair(s)` + (body.total > body.rows.length ? `, first ${body.rows.length} shown` : "");
  $("#list").innerHTML = body.rows.map((r) =>
    `<li data-id="${esc(r.id)}" class="${r.id === state.current ? "current" : ""}">${esc(r.question)}` +
    `<small><span class="tag ${esc(r.status)}">${esc(r.status)}</span> ${esc(r.rule || "")} ` +
    `<span class="tag ${esc(r.state)}">${esc(r.decision || r.state)}</span></small></li>`).join("");
  if (!keepCurrent || !state.current) {
    if (state.ids.length) show(state.ids[0]); else $("#pair").innerHTML = `<p class="empty">No pair matches these filters.</p>`;
  }
}

async function fetchDetail(id) {
  if (state.cache.has(id)) return state.cache.get(id);
  const promise = api(`/api/pairs/${encodeURIComponent(id)}`).then((r) => r.body);
  state.cache.set(id, promise);
  return promise;
}

function highlightAnswer(answer, cited) {
  const spans = cited.filter((c) => c.answer_span).map((c) => c.answer_span).sort((a, b) => a[0] - b[0]);
  let out = "", at = 0;
  for (const [start, end] of spans) {
    if (start < at) continue;
    out += esc(answer.slice(at, start)) + `<mark>${esc(answer.slice(start, end))}</mark>`;
    at = end;
  }
  return out + esc(answer.slice(at));
}

function highlightSource(text, cited) {
  const words = [...new Set(cited.map((c) => c.article))].filter(Boolean);
  if (!words.length) return esc(text);
  const pattern = new RegExp(words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"), "g");
  return esc(text).replace(pattern, (m) => `<mark>${m}</mark>`);
}

function findingsHtml(findings) {
  if (!findings.length) return `<p class="note">No rule fired.</p>`;
  return `<ul class="findings">${findings.map((f) =>
    `<li class="finding-${esc(f.action)}"><b>${esc(f.rule)}</b> <span class="tag">${esc(f.action)}</span> ${esc(f.details)}</li>`).join("")}</ul>`;
}

function calculatorHtml(calc) {
  if (!calc) return "";
  const won = (n) => (n == null ? "—" : `${Number(n).toLocaleString("ko-KR")}원`);
  const steps = calc.steps.map((s) => `<tr><td>${esc(s.label)}</td><td class="won">${won(s.won)}</td><td class="note">${esc(s.article)}</td></tr>`).join("");
  return `<div class="card" id="calculator"><h3>Calculator — ${esc(calc.status)}</h3>
    <p>stated <b>${won(calc.stated_won)}</b> · computed <b>${won(calc.computed_won)}</b> (${esc(calc.result_field || "")})</p>
    <p class="note">${esc(calc.reason)}</p><table class="steps">${steps}</table></div>`;
}

function teacherChecksHtml(checks) {
  if (!checks || !(checks.judge || checks.second_teacher)) return "";
  let html = "";
  const j = checks.judge;
  if (j) {
    const verdict = j.status === "judged"
      ? `<b class="${j.score < j.min_score ? "error" : ""}">${esc(j.score)} / 5</b> (below ${esc(j.min_score)} is rejected) — ${esc(j.reason)}`
      : `<span class="note">${esc(j.status)}${j.reason ? ": " + esc(j.reason) : ""}</span>`;
    html += `<p>Judge <span class="note">${esc(j.model)}</span>: ${verdict}</p>`;
  }
  const s = checks.second_teacher;
  if (s) {
    const answer = s.status === "answered"
      ? `${s.disagreement ? `<p class="error">disagrees: ${esc(s.disagreement)}</p>` : `<p class="note">agrees on the amount and the articles</p>`}<div class="text">${esc(s.answer)}</div>`
      : `<span class="note">${esc(s.status)}</span>`;
    html += `<div>Second teacher <span class="note">${esc(s.model)}</span>: ${answer}</div>`;
  }
  return `<div class="card" id="teacher-checks"><h3>Judge and second teacher</h3>${html}</div>`;
}

function render(d) {
  const p = d.pair;
  const decision = d.decision
    ? `<span class="tag ${esc(d.state)}">${esc(d.state === "stale" ? "stale: " : "")}${esc(d.decision.decision)} by ${esc(d.decision.reviewer)}</span>`
    : `<span class="tag">no decision</span>`;
  const staleNote = d.state === "stale"
    ? `<p class="error">This decision was made on older content (the pair changed since): it is not applied. Decide again.</p>` : "";
  const cited = d.cited.map((c) => `<details ${c.text ? "" : "class=note"}><summary>${esc(c.label)}${c.text ? ` <span class="note">(${esc(c.effective_date || "")})</span>` : " — not in the collected corpus"}</summary>${c.text ? `<div class="text">${highlightSource(c.text, [c])}</div>` : ""}</details>`).join("");
  const history = d.history.map((h) => `<li>${esc(h.time)} ${esc(h.reviewer)}: <b>${esc(h.decision)}</b> ${esc(h.reason)}</li>`).join("");
  $("#pair").innerHTML = `
    <p class="meta"><span class="tag ${esc(d.status)}">${esc(d.status)}</span> ${esc(d.rule || "")} · ${esc(p.kind)} · ${esc(p.audience)} ·
      ${esc(p.teacher)}/${esc(p.model)} · ${esc(d.law || "")} · <code>${esc(p.id)}</code> ${decision}</p>
    ${staleNote}
    <div class="columns">
      <div>
        <div class="card"><h3>Question</h3><div class="text" id="question">${esc(p.question)}</div></div>
        <div class="card"><h3>Answer</h3><div class="text" id="answer">${highlightAnswer(p.answer, d.cited)}</div></div>
        <div class="card" id="findings"><h3>Findings</h3>${findingsHtml(d.findings)}</div>
        ${calculatorHtml(d.calculator)}
        ${teacherChecksHtml(d.teacher_checks)}
      </div>
      <div>
        <div class="card" id="source"><h3>Source — ${esc(d.source?.citation || "chunk not found")}</h3>
          <div class="text">${d.source ? highlightSource(d.source.text, d.cited) : ""}</div></div>
        <div class="card"><h3>Cited articles</h3>${cited || `<p class="note">No citation.</p>`}</div>
        ${history ? `<div class="card"><h3>Decisions</h3><ul>${history}</ul></div>` : ""}
      </div>
    </div>
    <div class="actions">
      <button class="approve" id="approve" ${d.can_approve ? "" : "disabled title='a rule rejects this pair: edit it instead'"}><kbd>a</kbd> approve</button>
      <button class="reject" id="reject"><kbd>r</kbd> reject…</button>
      <button class="edit" id="edit"><kbd>e</kbd> edit…</button>
      <button id="skip"><kbd>s</kbd> skip</button>
      <button id="clear" ${d.decision ? "" : "disabled"}><kbd>u</kbd> withdraw</button>
      <span id="message" role="status"></span>
    </div>
    <div id="panel"></div>`;
  $("#approve").onclick = () => decide({ decision: "approve" });
  $("#reject").onclick = openReject;
  $("#edit").onclick = openEdit;
  $("#skip").onclick = next;
  $("#clear").onclick = () => decide({ decision: "clear" });
}

async function show(id) {
  state.current = id;
  state.panel = null;
  document.querySelectorAll("#list li").forEach((li) => li.classList.toggle("current", li.dataset.id === id));
  const detail = await fetchDetail(id);
  if (state.current !== id) return;
  state.detail = detail;
  render(detail);
  const after = state.ids[state.ids.indexOf(id) + 1];
  if (after) fetchDetail(after); // the next pair loads at once
}

function message(text, isError = false) {
  const box = $("#message");
  if (box) { box.textContent = text; box.className = isError ? "error" : "note"; }
}

async function decide(body) {
  const id = state.current;
  const { ok, body: reply } = await api(`/api/pairs/${encodeURIComponent(id)}/decision`, {
    method: "POST", body: JSON.stringify({ ...body, pair_sha256: state.detail.sha256 }),
  });
  if (!ok) {
    message(reply.error, true);
    if (reply.findings) $("#edit-findings").innerHTML = findingsHtml(reply.findings);
    return false;
  }
  localStorage.removeItem(draftKey());
  state.cache.delete(id);
  renderProgress(reply.progress);
  const position = state.ids.indexOf(id);
  await loadList(true);
  const following = state.ids.find((other, i) => i >= position && other !== id) || state.ids[state.ids.length - 1];
  if (following && following !== id) show(following); else show(id);
  return true;
}

function openReject() {
  state.panel = "reject";
  const reasons = (state.reasons || []).map((r, i) => `<option value="${esc(r)}">${i + 1}. ${esc(r)}</option>`).join("");
  $("#panel").innerHTML = `<div id="reject-panel"><select id="reason-choice"><option value="">reason…</option>${reasons}</select>
    <input type="text" id="reason" placeholder="or type a reason" size="40"> <button id="confirm-reject" class="reject">reject (Enter)</button></div>`;
  $("#reason-choice").onchange = () => { $("#reason").value = $("#reason-choice").value; };
  $("#confirm-reject").onclick = confirmReject;
  $("#reason").addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); confirmReject(); } });
  $("#reason-choice").focus();
  $("#panel").scrollIntoView({ block: "nearest" });
}

function confirmReject() {
  const reason = $("#reason").value.trim();
  if (!reason) return message("a rejection needs a reason (pick one or type it)", true);
  decide({ decision: "reject", reason });
}

function draftKey() { return `slm-review-draft:${state.current}:${state.detail?.sha256}`; }

function openEdit() {
  state.panel = "edit";
  const p = state.detail.pair;
  const draft = JSON.parse(localStorage.getItem(draftKey()) || "null"); // survives a closed tab
  $("#panel").innerHTML = `<div id="edit-panel"><label>Question<textarea id="edit-question" rows="2"></textarea></label>
    <label>Answer<textarea id="edit-answer" rows="5"></textarea></label>
    <button id="check-edit">check</button> <button id="save-edit" class="edit">save edit (Ctrl+Enter)</button>
    <div id="edit-findings"></div></div>`;
  $("#edit-question").value = draft?.question ?? p.question;
  $("#edit-answer").value = draft?.answer ?? p.answer;
  const keep = () => localStorage.setItem(draftKey(), JSON.stringify({ question: $("#edit-question").value, answer: $("#edit-answer").value }));
  $("#edit-question").oninput = keep;
  $("#edit-answer").oninput = keep;
  $("#check-edit").onclick = checkEdit;
  $("#save-edit").onclick = saveEdit;
  $("#edit-answer").focus();
  $("#panel").scrollIntoView({ block: "nearest" });
}

function editBody() { return { question: $("#edit-question").value, answer: $("#edit-answer").value }; }

async function checkEdit() {
  const { body } = await api(`/api/pairs/${encodeURIComponent(state.current)}/check`, { method: "POST", body: JSON.stringify(editBody()) });
  $("#edit-findings").innerHTML = (body.refused ? `<p class="error">refused: ${esc(body.refused)}</p>` : `<p class="note">every rule passes</p>`) + findingsHtml(body.findings || []);
}

function saveEdit() { decide({ decision: "edit", ...editBody() }); }

function next() {
  const i = state.ids.indexOf(state.current);
  if (i + 1 < state.ids.length) show(state.ids[i + 1]);
}

function previous() {
  const i = state.ids.indexOf(state.current);
  if (i > 0) show(state.ids[i - 1]);
}

document.addEventListener("keydown", (e) => {
  const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement?.tagName);
  if (state.panel === "edit" && e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); return saveEdit(); }
  if (e.key === "Escape" && state.panel) { state.panel = null; $("#panel").innerHTML = ""; return; }
  if (state.panel === "reject" && /^[1-9]$/.test(e.key) && document.activeElement?.id !== "reason") {
    const reason = (state.reasons || [])[Number(e.key) - 1];
    if (reason) { e.preventDefault(); $("#reason-choice").value = reason; $("#reason").value = reason; $("#reason").focus(); }
    return;
  }
  if (typing || e.ctrlKey || e.metaKey || e.altKey || !state.detail) return;
  const actions = {
    a: () => state.detail.can_approve && decide({ decision: "approve" }),
    r: openReject, e: openEdit, s: next, j: next, k: previous,
    u: () => state.detail.decision && decide({ decision: "clear" }),
    "/": () => $("#search").focus(), "?": () => $("#help").showModal(),
  };
  if (actions[e.key]) { e.preventDefault(); actions[e.key](); }
});

$("#list").addEventListener("click", (e) => { const li = e.target.closest("li"); if (li) show(li.dataset.id); });
$("#filters").addEventListener("input", () => { clearTimeout(state.timer); state.timer = setTimeout(() => loadList(false), 200); });
$("#filters").addEventListener("submit", (e) => e.preventDefault());
$("#help-button").onclick = () => $("#help").showModal();

loadSummary().then(() => loadList(false));
