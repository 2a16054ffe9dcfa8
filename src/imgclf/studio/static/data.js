// The data page: move, quarantine, undo and restore pictures, check every file, find suspected wrong labels,
// add pictures from the webcam or the disk.
"use strict";

const {data, split, classes, view, why, total, suspectsJob} = pageData();
const selected = () => [...document.querySelectorAll(".grid input:checked")].map(i => i.value);
const reload = () => setTimeout(() => location.reload(), 400);
async function act(promise, text) { try { say(text(await promise)); reload(); } catch (e) { say(e.message); } }
document.getElementById("move").onclick = () => {
  const files = selected();
  if (!files.length) return say("Select images first.");
  act(post("/api/relabel", {data, files, to: document.getElementById("to").value}), r => `Moved ${r.moved.length}.`);
};
for (const button of document.querySelectorAll(".suggested")) button.onclick = (event) => {
  event.preventDefault();
  act(post("/api/relabel", {data, files: [button.dataset.path], to: button.dataset.to}), r => `Moved ${r.moved.length}.`);
};
document.getElementById("quarantine").onclick = () => {
  const files = selected();
  if (!files.length) return say("Select images first.");
  act(post("/api/quarantine", {data, files, why}), r => `Quarantined ${r.quarantined.length}.`);
};
document.getElementById("undo").onclick = () => act(post("/api/undo", {data}), r => `Put back ${r.undone.length}.`);
document.getElementById("restore").onclick = () => act(post("/api/restore", {data}), r => `Restored ${r.restored.length}.`);
document.getElementById("doctor").onclick = () => {
  const started = Date.now();
  const tick = () => say(`Checking every file (${total} pictures, a few hundred a second) ... ${Math.round((Date.now() - started) / 1000)} s`);
  tick();
  const timer = setInterval(tick, 1000);
  act(post("/api/doctor", {data}).finally(() => clearInterval(timer)),
      r => `Checked ${r.files} files: ${Object.keys(r.problems).length} kinds of finding.`);
};
function watchSuspects(job) {
  document.getElementById("suspects-state").textContent = `job ${job.status}`;
  follow(job.id, j => { document.getElementById("suspects-state").textContent = `job ${j.status}: ${j.log.slice(-1)[0] || "starting ..."}`; },
         j => { if (j.status === "finished") location.href = `?view=suspects`; });
}
document.getElementById("suspects").onclick = async () => {
  const body = {data, backbone: document.getElementById("backbone").value, weights: document.getElementById("weights").value};
  try { watchSuspects(await post("/api/suspects", body)); } catch (e) { say(e.message); }
};
if (suspectsJob) watchSuspects(suspectsJob);
async function save(blobs) {
  const cls = document.getElementById("into")?.value.trim();
  if (!cls) return say("Name the class first.");
  const form = new FormData();
  form.append("data", data); form.append("split", split); form.append("cls", cls);
  form.append("create", String(!classes.includes(cls)));
  blobs.forEach((b, k) => form.append("file", b, b.name || `frame-${k}.jpg`));
  try { const r = await post("/api/capture", form); say(`Saved ${r.saved.length} pictures into ${cls}.`); setTimeout(() => location.href = `?split=${encodeURIComponent(split)}&cls=${encodeURIComponent(cls)}`, 600); }
  catch (e) { say(e.message); }
}
const camera = document.getElementById("camera");
document.getElementById("camera-on")?.addEventListener("click", async () => {
  try { await startCamera(camera); document.getElementById("burst").disabled = false; say("Camera on."); }
  catch (e) { say(`No camera: ${e.message}`); }
});
document.getElementById("burst")?.addEventListener("click", async () => {
  const n = Math.max(1, Math.min(50, Number(document.getElementById("frames").value) || 5)), blobs = [];
  for (let k = 0; k < n; k++) { say(`Frame ${k + 1} of ${n} ...`); blobs.push(await grabFrame(camera)); await new Promise(r => setTimeout(r, 250)); }
  save(blobs);
});
document.getElementById("files")?.addEventListener("change", (event) => save([...event.target.files]));
const drop = document.getElementById("drop");
if (drop) {
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => { event.preventDefault(); drop.classList.remove("over"); save([...event.dataTransfer.files]); });
}
