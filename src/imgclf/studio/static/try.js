// The try page: predict a picture or the webcam live, with Grad-CAM on request.
"use strict";

const {run} = pageData();
let live = null, busy = false;
function show(json) {
  const out = document.getElementById("answer");
  out.replaceChildren();
  const title = document.createElement("h2");
  title.id = "label";
  title.textContent = json.unknown ? `unknown (closest: ${json.label})` : json.label;
  if (json.unknown) title.className = "unknown";
  out.append(title);
  for (const [name, p] of Object.entries(json.probabilities).sort((a, b) => b[1] - a[1])) {
    const row = document.createElement("div");
    row.textContent = `${name}  ${(100 * p).toFixed(1)} %`;
    out.append(row);
  }
  say(`(${json.engine}${json.ood_score !== undefined ? `, out-of-distribution score ${json.ood_score.toFixed(3)}` : ""})`);
}
async function predict(blob) {
  const form = new FormData(); form.append("file", blob, blob.name || "frame.jpg");
  show(await post(`/api/predict/${encodeURIComponent(run)}`, form));
  const heatmap = document.getElementById("heatmap");
  if (document.getElementById("explain").checked) {
    const again = new FormData(); again.append("file", blob, blob.name || "frame.jpg");
    const answer = await fetch(`/api/explain/${encodeURIComponent(run)}`, {method: "POST", body: again});
    if (answer.ok) { URL.revokeObjectURL(heatmap.src); heatmap.src = URL.createObjectURL(await answer.blob()); heatmap.style.display = "block"; }
    else say((await answer.json()).error);
  } else heatmap.style.display = "none";
}
document.getElementById("picture").onchange = async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  const shown = document.getElementById("shown");
  shown.src = URL.createObjectURL(file); shown.style.display = "block";
  say("Predicting ...");
  try { await predict(file); } catch (e) { say(e.message); }
};
const camera = document.getElementById("camera");
document.getElementById("camera-on").onclick = async () => {
  try { live = await startCamera(camera); } catch (e) { return say(`No camera: ${e.message}`); }
  camera.style.display = "block"; document.getElementById("shown").style.display = "none";
  document.getElementById("camera-on").style.display = "none"; document.getElementById("camera-off").style.display = "";
  (async function loop() {  // one frame at a time: the next leaves when the answer to the last is in
    while (live) {
      if (!busy) { busy = true; try { await predict(await grabFrame(camera)); } catch (e) { say(e.message); } busy = false; }
      await new Promise(r => setTimeout(r, 200));
    }
  })();
};
document.getElementById("camera-off").onclick = () => {
  live?.getTracks().forEach(t => t.stop()); live = null;
  camera.style.display = "none";
  document.getElementById("camera-on").style.display = ""; document.getElementById("camera-off").style.display = "none";
};
