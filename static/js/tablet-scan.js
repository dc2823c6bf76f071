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

import { createCamera, submit } from "./camera-scan.js";

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

if (form && input) {
  init();
}

function init() {
  // Any change typed into the field means a new ticket: hide the old result.
  input.addEventListener("input", hideResult);

  if (button && video && navigator.mediaDevices?.getUserMedia) {
    const camera = createCamera({
      video,
      formats: ["qr_code", "codabar"],
      take: (code) => take(code, camera),
      onStatus: setStatus,
      onStopped({ refocus }) {
        setButtonLabel(false);
        setStatus(null);
        if (refocus) focusTicketInput();
      },
    });
    // Native submits (Enter from a wedge scanner, the submit button) and
    // ours both release the camera before the page goes away.
    form.addEventListener("submit", () => camera.stop({ refocus: false }));
    window.addEventListener("pagehide", () => camera.stop({ refocus: false }));
    button.hidden = false;
    setButtonLabel(false);
    button.addEventListener("click", () => {
      if (camera.running) {
        camera.stop({ refocus: true });
      } else {
        hideResult();
        setButtonLabel(true);
        camera.start();
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

// True when the code was taken and the form submitted.
function take(code, camera) {
  const value = normalise(code.rawValue, code.format);
  if (value === null) return false;
  if (recentlySubmitted(value)) return false;
  rememberSubmitted(value);

  hideResult();
  input.value = value;
  camera.stop({ refocus: false });
  submit(form);
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
