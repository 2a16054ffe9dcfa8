// imgclf serve's page: drop or pick images; each gets its label, a bar a class and its Grad-CAM heat-map.
const results = document.getElementById("results");
const drop = document.getElementById("drop");
const picker = document.getElementById("picker");

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

async function classify(file) {
  const row = el("div", "result");
  const original = el("img"); original.alt = file.name; original.src = URL.createObjectURL(file);
  const heat = el("img", "heatmap"); heat.alt = "Grad-CAM of " + file.name;
  const info = el("div", "info");
  info.appendChild(el("p", "filename muted", file.name));
  row.append(original, heat, info);
  results.prepend(row);
  const form = new FormData(); form.append("file", file);
  const answer = await fetch("predict", { method: "POST", body: form });
  const body = await answer.json();
  if (!answer.ok) { info.appendChild(el("p", "error", body.error || answer.statusText)); heat.remove(); return; }
  const p = body.predictions[0];
  if (p.unknown) {
    info.appendChild(el("p", "label unknown", "Not sure: this doesn't look like any class I know"));
    info.appendChild(el("p", "muted", "closest: " + p.label + " (" + (100 * p.probabilities[p.label]).toFixed(1) + " %)"));
  } else {
    info.appendChild(el("p", "label", p.label + " (" + (100 * p.probabilities[p.label]).toFixed(1) + " %)"));
  }
  for (const [name, value] of Object.entries(p.probabilities)) {
    const bar = el("div", "bar");
    const track = el("div", "track"); const fill = el("div", "fill"); fill.style.width = (100 * value).toFixed(1) + "%";
    track.appendChild(fill);
    bar.append(el("span", "name", name), track, el("span", "value", (100 * value).toFixed(1) + " %"));
    info.appendChild(bar);
  }
  const cam = await fetch("explain", { method: "POST", body: form });
  if (cam.ok) heat.src = URL.createObjectURL(await cam.blob()); else heat.remove();
}

function handle(files) { for (const f of files) classify(f); }
picker.addEventListener("change", () => handle(picker.files));
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); handle(e.dataTransfer.files); });
