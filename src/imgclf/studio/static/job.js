// A training job's page: its curves, log, diagnosis, Stop and Resume.
"use strict";

const {jobId, run} = pageData();
let planned = 2;  // epochs the run will train (from its "Epoch k/N" lines): the x axis spans them all
function points(rows, key) {
  const n = Math.max(rows.length, planned, 2);
  return rows.filter(r => key in r).map(r => `${40 + 550 * (r.epoch - 1) / (n - 1)},${10 + 180 * (1 - r[key])}`).join(" ");
}
function show(job) {
  for (const line of job.log) { const m = /Epoch \d+\/(\d+)/.exec(line); if (m) planned = Number(m[1]); }
  document.getElementById("state").textContent = job.status;
  document.getElementById("train").setAttribute("points", points(job.history, "accuracy"));
  document.getElementById("val").setAttribute("points", points(job.history, "val_accuracy"));
  const last = job.history[job.history.length - 1];
  document.getElementById("epochs").textContent = last ? `epoch ${last.epoch}: accuracy ${last.accuracy.toFixed(4)}` + ("val_accuracy" in last ? `, val_accuracy ${last.val_accuracy.toFixed(4)}` : "") : "waiting for the first epoch ...";
  document.getElementById("log").textContent = job.log.join("\n");
  const done = !["queued", "running"].includes(job.status);
  if (done) say("");
  const box = document.getElementById("diagnosis");
  box.style.display = job.diagnosis ? "" : "none";
  if (job.diagnosis) {
    document.getElementById("verdict").textContent = job.diagnosis.verdict.replace("_", " ");
    document.getElementById("message").textContent = job.diagnosis.message;
    document.getElementById("remedies").replaceChildren(...job.diagnosis.remedies.map(r => Object.assign(document.createElement("li"), {textContent: r})));
  }
  document.getElementById("stop").style.display = done ? "none" : "";
  document.getElementById("resume").style.display = job.status === "interrupted" ? "" : "none";
  document.getElementById("report").style.display = job.status === "finished" ? "" : "none";
}
follow(jobId, show);
document.getElementById("stop").onclick = async () => { try { await post(`/api/jobs/${jobId}/stop`); say("Stopping ..."); } catch (e) { say(e.message); } };
document.getElementById("resume").onclick = async () => { try { const job = await post("/api/train", {resume: run}); location.href = `/jobs/${job.id}`; } catch (e) { say(e.message); } };
