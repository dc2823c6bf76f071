// The barcode detector shared by the camera pages: the browser's own
// BarcodeDetector when it reads every format asked for, else the vendored
// ZXing-WASM ponyfill behind the same API, served from our own origin.

// Resolved against this script's URL rather than hard-coded, so the vendored
// decoder is always fetched from our own origin next to /static/js/.
const VENDOR_URL = new URL("../vendor/barcode-detector/", import.meta.url);

export async function createDetector(formats) {
  // Prefer the native detector (fast, no download) only if it reads every
  // symbology asked for; e.g. some platforms lack Codabar.
  const Native = window.BarcodeDetector;
  if (typeof Native === "function" && typeof Native.getSupportedFormats === "function") {
    try {
      const supported = await Native.getSupportedFormats();
      if (formats.every((f) => supported.includes(f))) {
        return new Native({ formats });
      }
    } catch {
      // Fall through to the vendored decoder.
    }
  }

  // Loaded on demand so the ~1 MB .wasm is only fetched when the camera is
  // actually used.
  const { BarcodeDetector, prepareZXingModule } = await import(
    new URL("ponyfill.js", VENDOR_URL).href
  );
  // zxing-wasm would otherwise fetch the .wasm from a public CDN, which the
  // CSP forbids and which must not be needed. This has to run before the
  // first `new BarcodeDetector()`; fireImmediately makes it fetch and
  // instantiate now so a failure surfaces here instead of on every frame.
  await prepareZXingModule({
    overrides: {
      locateFile: (path, prefix) =>
        path.endsWith(".wasm") ? new URL(path, VENDOR_URL).href : prefix + path,
    },
    fireImmediately: true,
  });
  return new BarcodeDetector({ formats });
}
