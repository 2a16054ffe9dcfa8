// The home page: export a run, compare runs.
"use strict";

// Export starts on the button only: arrowing through the formats chooses one, it starts nothing.
for (const button of document.querySelectorAll(".export")) button.onclick = async () => {
  const select = [...document.querySelectorAll(".format")].find(s => s.dataset.run === button.dataset.run);
  say(`Exporting ${button.dataset.run} to ${select.value} ...`);
  try {
    const json = await post("/api/export", {run: button.dataset.run, format: select.value});
    say(`Exported: top-1 agreement with Keras ${json.parity ? json.parity.top1_agreement : "not checked"}.`);
    location.href = json.download;
  } catch (e) { say(e.message); }
};
document.getElementById("compare").onclick = async () => {
  const runs = [...document.querySelectorAll(".pick:checked")].map(i => i.value);
  if (runs.length < 2) { say("Select two or more runs."); return; }
  say("Comparing ...");
  try { location.href = (await post("/api/compare", {runs})).page; } catch (e) { say(e.message); }
};
