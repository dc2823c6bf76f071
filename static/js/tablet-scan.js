// Camera scanning of vaccination tickets on the tablet page.
//
// Progressive enhancement only: the plain form (#scan-form, typed digits or
// a keyboard-wedge scanner ending with Enter) works without this script, and
// nothing here intercepts its native submit. This script adds a camera
// button, fills #ticket-input from a detected QR code / Codabar and submits
// the same form, so the server validates every path the same way.
//
// All user-visible text comes from data-* attributes rendered by the server
// in the page's language; none is written here.

import { createDetector } from "./detector.js";

const FORMATS = ["qr_code", "codabar"];
// Frequent enough to feel instant, rare enough that a WASM decode of a
// 720p frame does not starve a tablet's CPU.
const POLL_MS = 150;
// A ticket held in front of the camera is seen on many consecutive frames;
// the same value must not be posted twice (also across the page reload that
// follows a submit, hence sessionStorage).
const REPEAT_MS = 3000;
const LAST_KEY = "tablet-scan:last";

const form = document.getElementById("scan-form");
const input = document.getElementById("ticket-input");
const button = document.getElementById("camera-start");
const video = document.getElementById("camera-view");
const statusEl = document.getElementById("camera-status");

let stream = null;
// Bumped on every start/stop so that late async work (a slow getUserMedia
// or detect) from an earlier session can see it is stale and bail out.
let session = 0;
let detectorPromise = null;

if (form && input) {
  init();
}

function init() {
  // Any change typed into the field means a new ticket: hide the old result.
  input.addEventListener("input", hideResult);
  // Native submits (Enter from a wedge scanner, the submit button) and ours
  // both release the camera before the page goes away.
  form.addEventListener("submit", () => stopCamera({ refocus: false }));
  window.addEventListener("pagehide", () => stopCamera({ refocus: false }));

  if (button && video && navigator.mediaDevices?.getUserMedia) {
    button.hidden = false;
    setButtonLabel(false);
    button.addEventListener("click", () => {
      if (stream || button.dataset.state === "starting") {
        stopCamera({ refocus: true });
      } else {
        startCamera();
      }
    });
  }

  focusTicketInput();
}

// Keyboard-wedge scanners type into whatever has focus, so the ticket field
// should have it — but not at the cost of taking it away from the product /
// lot selects or the confirm button the person is using.
function focusTicketInput() {
  const active = document.activeElement;
  const busyElsewhere =
    active &&
    active !== input &&
    active !== button &&
    active !== document.body &&
    active.matches("input, select, textarea, button, [contenteditable]");
  if (!busyElsewhere) {
    input.focus();
  }
}

function hideResult() {
  const result = document.getElementById("result");
  if (result) {
    result.hidden = true;
  }
}

function setStatus(key) {
  if (!statusEl) return;
  statusEl.textContent = key ? (button?.dataset[key] ?? "") : "";
}

function setButtonLabel(running) {
  const label = running ? button.dataset.labelStop : button.dataset.labelStart;
  if (label) {
    button.textContent = label;
  }
}

async function startCamera() {
  const token = ++session;
  hideResult();
  button.dataset.state = "starting";
  setButtonLabel(true);
  setStatus("msgStarting");

  // Start loading the decoder while the camera permission prompt is open.
  const detecting = getDetector();
  detecting.catch(() => {}); // handled below; avoid an unhandled rejection

  let media;
  try {
    media = await navigator.mediaDevices.getUserMedia({
      audio: false,
      // "ideal" so that a device without a rear camera still gets one; the
      // higher resolution helps with the thin bars of Codabar.
      video: {
        facingMode: { ideal: "environment" },
        width: { ideal: 1280 },
        height: { ideal: 720 },
      },
    });
  } catch (err) {
    if (token !== session) return;
    const denied = err?.name === "NotAllowedError" || err?.name === "SecurityError";
    fail(denied ? "msgDenied" : "msgUnsupported");
    return;
  }
  if (token !== session) {
    // Stopped (or restarted) while the permission prompt was open.
    media.getTracks().forEach((t) => t.stop());
    return;
  }
  stream = media;
  for (const track of media.getVideoTracks()) {
    // Another app took the camera, or it was unplugged.
    track.addEventListener("ended", () => {
      if (token === session) stopCamera({ refocus: true });
    });
  }

  video.srcObject = media;
  video.muted = true; // autoplay policies require it even with the attribute
  video.hidden = false;
  try {
    await video.play();
  } catch {
    // play() can reject when interrupted by a stop; the checks below decide.
  }

  let detector;
  try {
    detector = await detecting;
  } catch {
    if (token === session) fail("msgUnsupported");
    return;
  }
  if (token !== session) return;

  delete button.dataset.state;
  setStatus("msgScanning");
  scanLoop(detector, token);
}

function fail(statusKey) {
  stopCamera({ refocus: true });
  setStatus(statusKey);
}

function stopCamera({ refocus }) {
  session++;
  delete button?.dataset.state;
  if (stream) {
    stream.getTracks().forEach((t) => t.stop());
    stream = null;
  }
  if (video) {
    video.pause();
    video.srcObject = null;
    video.hidden = true;
  }
  if (button) {
    setButtonLabel(false);
  }
  setStatus(null);
  if (refocus) {
    focusTicketInput();
  }
}

// One detect() at a time, then wait: detect() on the WASM fallback can take
// longer than a frame, and overlapping calls would only queue up.
async function scanLoop(detector, token) {
  while (token === session) {
    if (video.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA && video.videoWidth > 0) {
      let codes = [];
      try {
        codes = await detector.detect(video);
      } catch {
        // A frame that cannot be read (e.g. while the stream settles) is
        // not fatal; try the next one.
      }
      if (token !== session) return;
      for (const code of codes) {
        if (accept(code)) return;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

// Returns true when the value was taken and the form submitted.
function accept(code) {
  const value = normalise(code.rawValue, code.format);
  if (value === null) return false;
  if (recentlySubmitted(value)) return false;
  rememberSubmitted(value);

  hideResult();
  input.value = value;
  stopCamera({ refocus: false });
  if (typeof form.requestSubmit === "function") {
    // requestSubmit fires the submit event and runs constraint validation,
    // exactly like pressing the submit button.
    form.requestSubmit();
  } else {
    form.submit();
  }
  return true;
}

// The server does the real validation (18-digit OCR line, or municipality
// code + ticket number with or without a separator); here we only remove
// what the symbology adds and drop reads that cannot be a ticket at all.
function normalise(raw, format) {
  let value = String(raw ?? "").trim();
  if (format === "codabar") {
    // Codabar start/stop characters are A-D; decoders report them in
    // either case and some keep them in rawValue.
    value = value.replace(/^[A-D]/i, "").replace(/[A-D]$/i, "").trim();
  }
  return /\d/.test(value) ? value : null;
}

function recentlySubmitted(value) {
  try {
    const last = JSON.parse(sessionStorage.getItem(LAST_KEY) ?? "null");
    return last?.value === value && Date.now() - last.at < REPEAT_MS;
  } catch {
    return false;
  }
}

function rememberSubmitted(value) {
  try {
    sessionStorage.setItem(LAST_KEY, JSON.stringify({ value, at: Date.now() }));
  } catch {
    // Storage unavailable (private mode, quota): the guard is best effort.
  }
}

function getDetector() {
  detectorPromise ??= createDetector(FORMATS).catch((err) => {
    detectorPromise = null; // allow a retry on the next click
    throw err;
  });
  return detectorPromise;
}

