// Camera reading of a certificate's QR code on the public verify page.
//
// Progressive enhancement: the form (#verify-form) takes pasted text and
// works without this script. This adds a camera button; a QR code whose
// text starts with "shc:/" fills #card-input and submits the same form, so
// the server checks every card the same way. Texts come from data-*
// attributes rendered in the page's language.

import { createCamera, submit } from "./camera-scan.js";

const form = document.getElementById("verify-form");
const input = document.getElementById("card-input");
const button = document.getElementById("camera-start");
const video = document.getElementById("camera-view");
const statusEl = document.getElementById("camera-status");

if (form && input && button && video && navigator.mediaDevices?.getUserMedia) {
  const camera = createCamera({
    video,
    formats: ["qr_code"],
    take(code) {
      const card = String(code.rawValue ?? "").trim();
      if (!/^shc:\//i.test(card)) return false;
      input.value = card;
      camera.stop({ refocus: false });
      submit(form);
      return true;
    },
    onStatus: say,
    onStopped() {
      button.textContent = button.dataset.labelStart;
      say("msgIdle");
    },
  });
  button.hidden = false;
  button.addEventListener("click", () => {
    if (camera.running) {
      camera.stop({ refocus: false });
    } else {
      button.textContent = button.dataset.labelStop;
      camera.start();
    }
  });
  window.addEventListener("pagehide", () => camera.stop({ refocus: false }));
}

function say(key) {
  if (statusEl) statusEl.textContent = statusEl.dataset[key] ?? "";
}
