// The train page: start a training job.
"use strict";

document.getElementById("form")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = Object.fromEntries([...new FormData(event.target)].filter(([k, v]) => v !== ""));
  try { const job = await post("/api/train", body); location.href = `/jobs/${job.id}`; } catch (e) { say(e.message); }
});
