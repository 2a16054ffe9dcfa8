// imgclf studio: the few helpers every page uses (plain JavaScript, no library).
"use strict";

// The values the server gave this page: the JSON of its <script type="application/json" id="page-data"> (data,
// not code: the studio's Content-Security-Policy runs scripts from /static/ only).
function pageData() {
  const block = document.getElementById("page-data");
  return block ? JSON.parse(block.textContent) : {};
}

// POST JSON (or a FormData) to the studio; the answer's JSON, or an Error carrying the server's one-line reason.
async function post(url, body) {
  const form = body instanceof FormData;
  const answer = await fetch(url, {method: "POST", headers: form ? {} : {"Content-Type": "application/json"},
                                   body: form ? body : JSON.stringify(body || {})});
  const json = await answer.json().catch(() => ({error: answer.statusText}));
  if (!answer.ok) throw new Error(json.error || answer.statusText);
  return json;
}

// Show a line in the page's status area (role="status": screen readers announce it).
function say(text) {
  const status = document.getElementById("status");
  if (status) status.textContent = text;
}

// Follow a background job (training, suspects, triage) until it ends, then call done(job).
function follow(jobId, progress, done) {
  const source = new EventSource(`/api/jobs/${jobId}/events`);
  source.onmessage = (event) => {
    const job = JSON.parse(event.data);
    if (progress) progress(job);
    if (!["queued", "running"].includes(job.status)) { source.close(); if (done) done(job); }
  };
}

// A webcam stream into a <video> element (getUserMedia); resolves to the stream, or throws with why.
async function startCamera(video) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia)
    throw new Error("This browser offers no camera here (a camera needs http://127.0.0.1 or https).");
  const stream = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480}, audio: false});
  video.srcObject = stream;
  await video.play();
  return stream;
}

// One frame of a playing <video> as a JPEG Blob.
function grabFrame(video) {
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  return new Promise(resolve => canvas.toBlob(resolve, "image/jpeg", 0.9));
}
