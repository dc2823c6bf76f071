// A camera that reads codes, shared by the pages that scan (the tablet's
// tickets, the public verify page's certificates): the stream, the detector
// and the loop that asks it one frame at a time. Each page decides what a
// code read is worth (`take`) and what its own controls show (`onStatus`,
// `onStopped`).

import { createDetector } from "./detector.js";

// Frequent enough to feel instant, rare enough that a WASM decode of a
// 720p frame does not starve a tablet's CPU.
const POLL_MS = 150;

export function createCamera({ video, formats, take, onStatus, onStopped }) {
  let stream = null;
  let starting = false;
  // Bumped on every start/stop so that late async work (a slow getUserMedia
  // or detect) from an earlier session can see it is stale and bail out.
  let session = 0;
  let detectorPromise = null;

  function detector() {
    detectorPromise ??= createDetector(formats).catch((err) => {
      detectorPromise = null; // allow a retry on the next start
      throw err;
    });
    return detectorPromise;
  }

  async function start() {
    const token = ++session;
    starting = true;
    onStatus("msgStarting");
    // Start loading the decoder while the camera permission prompt is open.
    const detecting = detector();
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
        if (token === session) stop({ refocus: true });
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

    let found;
    try {
      found = await detecting;
    } catch {
      if (token === session) fail("msgUnsupported");
      return;
    }
    if (token !== session) return;
    starting = false;
    onStatus("msgScanning");
    scan(found, token);
  }

  function fail(statusKey) {
    stop({ refocus: true });
    onStatus(statusKey);
  }

  function stop({ refocus }) {
    session++;
    starting = false;
    if (stream) {
      stream.getTracks().forEach((t) => t.stop());
      stream = null;
    }
    video.pause();
    video.srcObject = null;
    video.hidden = true;
    onStopped({ refocus });
  }

  // One detect() at a time, then wait: detect() on the WASM fallback can
  // take longer than a frame, and overlapping calls would only queue up.
  async function scan(found, token) {
    while (token === session) {
      if (video.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA && video.videoWidth > 0) {
        let codes = [];
        try {
          codes = await found.detect(video);
        } catch {
          // A frame that cannot be read (e.g. while the stream settles) is
          // not fatal; try the next one.
        }
        if (token !== session) return;
        if (codes.some(take)) return;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  return {
    start,
    stop,
    get running() {
      return stream !== null || starting;
    },
  };
}

// Submits a form as its submit button would (constraint validation and the
// submit event included), where the browser can.
export function submit(form) {
  if (typeof form.requestSubmit === "function") {
    form.requestSubmit();
  } else {
    form.submit();
  }
}
