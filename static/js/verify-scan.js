// Camera reading of a certificate's QR code on the public verify page.
//
// Progressive enhancement: the form (#verify-form) takes pasted text and
// works without this script. This adds a camera button; a QR code whose
// text starts with "shc:/" fills #card-input and submits the same form, so
// the server checks every card the same way. Texts come from data-*
// attributes rendered in the page's language.

import { createDetector } from "./detector.js";

const POLL_MS = 150;

const form = document.getElementById("verify-form");
const input = document.getElementById("card-input");
const button = document.getElementById("camera-start");
const video = document.getElementById("camera-view");
const statusEl = document.getElementById("camera-status");

let stream = null;
let session = 0;

if (form && input && button && video && navigator.mediaDevices?.getUserMedia) {
  button.hidden = false;
  button.addEventListener("click", () => (stream ? stop() : start()));
  window.addEventListener("pagehide", stop);
}

function say(key) {
  if (statusEl) statusEl.textContent = statusEl.dataset[key] ?? "";
}

async function start() {
  const token = ++session;
  say("msgStarting");
  button.textContent = button.dataset.labelStop;
  const detecting = createDetector(["qr_code"]);
  detecting.catch(() => {});
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { facingMode: { ideal: "environment" }, width: { ideal: 1280 } },
    });
  } catch (err) {
    const denied = err?.name === "NotAllowedError" || err?.name === "SecurityError";
    stop();
    say(denied ? "msgDenied" : "msgUnsupported");
    return;
  }
  if (token !== session) return stop();
  video.srcObject = stream;
  video.muted = true;
  video.hidden = false;
  try {
    await video.play();
  } catch {
    // Interrupted by a stop; the loop below notices.
  }
  let detector;
  try {
    detector = await detecting;
  } catch {
    stop();
    say("msgUnsupported");
    return;
  }
  say("msgScanning");
  while (token === session) {
    if (video.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA) {
      let codes = [];
      try {
        codes = await detector.detect(video);
      } catch {
        // An unreadable frame; try the next.
      }
      const card = codes.map((c) => String(c.rawValue ?? "").trim()).find((v) => /^shc:\//i.test(v));
      if (card && token === session) {
        input.value = card;
        stop();
        form.requestSubmit ? form.requestSubmit() : form.submit();
        return;
      }
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function stop() {
  session++;
  if (stream) stream.getTracks().forEach((t) => t.stop());
  stream = null;
  video.srcObject = null;
  video.hidden = true;
  button.textContent = button.dataset.labelStart;
  say("msgIdle");
}
