// Real-browser checks that the camera scanning pages read a code from a
// camera, run by tests/api/browser.rs after pages.mjs against the same
// `vrs serve --demo`. Debian's Chromium (/usr/bin/chromium) is driven
// through playwright-core, as in pages.mjs.
//
//   BASE_URL=http://127.0.0.1:PORT ARTIFACTS=tests/browser/artifacts node camera.mjs
//
// A camera here is Chromium's fake capture device playing a .y4m file that
// this script writes: a white frame with the server's own QR code of a
// ticket (tablet page, /site) or of a certificate's SMART Health Card
// (public /verify page) drawn large in the middle. The page's own scripts
// (static/js/camera-scan.js and the vendored ZXing decoder when Chromium
// has no BarcodeDetector, as on Linux) must read it and submit the form.
//
// Self-contained on a fresh demo server: it declares 古河市's (082040) LG-WAN
// network when it is not declared yet, and issues a new certificate each
// run. It records no dose, so it can run before or after pages.mjs.
//
// Prints one line per check; exits non-zero at the first failed one, with a
// screenshot of the page as it was (camera-failed-*.png in ARTIFACTS).

import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, CheckFailed, checks, expect, shcNumeric } from './harness.mjs';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const BASE_URL = (process.env.BASE_URL || '').replace(/\/+$/, '');
const ARTIFACTS = resolve(process.env.ARTIFACTS || 'artifacts');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const PASSWORD = 'demo-password-2026'; // src/demo.rs DEMO_PASSWORD, every demo account's
const MUNICIPALITY = '082040';
const MUNICIPALITY_NAME = '茨城県古河市';
// 古河市's demo residents 13 (no dose yet) and 6 (3 doses), src/demo.rs.
const TICKET_RESIDENT = 'D0000013';
const CERT_RESIDENT = 'D0000006';
// The size camera-scan.js asks getUserMedia for: a file of that size is
// delivered as it is, with no rescaling or cropping by Chromium between the
// drawn modules and the decoder.
const FRAME = { width: 1280, height: 720 };
// How long a page may take from the camera button to the submitted form:
// fetching and compiling the ~1 MB decoder and a few 150 ms polls take a
// second or two; more means the code is not being read.
const READ_MS = 20_000;

if (!/^https?:\/\/[^/]+$/.test(BASE_URL)) {
  console.error(`camera.mjs: set BASE_URL to the server's address, e.g. http://127.0.0.1:8080 (got ${JSON.stringify(process.env.BASE_URL)})`);
  process.exit(2);
}
mkdirSync(ARTIFACTS, { recursive: true });
// The .y4m files are ~1.4 MB a frame: kept out of ARTIFACTS, removed at exit.
const scratch = mkdtempSync(join(tmpdir(), 'vrs-camera-'));

let page; // the page a failure screenshots
const browsers = new Set();
// The counter is read through `run` (a spread would copy it once, as 0).
const run = checks({
  script: 'camera.mjs',
  artifacts: ARTIFACTS,
  failedPrefix: 'camera-failed-',
  currentPage: () => page,
  cleanUp: closeAll,
});
const { check, screenshot } = run;

async function closeAll() {
  await Promise.all([...browsers].map((b) => b.close().catch(() => {})));
  browsers.clear();
  rmSync(scratch, { recursive: true, force: true });
}

const guard = setTimeout(async () => {
  console.error('camera.mjs: gave up after 180 s');
  await closeAll();
  process.exit(1);
}, 180_000);


async function launch(extra = []) {
  try {
    const b = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, ...extra] });
    browsers.add(b);
    return b;
  } catch (e) {
    console.error(`camera.mjs: cannot launch ${CHROMIUM}: ${e.message}`);
    await closeAll();
    process.exit(1);
  }
}

async function newContext(browser, viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport, locale: 'ja-JP', timezoneId: 'Asia/Tokyo' });
  context.setDefaultTimeout(10_000);
  return context;
}

/**
 * Whatever a page loads must load, and its scripts must not fail: a
 * decoder that 404s or a CSP that blocks the .wasm would otherwise only
 * show as "nothing was read".
 */
function watch(p) {
  const problems = [];
  const fetched = [];
  p.on('console', (msg) => {
    if (msg.type() === 'error' && !/\/favicon\.ico$/.test(msg.location()?.url || '')) {
      problems.push(`console error on ${p.url()}: ${msg.text()}`);
    }
  });
  p.on('pageerror', (err) => problems.push(`script error on ${p.url()}: ${err.message}`));
  p.on('requestfailed', (req) => problems.push(`request failed: ${req.url()} (${req.failure()?.errorText})`));
  p.on('response', (res) => {
    fetched.push(new URL(res.url()).pathname);
    if (res.status() >= 400 && !/\/favicon\.ico$/.test(res.url())) problems.push(`HTTP ${res.status()} for ${res.url()}`);
  });
  return { problems, fetched };
}

/** Logs in; staff land on /dashboard, a tablet on its scan page. */
async function logIn(p, id, landing = '/dashboard') {
  await p.goto(`${BASE_URL}/lang/ja?next=/login`);
  await p.getByLabel('ログインID', { exact: true }).fill(id);
  await p.getByLabel('パスワード', { exact: true }).fill(PASSWORD);
  await Promise.all([p.waitForNavigation(), p.getByLabel('パスワード', { exact: true }).press('Enter')]);
  expect(new URL(p.url()).pathname === landing, `${id} landed on ${p.url()}`);
}

async function logOut(p) {
  await Promise.all([p.waitForNavigation(), p.getByRole('button', { name: 'ログアウト' }).click()]);
}

/** Opens a demo resident's record by 宛名番号; returns the record's path. */
async function openRecord(p, addressee) {
  await p.goto(`${BASE_URL}/residents`);
  await p.getByLabel('宛名番号', { exact: true }).fill(addressee);
  await Promise.all([p.waitForNavigation(), p.getByRole('button', { name: '検索' }).click()]);
  const rows = p.locator('#results tbody tr');
  expect(await rows.count() === 1, `${addressee}: found ${await rows.count()} rows`);
  await Promise.all([p.waitForNavigation(), rows.first().locator('a').click()]);
  return new URL(p.url()).pathname;
}

/**
 * An element's text for a failure message, or '' when it is not there:
 * innerText() on a missing element would wait out the whole timeout, and
 * a message is built before expect() knows whether it is needed.
 */
async function textIfAny(locator) {
  return (await locator.count()) ? (await locator.first().innerText()).trim() : '';
}

/**
 * The server's QR SVG rasterised as a camera frame: white, the code centred
 * at a whole number of pixels a module (so every module is a crisp square
 * and the SVG's own 4-module quiet zone stays white), as large as fits in
 * 90 % of the frame's height. Drawn in a blank page of an ordinary browser,
 * away from the app's CSP; the page stays on screen for a screenshot.
 * Returns the RGBA pixels and the module size.
 */
async function rasterise(p, svg) {
  const m = /viewBox="0 0 (\d+) (\d+)"/.exec(svg);
  expect(m && m[1] === m[2], `the QR SVG has no square viewBox: ${svg.slice(0, 120)}`);
  const side = Number(m[1]);
  const scale = Math.floor((FRAME.height * 0.9) / side);
  expect(scale >= 3, `a ${side}-module code would get ${scale} px a module in ${FRAME.width}x${FRAME.height}`);
  await p.setViewportSize(FRAME);
  await p.goto('about:blank');
  const b64 = await p.evaluate(async ({ svg, width, height, size }) => {
    document.body.style.margin = '0';
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    document.body.append(canvas);
    const img = new Image();
    img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
    await img.decode();
    const g = canvas.getContext('2d');
    g.imageSmoothingEnabled = false;
    g.fillStyle = '#fff';
    g.fillRect(0, 0, width, height);
    g.drawImage(img, Math.floor((width - size) / 2), Math.floor((height - size) / 2), size, size);
    const px = g.getImageData(0, 0, width, height).data;
    let s = '';
    for (let i = 0; i < px.length; i += 0x8000) s += String.fromCharCode(...px.subarray(i, i + 0x8000));
    return btoa(s);
  }, { svg, ...FRAME, size: side * scale });
  const rgba = Buffer.from(b64, 'base64');
  expect(rgba.length === FRAME.width * FRAME.height * 4, `read back ${rgba.length} bytes of pixels`);
  let dark = 0;
  for (let i = 0; i < rgba.length; i += 4) if (rgba[i] < 128) dark += 1;
  expect(dark > side * scale * 2, `only ${dark} dark pixels were drawn: the SVG did not render`);
  return { rgba, side, scale };
}

/**
 * A YUV4MPEG2 file of the picture, as --use-file-for-fake-video-capture
 * plays it (looping): 4:2:0, studio-range luma, neutral chroma since the
 * picture is grey. A few identical frames, so whichever frame the decoder
 * grabs is the whole code.
 */
function writeY4m(file, rgba, frames = 5) {
  const { width, height } = FRAME;
  const luma = width * height;
  const frame = Buffer.alloc(luma + 2 * (width / 2) * (height / 2), 128);
  for (let i = 0; i < luma; i++) {
    const y = 0.299 * rgba[4 * i] + 0.587 * rgba[4 * i + 1] + 0.114 * rgba[4 * i + 2];
    frame[i] = 16 + Math.round((219 * y) / 255);
  }
  // 10 frames a second: a still picture needs no more, and fewer frames
  // to convert leave the CPU to the decoder.
  const parts = [Buffer.from(`YUV4MPEG2 W${width} H${height} F10:1 Ip A1:1 C420\n`, 'latin1')];
  for (let f = 0; f < frames; f++) parts.push(Buffer.from('FRAME\n', 'latin1'), frame);
  writeFileSync(file, Buffer.concat(parts));
  return file;
}

/**
 * A page in a browser of its own whose only camera plays `y4m`: the file
 * is fixed at launch, hence one browser per picture. The fake UI grants
 * the camera as a person tapping "Allow" would.
 */
async function cameraPage(y4m, viewport) {
  const b = await launch([
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    `--use-file-for-fake-video-capture=${y4m}`,
  ]);
  const context = await newContext(b, viewport);
  return context.newPage();
}

/**
 * Presses the camera button and waits for the form the page submits
 * itself; returns that request's form fields and the seconds it took.
 */
async function scanAndSubmit(p, formAction) {
  const button = p.locator('#camera-start');
  expect(await button.isVisible(), 'the script did not show the camera button (#camera-start)');
  const started = Date.now();
  const posted = p.waitForRequest((r) => r.method() === 'POST' && new URL(r.url()).pathname === formAction, { timeout: READ_MS });
  // The verify page answers at its own address, so the new document is
  // awaited as a navigation, not as a change of URL. Caught here so that a
  // timeout surfaces once, below, not as an unhandled rejection.
  const navigated = p.waitForNavigation({ timeout: READ_MS }).catch(() => null);
  await button.click();
  let req;
  try {
    req = await posted;
  } catch {
    const status = (await p.locator('#camera-status').innerText().catch(() => '')).trim();
    const video = await p.locator('#camera-view').evaluate((v) => `${v.videoWidth}x${v.videoHeight}, hidden=${v.hidden}, readyState=${v.readyState}`).catch((e) => e.message);
    throw new CheckFailed(`nothing was submitted to ${formAction} within ${READ_MS / 1000} s of pressing the camera button (status: ${JSON.stringify(status)}; video ${video})`);
  }
  const res = await navigated;
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  return { fields: new URLSearchParams(req.postData() || ''), status: res?.status(), seconds };
}

/** Which decoder read the code, from what the page fetched. */
function decoderOf(fetched) {
  return fetched.some((f) => f.endsWith('/static/vendor/barcode-detector/zxing_reader.wasm'))
    ? 'the vendored ZXing WASM'
    : "Chromium's own BarcodeDetector";
}

const t0 = Date.now();
const browser = await launch();
console.log(`     browser ${CHROMIUM} ${browser.version()}`);
const staff = await (await newContext(browser)).newPage();
const staffWatch = watch(staff);
const painter = await (await newContext(browser)).newPage();

let ticketQr = '';
let ticketNumber = '';
let ticketLine = '';
let certQr = '';
let cardText = '';
let certDoses = 0;

await check(`setup: ${MUNICIPALITY}'s LG-WAN network covers this machine (declared now if it was not)`, async () => {
  page = staff;
  await logIn(staff, `${MUNICIPALITY}-admin`);
  await staff.goto(`${BASE_URL}/admin/networks`);
  const zone = (await staff.locator('#client-zone').innerText()).trim();
  if (zone.includes('登録済みのネットワーク外です')) {
    await staff.getByLabel('ネットワーク（CIDR）', { exact: true }).fill('127.0.0.0/8');
    await staff.getByLabel('名称', { exact: true }).fill('庁舎');
    await Promise.all([staff.waitForNavigation(), staff.getByRole('button', { name: 'ネットワークを登録' }).click()]);
    const after = (await staff.locator('#client-zone').innerText()).trim();
    expect(after.includes('登録済みのネットワーク内です'), `after declaring 127.0.0.0/8: ${after}`);
    console.log('     (declared 127.0.0.0/8)');
  } else {
    expect(zone.includes('登録済みのネットワーク内です'), `#client-zone: ${zone}`);
  }
  await logOut(staff);
});

await check(`setup: staff print ${TICKET_RESIDENT}'s ticket; its QR code is the 18-digit line`, async () => {
  await logIn(staff, `${MUNICIPALITY}-staff`);
  const record = await openRecord(staff, TICKET_RESIDENT);
  ticketNumber = (await staff.locator('#tickets tr.ticket--active code').first().innerText()).trim();
  expect(/^[0-9]{10}$/.test(ticketNumber), 'no active 10-digit ticket on the record');
  await Promise.all([staff.waitForNavigation(), staff.locator('#print-ticket').click()]);
  expect(new URL(staff.url()).pathname === `${record}/ticket`, `the print link went to ${staff.url()}`);
  const sticker = staff.locator('.sticker');
  expect(await sticker.count() === 1, `${await sticker.count()} stickers on the resident's sheet`);
  ticketLine = (await sticker.getAttribute('data-ocr')) || '';
  expect(/^[0-9]{18}$/.test(ticketLine) && ticketLine.endsWith(ticketNumber), 'the sticker\'s OCR line is not 18 digits ending with the ticket number');
  ticketQr = await sticker.locator('.sticker__qr svg').evaluate((svg) => svg.outerHTML);
  expect(staffWatch.problems.length === 0, staffWatch.problems.join('\n'));
});

await check(`setup: staff issue a certificate for ${CERT_RESIDENT} and download its card`, async () => {
  const record = await openRecord(staff, CERT_RESIDENT);
  await Promise.all([staff.waitForNavigation(), staff.locator('#new-certificate').click()]);
  expect(new URL(staff.url()).pathname === `${record}/certificates/new`, `landed on ${staff.url()}`);
  await staff.locator('#applied').check();
  await staff.getByLabel('本人確認書類', { exact: true }).selectOption({ label: '個人番号カード' });
  await Promise.all([staff.waitForNavigation(), staff.locator('#issue-certificate').click()]);
  const m = /^\/certificates\/([0-9A-F]{4}(?:-[0-9A-F]{4}){3})$/.exec(new URL(staff.url()).pathname);
  expect(m, `issuing landed on ${staff.url()}: ${await textIfAny(staff.locator('#cert-errors'))}`);
  certDoses = await staff.locator('#cert-doses tbody tr').count();
  expect(certDoses > 0, 'the certificate lists no dose');
  certQr = await staff.locator('.certificate__qr svg').evaluate((svg) => svg.outerHTML);
  const card = await staff.evaluate(async (href) => (await fetch(href)).text(), `/certificates/${m[1]}/card`);
  const jws = JSON.parse(card).verifiableCredential?.[0] || '';
  expect(/^[\w-]+\.[\w-]+\.[\w-]+$/.test(jws), 'the card does not hold a compact JWS');
  cardText = shcNumeric(jws);
  expect(staffWatch.problems.length === 0, staffWatch.problems.join('\n'));
  await logOut(staff);
});

let ticketY4m = '';
let certY4m = '';

await check(`fake camera: the ticket's and the card's QR codes become ${FRAME.width}x${FRAME.height} .y4m files`, async () => {
  page = painter;
  const ticket = await rasterise(painter, ticketQr);
  await screenshot('camera-frame-ticket.png');
  ticketY4m = writeY4m(join(scratch, 'ticket.y4m'), ticket.rgba);
  const cert = await rasterise(painter, certQr);
  await screenshot('camera-frame-certificate.png');
  certY4m = writeY4m(join(scratch, 'certificate.y4m'), cert.rgba);
  console.log(`     (ticket: ${ticket.side} modules with the quiet zone at ${ticket.scale} px; card: ${cert.side} modules at ${cert.scale} px)`);
});

await check('tablet: the camera button reads the ticket\'s QR code from the camera, submits it and shows the ticket\'s confirm page', async () => {
  page = await cameraPage(ticketY4m, { width: 820, height: 1180 });
  const seen = watch(page);
  await logIn(page, `${MUNICIPALITY}-tablet`, '/site');
  const { fields, status, seconds } = await scanAndSubmit(page, '/site/scan');
  // The field is what the camera read: the QR's text, nothing typed.
  expect(fields.get('ticket') === ticketLine, 'the form was submitted with something other than the ticket\'s QR text');
  expect(status === 200, `the scan answered ${status}`);
  const muni = (await page.locator('#preview-municipality').innerText()).trim();
  expect(muni === MUNICIPALITY_NAME, `municipality shown: ${muni}`);
  const shown = (await page.locator('#preview-ticket').innerText()).replace(/\D/g, '');
  expect(shown === ticketNumber, 'the confirm page shows another ticket number');
  expect(await page.locator('#confirm').isVisible(), 'no #confirm button on the confirm page');
  expect(await page.locator('#scan-error').count() === 0, `the scan was refused: ${await textIfAny(page.locator('#scan-error'))}`);
  expect(seen.problems.length === 0, seen.problems.join('\n'));
  console.log(`     (read and submitted ${seconds} s after the button, by ${decoderOf(seen.fetched)})`);
  await screenshot('camera-tablet-confirm-ja.png');
  await page.context().browser().close();
});

await check('verify: the camera button reads the card\'s QR code from the camera, submits it and shows a valid certificate', async () => {
  page = await cameraPage(certY4m, { width: 1280, height: 900 });
  const seen = watch(page);
  await page.goto(`${BASE_URL}/lang/ja?next=/verify`);
  expect(new URL(page.url()).pathname === '/verify', `/verify without login went to ${page.url()}`);
  const { fields, status, seconds } = await scanAndSubmit(page, '/verify');
  expect(fields.get('card') === cardText, 'the form was submitted with something other than the card\'s shc:/ text');
  expect(status === 200, `the verify page answered ${status}`);
  const heading = (await page.locator('#verify-result h2').innerText()).trim();
  expect(heading === '有効な証明書です', `the result says ${JSON.stringify(heading)}`);
  expect(await page.locator('#verify-result.verify-result--valid').count() === 1, 'the result is not marked valid');
  expect((await page.locator('#verify-name').innerText()).trim() !== '', 'the valid result names no one');
  const doses = await page.locator('#verify-doses tbody tr').count();
  expect(doses === certDoses, `${doses} doses on the result, ${certDoses} on the certificate`);
  expect(seen.problems.length === 0, seen.problems.join('\n'));
  console.log(`     (read and submitted ${seconds} s after the button, by ${decoderOf(seen.fetched)})`);
  await screenshot('camera-verify-valid-ja.png');
  await page.context().browser().close();
});

clearTimeout(guard);
await closeAll();
console.log(`camera checks: all ${run.passed} passed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
