// The inbox: unlabelled pictures one at a time, filed by a key press, undone with Z.
"use strict";

const {rows, into} = pageData();
let at = 0;
const filed = [];  // the places of the pictures filed, newest last: Z goes back to the one it puts back
function current() {
  const last = at >= rows.length;
  document.getElementById("done").style.display = last ? "" : "none";
  document.getElementById("viewer").style.display = last ? "none" : "flex";
  if (last) return;
  const row = rows[at];
  document.getElementById("picture").src = `/image?path=${encodeURIComponent(row.path)}`;
  document.getElementById("position").textContent = `${at + 1} of ${rows.length} · ${row.path.split("/").pop()}`;
  const guess = document.getElementById("guess");
  guess.textContent = row.unknown ? `unknown (closest: ${row.label})` : `${row.label}?`;
  guess.className = row.unknown ? "unknown" : "";
  document.getElementById("scores").textContent = `probability ${row.probability.toFixed(3)}, margin ${row.margin.toFixed(3)}` + (row.ood_score !== null ? `, out-of-distribution ${row.ood_score.toFixed(3)}` : "") + `, priority ${row.priority.toFixed(3)}`;
}
async function file(label) {
  if (at >= rows.length) return;
  try { await post("/api/inbox/file", {into, path: rows[at].path, label}); say(`Filed under ${label}.`); filed.push(at); at += 1; current(); }
  catch (e) { say(e.message); }
}
async function back() {
  try { const r = await post("/api/undo", {data: into}); if (r.undone.length && filed.length) at = filed.pop(); say(`Put back ${r.undone.length}.`); current(); }
  catch (e) { say(e.message); }
}
if (rows.length) {
  current();
  for (const button of document.querySelectorAll(".file")) button.onclick = () => file(button.dataset.label);
  document.getElementById("skip").onclick = () => { at = Math.min(at + 1, rows.length); current(); };
  document.getElementById("back").onclick = back;
  const labels = [...document.querySelectorAll(".file")].map(b => b.dataset.label);
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, select, textarea") || event.ctrlKey || event.metaKey || event.altKey) return;
    const k = Number(event.key);
    if (k >= 1 && k <= labels.length) file(labels[k - 1]);
    else if (event.key.toLowerCase() === "u") { at = Math.min(at + 1, rows.length); current(); }
    else if (event.key.toLowerCase() === "z") back();
  });
}
document.getElementById("sort")?.addEventListener("click", async () => {
  const form = Object.fromEntries(new FormData(document.getElementById("choose")));
  try {
    const job = await post("/api/inbox/triage", {run: form.run, folder: form.folder});
    follow(job.id, j => say(`Sorting: ${j.status} ${j.log.slice(-1)[0] || ""}`),
           j => { if (j.status === "finished") location.href = `/inbox?${new URLSearchParams(form)}`; else say(`Sorting ${j.status}: ${j.log.slice(-1)[0] || ""}`); });
  } catch (e) { say(e.message); }
});
