// Real-browser checks of the VRS pages, run by tests/api/browser.rs against a
// `vrs serve --demo` it started. Debian's Chromium (/usr/bin/chromium) is
// driven through playwright-core; no browser is ever downloaded.
//
//   BASE_URL=http://127.0.0.1:PORT ARTIFACTS=tests/browser/artifacts node pages.mjs
//
// With OPERATOR_PASSWORD set to the one-time password `vrs serve` prints for
// the platform operator, the operator also issues a national and a
// prefectural viewer account and the statistics dashboard is checked as
// each; without it those checks are skipped (and say so).
//
// Prints one line per check; exits non-zero at the first failed one, with a
// screenshot of the page as it was (failed-*.png in ARTIFACTS).

import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, CheckFailed, checks, expect, shcNumeric } from './harness.mjs';
import { mkdirSync } from 'node:fs';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { join, resolve } from 'node:path';

const BASE_URL = (process.env.BASE_URL || '').replace(/\/+$/, '');
const ARTIFACTS = resolve(process.env.ARTIFACTS || 'artifacts');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const OPERATOR_PASSWORD = process.env.OPERATOR_PASSWORD || '';

if (!/^https?:\/\/[^/]+$/.test(BASE_URL)) {
  console.error(`pages.mjs: set BASE_URL to the server's address, e.g. http://127.0.0.1:8080 (got ${JSON.stringify(process.env.BASE_URL)})`);
  process.exit(2);
}
mkdirSync(ARTIFACTS, { recursive: true });

let page;
let browser;
// The counter is read through `run` (a spread would copy it once, as 0).
const run = checks({
  script: 'pages.mjs',
  artifacts: ARTIFACTS,
  failedPrefix: 'failed-',
  currentPage: () => page,
  cleanUp: () => browser?.close().catch(() => {}),
});
const { check, screenshot } = run;

/** Presses Tab until `target` has the focus; fails after `max` presses. */
async function tabTo(target, what, max = 20) {
  for (let i = 1; i <= max; i++) {
    await page.keyboard.press('Tab');
    if (await target.evaluate((el) => el === document.activeElement).catch(() => false)) {
      return i;
    }
  }
  const at = await page.evaluate(() => document.activeElement?.outerHTML?.slice(0, 120));
  throw new CheckFailed(`${what} was not reached with ${max} presses of Tab (focus is on ${at})`);
}

// Whatever the page loads besides the checked document must load: a
// stylesheet or font that 404s, or a CSP violation, fails the run.
const problems = [];

const guard = setTimeout(() => {
  console.error('pages.mjs: gave up after 240 s');
  process.exit(1);
}, 240_000);

try {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
  });
} catch (e) {
  console.error(`pages.mjs: cannot launch ${CHROMIUM}: ${e.message}`);
  process.exit(1);
}
console.log(`     browser ${CHROMIUM} ${browser.version()}`);

const context = await browser.newContext({
  viewport: { width: 1280, height: 800 },
  locale: 'ja-JP',
  timezoneId: 'Asia/Tokyo',
});
context.setDefaultTimeout(10_000);
page = await context.newPage();
// Chromium asks for /favicon.ico by itself; whether there is one is not
// what these checks are about, so its 404 is noted, not failed.
const notes = new Set();
page.on('console', (msg) => {
  if (msg.type() !== 'error') return;
  const from = msg.location()?.url || '';
  if (/\/favicon\.ico$/.test(from)) {
    notes.add(`note: ${from} -> ${msg.text()}`);
  } else if (!/status of 422/.test(msg.text()) || from !== page.url()) {
    problems.push(`console error on ${page.url()}: ${msg.text()}${from ? ` (${from})` : ''}`);
  }
});
page.on('pageerror', (err) => problems.push(`script error on ${page.url()}: ${err.message}`));
page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()} (${req.failure()?.errorText})`));
page.on('response', (res) => {
  const expected422 = res.status() === 422 && res.request().resourceType() === 'document';
  if (res.status() >= 400 && !expected422) problems.push(`HTTP ${res.status()} for ${res.url()}`);
});

const h1 = page.locator('h1');

await check('top page (ja): h1 is ワクチン接種記録システム', async () => {
  const res = await page.goto(`${BASE_URL}/`);
  expect(res && res.status() === 200, `GET / answered ${res && res.status()}`);
  expect(await h1.count() === 1, `expected one h1, found ${await h1.count()}`);
  const text = (await h1.innerText()).trim();
  expect(text === 'ワクチン接種記録システム', `h1 is ${JSON.stringify(text)}`);
  const lang = await page.getAttribute('html', 'lang');
  expect(lang === 'ja', `<html lang> is ${JSON.stringify(lang)}`);
});

await check('top page (ja): demo municipalities table has 3 rows', async () => {
  const rows = page.locator('section[aria-labelledby="tenants"] table tbody tr');
  const n = await rows.count();
  expect(n === 3, `found ${n} rows: ${JSON.stringify(await rows.allInnerTexts())}`);
  const all = (await rows.allInnerTexts()).join(' | ');
  for (const name of ['茨城県古河市', '東京都千代田区', '北海道函館市']) {
    expect(all.includes(name), `${name} is not in the table: ${all}`);
  }
  expect(problems.length === 0, problems.join('\n'));
  await screenshot('top-ja.png');
});

await check('keyboard: Tab reaches the code checker link in the header and Enter opens it', async () => {
  const link = page.locator('header nav a[href="/municipalities/check"]');
  expect(await link.count() === 1, 'no link to /municipalities/check in the header nav');
  const presses = await tabTo(link, 'the code checker link');
  await Promise.all([page.waitForURL(/\/municipalities\/check$/), page.keyboard.press('Enter')]);
  const text = (await h1.innerText()).trim();
  expect(text === '地方公共団体コードの確認', `h1 is ${JSON.stringify(text)}`);
  console.log(`     (link reached after ${presses} Tab presses)`);
});

const input = page.getByLabel('地方公共団体コード', { exact: true });

await check('keyboard: the field labelled 地方公共団体コード is reached with Tab', async () => {
  expect(await input.count() === 1, 'no single input labelled 地方公共団体コード');
  await tabTo(input, 'the 地方公共団体コード field');
});

await check('keyboard: 131017 + Enter shows the check digit error', async () => {
  await page.keyboard.type('131017');
  const [res] = await Promise.all([
    page.waitForNavigation(),
    page.keyboard.press('Enter'),
  ]);
  expect(res && res.status() === 422, `the form answered ${res && res.status()}, not 422`);
  const error = page.locator('.field__error');
  expect(await error.isVisible(), 'no visible field error');
  const text = (await error.innerText()).trim();
  expect(text.includes('チェックデジット'), `the field error says ${JSON.stringify(text)}`);
  expect(await input.getAttribute('aria-invalid') === 'true', 'the field is not aria-invalid');
  const described = (await input.getAttribute('aria-describedby')) || '';
  const errorId = await error.getAttribute('id');
  expect(errorId && described.split(/\s+/).includes(errorId), `the error (${errorId}) is not in the field's aria-describedby (${described})`);
  expect(await input.inputValue() === '131017', `the field holds ${JSON.stringify(await input.inputValue())}`);
  expect(problems.length === 0, problems.join('\n'));
  await screenshot('check-error-ja.png');
});

await check('keyboard: 082040 + Enter shows 茨城県古河市', async () => {
  await tabTo(input, 'the 地方公共団体コード field');
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.type('082040');
  const [res] = await Promise.all([
    page.waitForNavigation(),
    page.keyboard.press('Enter'),
  ]);
  expect(res && res.status() === 200, `the form answered ${res && res.status()}`);
  const result = page.locator('#code-result');
  expect(await result.isVisible(), 'no result section');
  const text = await result.innerText();
  expect(text.includes('茨城県古河市'), `the result says ${JSON.stringify(text)}`);
  expect(await page.locator('.field__error').count() === 0, 'a field error is still shown');
  expect(problems.length === 0, problems.join('\n'));
  await screenshot('check-result-ja.png');
});

await check('language: the "English" link switches the top page to English', async () => {
  await page.goto(`${BASE_URL}/`);
  await Promise.all([
    page.waitForNavigation(),
    page.getByRole('link', { name: 'English', exact: true }).click(),
  ]);
  const text = (await h1.innerText()).trim();
  expect(text === 'Vaccination Record System', `h1 is ${JSON.stringify(text)}`);
  const lang = await page.getAttribute('html', 'lang');
  expect(lang === 'en', `<html lang> is ${JSON.stringify(lang)}`);
  expect(new URL(page.url()).pathname === '/', `landed on ${page.url()}, not /`);
  expect(problems.length === 0, problems.join('\n'));
  await screenshot('top-en.png');
});

await check('tablet (820x1180): the English top page renders', async () => {
  await page.setViewportSize({ width: 820, height: 1180 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  expect(overflow <= 0, `the page scrolls sideways by ${overflow}px at 820px wide`);
  expect(await h1.isVisible(), 'h1 not visible');
  await screenshot('top-en-tablet.png');
});

await check('login: staff log in with the keyboard and see the dashboard with the previous-login notice', async () => {
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(`${BASE_URL}/lang/ja?next=/login`);
  await page.getByLabel('ログインID', { exact: true }).fill('082040-staff');
  await page.getByLabel('パスワード', { exact: true }).fill('demo-password-2026');
  await Promise.all([page.waitForNavigation(), page.getByLabel('パスワード', { exact: true }).press('Enter')]);
  expect(new URL(page.url()).pathname === '/dashboard', `landed on ${page.url()}`);
  const title = (await h1.innerText()).trim();
  expect(title === 'ホーム', `h1 is ${JSON.stringify(title)}`);
  const prev = (await page.locator('#previous-login').innerText()).trim();
  expect(prev.includes('前回のログイン'), `previous-login notice: ${JSON.stringify(prev)}`);
  const muni = await page.locator('dl.summary-list').innerText();
  expect(muni.includes('茨城県古河市'), `dashboard does not name the municipality: ${muni}`);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'vrs_session');
  expect(session && session.httpOnly && session.sameSite === 'Strict', `session cookie flags: ${JSON.stringify(session)}`);
  expect(problems.length === 0, problems.join('\n'));
  await screenshot('dashboard-staff-ja.png');
});

/** The individual-number check digit of its first 11 digits (PRODUCT.md). */
function checkDigit(body) {
  let sum = 0;
  for (let k = 1; k <= 11; k++) {
    const p = Number(body[11 - k]);
    const q = k <= 6 ? k + 1 : k - 5;
    sum += p * q;
  }
  const r = sum % 11;
  return r <= 1 ? 0 : 11 - r;
}

// A resident file as a registry system writes it: 5,000 people, UTF-8.
function residentFile(n) {
  const lines = ['宛名番号,個人番号,氏名,氏名カナ,生年月日,性別,住所,接種券番号,券種,回数'];
  for (let i = 0; i < n; i++) {
    const body = String(90000000000 + i).padStart(11, '0');
    const check = checkDigit(body);
    const given = ['一郎', '花子', '次郎', '桜'][i % 4];
    const givenKana = ['イチロウ', 'ハナコ', 'ジロウ', 'サクラ'][i % 4];
    const month = String(1 + (i % 12)).padStart(2, '0');
    const day = String(1 + (i % 28)).padStart(2, '0');
    lines.push(`W-${String(i).padStart(6, '0')},${body}${check},古河　${given},コガ　${givenKana},${1940 + (i % 70)}-${month}-${day},${1 + (i % 2)},古河市中央町${1 + (i % 9)}-${1 + (i % 20)},,1,1`);
  }
  return Buffer.from(lines.join('\r\n') + '\r\n', 'utf8');
}

await check('import: staff upload a resident file and the progress bar runs to 100%', async () => {
  await Promise.all([page.waitForNavigation(), page.locator('header nav a[href="/residents/imports"]').click()]);
  expect((await h1.innerText()).trim() === '接種対象者の取込', `h1 is ${JSON.stringify(await h1.innerText())}`);
  await page.getByLabel('ファイル', { exact: true }).setInputFiles({
    name: 'koga-residents.csv',
    mimeType: 'text/csv',
    buffer: residentFile(5000),
  });
  await Promise.all([page.waitForURL(/\/residents\/imports\/[0-9a-f-]{36}$/), page.getByRole('button', { name: '取り込む' }).click()]);
  const bar = page.locator('progress#progress');
  expect(await bar.count() === 1, 'no progress bar on the job page');
  const seen = new Set();
  let runningShot = false;
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline && (await page.locator('#result').count()) === 0) {
    const v = await bar.getAttribute('value').catch(() => null);
    if (v !== null) seen.add(Number(v));
    if (!runningShot && v !== null && Number(v) > 0 && Number(v) < 100) {
      await screenshot('import-running-ja.png').catch(() => {});
      runningShot = true;
    }
    await page.waitForTimeout(150);
  }
  expect(await page.locator('#result').isVisible(), 'the import did not finish within 90 s');
  expect(await bar.getAttribute('value') === '100', `the bar ends at ${await bar.getAttribute('value')}`);
  const inserted = (await page.locator('#inserted').innerText()).trim();
  expect(inserted === '5000', `inserted: ${inserted}`);
  console.log(`     (progress values seen: ${[...seen].sort((a, b) => a - b).join(', ')})`);
  expect(problems.length === 0, problems.join('\n'));
  await screenshot('import-done-ja.png');
});

await check('tickets: the sheet prints 12 stickers per A4 page with the OCR line and QR code', async () => {
  await Promise.all([page.waitForNavigation(), page.locator('#print-sheets').click()]);
  const sheets = page.locator('.sheet');
  expect(await sheets.count() === 10, `expected 10 sheets on the first page, found ${await sheets.count()}`);
  const stickers = sheets.first().locator('.sticker');
  expect(await stickers.count() === 12, `first sheet holds ${await stickers.count()} stickers`);
  const ocr = (await stickers.first().locator('.sticker__ocr').innerText()).trim();
  expect(/^11082040\d{10}$/.test(ocr), `OCR line ${JSON.stringify(ocr)}`);
  expect(await stickers.first().locator('svg').count() === 1, 'no QR code on the sticker');
  const box = await sheets.first().boundingBox();
  // 210 mm at 96 dpi is 793.7 px.
  expect(box && Math.abs(box.width - 793.7) < 2, `the sheet is ${box && box.width}px wide, not A4`);
  await screenshot('ticket-sheet-screen-ja.png');
  await page.emulateMedia({ media: 'print' });
  const headerShown = await page.locator('.site-header').isVisible();
  expect(!headerShown, 'the site header prints on the sheet');
  await page.screenshot({ path: join(ARTIFACTS, 'ticket-sheet-print-ja.png'), clip: { x: 0, y: 0, width: 794, height: 1123 } });
  console.log(`     screenshot ${join(ARTIFACTS, 'ticket-sheet-print-ja.png')}`);
  await page.pdf({ path: join(ARTIFACTS, 'ticket-sheets.pdf'), format: 'A4', printBackground: true, preferCSSPageSize: true });
  console.log(`     pdf ${join(ARTIFACTS, 'ticket-sheets.pdf')}`);
  await page.emulateMedia({ media: 'screen' });
  expect(problems.length === 0, problems.join('\n'));
});

let recordTicket = '';
await check('records: staff find a resident by 宛名番号 and open the record', async () => {
  await page.goto(`${BASE_URL}/residents`);
  await page.getByLabel('宛名番号', { exact: true }).fill('W-000007');
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: '検索' }).click()]);
  const rows = page.locator('#results tbody tr');
  expect(await rows.count() === 1, `found ${await rows.count()} rows`);
  await Promise.all([page.waitForNavigation(), rows.first().locator('a').click()]);
  const title = (await h1.innerText()).trim();
  expect(title.startsWith('古河　'), `h1 is ${JSON.stringify(title)}`);
  const tickets = page.locator('#tickets tbody tr');
  expect(await tickets.count() === 1, `${await tickets.count()} tickets`);
  recordTicket = (await tickets.first().locator('code').innerText()).trim();
  expect(problems.length === 0, problems.join('\n'));
  await screenshot('resident-record-ja.png');
});

await check('protection: staff set a support measure with its period; the address is masked until shown with a reason, then the measure is lifted', async () => {
  const address = page.locator('#address-value');
  const before = (await address.innerText()).trim();
  expect(before.length > 0, 'the record shows an address before protection');
  // Today in Japan, and a year on.
  const jst = (days) => new Date(Date.now() + 9 * 3600_000 + days * 86_400_000).toISOString().slice(0, 10);
  await page.getByLabel('開始日', { exact: true }).fill(jst(0));
  await page.getByLabel('見直し日', { exact: true }).fill(jst(365));
  await page.locator('#protect-reason').fill('支援措置申出書の受理');
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: '支援措置を設定・更新' }).click()]);
  const masked = (await address.innerText()).trim();
  expect(masked.includes('支援措置の対象のため表示していません') && !masked.includes(before), `address shows ${JSON.stringify(masked)}`);
  expect((await page.locator('#protection-period').innerText()).includes(jst(0)), 'the period is shown');
  expect(await page.locator('input[name="address"]').count() === 0, 'the correction form still sends an address');
  await screenshot('resident-protected-ja.png');
  await page.locator('#reveal-reason').fill('本人からの転居先確認の申出');
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: '住所を表示する' }).click()]);
  expect(await page.locator('#address-revealed').isVisible(), 'no notice that the view was logged');
  expect((await address.innerText()).includes(before), 'the address is not shown after a reason was given');
  await screenshot('resident-protected-revealed-ja.png');
  await page.locator('#unprotect-reason').fill('支援措置の終了');
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: '支援措置を解除' }).click()]);
  expect((await address.innerText()).trim() === before, 'the address shows again once lifted');
  expect(problems.length === 0, problems.join('\n'));
});

const MOVER_NUMBER = '987654321093'; // src/demo.rs MOVER_NUMBER, made up

await check('access record: staff produce the resident\'s access record for a disclosure request, printable', async () => {
  await Promise.all([page.waitForNavigation(), page.locator('#access-record-link').click()]);
  expect((await h1.innerText()).includes('アクセス記録'), `h1 is ${JSON.stringify(await h1.innerText())}`);
  const rows = await page.locator('#access tbody tr').allInnerTexts();
  expect(rows.some((r) => r.includes('支援措置対象者の住所の表示') && r.includes('本人からの転居先確認の申出')), `rows: ${JSON.stringify(rows)}`);
  expect(rows.some((r) => r.includes('支援措置の設定') && r.includes('支援措置申出書の受理')), 'the measure and its reason are not listed');
  expect(rows.some((r) => r.includes('記録の閲覧')), 'the views are not listed');
  await expectNoNumber('the access record');
  expect(problems.length === 0, problems.join('\n'));
  await screenshot('access-record-ja.png');
  // On paper: A4 at 96 dpi.
  const viewport = page.viewportSize();
  await page.setViewportSize({ width: 794, height: 1123 });
  await page.emulateMedia({ media: 'print' });
  await page.screenshot({ path: join(ARTIFACTS, 'access-record-print-ja.png') });
  await page.emulateMedia({ media: 'screen' });
  await page.setViewportSize(viewport);
});

await check('logout: the logout button ends the session', async () => {
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'ログアウト' }).click()]);
  expect(new URL(page.url()).pathname === '/login', `landed on ${page.url()}`);
  await page.goto(`${BASE_URL}/dashboard`);
  expect(new URL(page.url()).pathname === '/login', `dashboard reachable after logout: ${page.url()}`);
});

await check('operation log: the administrator finds one resident\'s lines by 宛名番号, picks an action from the list, and reads the per-account report', async () => {
  await logIn('082040-admin');
  await page.goto(`${BASE_URL}/admin/log`);
  expect((await page.locator('#log-integrity').innerText()).length > 0, 'no chain check');
  await page.getByLabel('宛名番号', { exact: true }).fill('W-000007');
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: '絞り込む' }).click()]);
  const rows = await page.locator('#log tbody tr').allInnerTexts();
  expect(rows.length > 0 && rows.every((r) => r.includes('宛名番号 W-000007')), `rows: ${JSON.stringify(rows)}`);
  expect(rows.some((r) => r.includes('支援措置対象者の住所の表示')), 'the address view is not found');
  expect(!(await page.locator('#log').innerText()).includes('resident.'), 'raw action codes on the page');
  await screenshot('log-resident-ja.png');
  await page.goto(`${BASE_URL}/admin/log`);
  await page.getByLabel('操作', { exact: true }).selectOption({ label: 'ログイン' });
  await page.getByLabel('結果', { exact: true }).selectOption({ label: '成功' });
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: '絞り込む' }).click()]);
  const logins = await page.locator('#log tbody tr').allInnerTexts();
  expect(logins.length > 0 && logins.every((r) => r.includes('ログイン') && r.includes('成功')), `rows: ${JSON.stringify(logins)}`);
  expect(problems.length === 0, problems.join('\n'));
  await screenshot('log-search-ja.png');
  await page.goto(`${BASE_URL}/admin/log/report`);
  const report = await page.locator('#report tbody tr').allInnerTexts();
  expect(report.some((r) => r.includes('082040-staff')), `report: ${JSON.stringify(report)}`);
  expect(problems.length === 0, problems.join('\n'));
  await screenshot('log-report-ja.png');
  await logOut();
});

// Flow 4, the transfer inquiry (転出元への接種記録照会): 千代田区's staff ask
// 古河市 for the records of the demo's mover (千代田区 resident 36, 宛名番号
// D0000037; 古河市 resident 1, 鈴木　花子, 2 doses). The inquiry pages answer
// only from the municipality's declared LG-WAN networks, so the
// administrator declares the loopback network first.

async function logIn(id, password = 'demo-password-2026') {
  await page.goto(`${BASE_URL}/lang/ja?next=/login`);
  await page.getByLabel('ログインID', { exact: true }).fill(id);
  await page.getByLabel('パスワード', { exact: true }).fill(password);
  await Promise.all([page.waitForNavigation(), page.getByLabel('パスワード', { exact: true }).press('Enter')]);
  expect(new URL(page.url()).pathname === '/dashboard', `${id} landed on ${page.url()}`);
}

async function logOut() {
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'ログアウト' }).click()]);
  expect(new URL(page.url()).pathname === '/login', `landed on ${page.url()} after logout`);
}

/**
 * The page as a person could read it, and its markup, hold no individual
 * number: none of `numbers`, and no other run of exactly 12 digits either.
 */
async function expectNoNumber(where, numbers = [MOVER_NUMBER]) {
  const text = await page.locator('body').innerText();
  const html = await page.content();
  for (const number of numbers) {
    expect(!text.includes(number) && !html.includes(number), `${where} shows the individual number`);
    expect(!page.url().includes(number), `${where}: the number is in the address ${page.url()}`);
  }
  expect(!/(?<![0-9０-９])[0-9０-９]{12}(?![0-9０-９])/.test(text), `${where} shows a 12-digit number`);
}

const consent = page.getByLabel('本人の同意書を受領した', { exact: true });
const idDocument = page.getByLabel('本人確認書類', { exact: true });
const checkedBy = page.getByLabel('確認した職員', { exact: true });
const myNumber = page.getByLabel('個人番号', { exact: true });
const myNumberAgain = page.getByLabel('個人番号（確認のためもう一度）', { exact: true });
const source = page.getByLabel('転出元市区町村コード', { exact: true });

await check('networks: the 131016 administrator declares 127.0.0.0/8 (庁舎) as an LG-WAN network', async () => {
  await page.setViewportSize({ width: 1280, height: 900 });
  await logIn('131016-admin');
  await page.goto(`${BASE_URL}/admin/networks`);
  expect((await h1.innerText()).trim() === 'LG-WANネットワーク', `h1 is ${JSON.stringify(await h1.innerText())}`);
  const before = (await page.locator('#client-zone').innerText()).trim();
  expect(before.includes('登録済みのネットワーク外です'), `before: ${before}`);
  await page.getByLabel('ネットワーク（CIDR）', { exact: true }).fill('127.0.0.0/8');
  await page.getByLabel('名称', { exact: true }).fill('庁舎');
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'ネットワークを登録' }).click()]);
  expect(new URL(page.url()).pathname === '/admin/networks', `landed on ${page.url()}`);
  const rows = await page.locator('#networks tbody tr').allInnerTexts();
  expect(rows.some((r) => r.includes('127.0.0.0/8') && r.includes('庁舎')), `networks: ${JSON.stringify(rows)}`);
  const after = (await page.locator('#client-zone').innerText()).trim();
  expect(after.includes('登録済みのネットワーク内です'), `after: ${after}`);
  expect(problems.length === 0, problems.join('\n'));
  await screenshot('networks-ja.png');
  await logOut();
});

await check('transfers: staff open 転出元への接種記録照会 from the header navigation', async () => {
  await logIn('131016-staff');
  const link = page.locator('header nav a[href="/transfers"]');
  expect(await link.count() === 1, 'no link to /transfers in the header nav');
  const label = (await link.innerText()).trim();
  expect(label === '転出元への接種記録照会', `the nav link says ${JSON.stringify(label)}`);
  await Promise.all([page.waitForNavigation(), link.click()]);
  expect(new URL(page.url()).pathname === '/transfers', `landed on ${page.url()}`);
  expect((await h1.innerText()).trim() === '転出元への接種記録照会', `h1 is ${JSON.stringify(await h1.innerText())}`);
  expect(await link.getAttribute('aria-current') === 'page', 'the nav link is not aria-current on its page');
  for (const [field, what] of [[consent, 'consent'], [idDocument, '本人確認書類'], [checkedBy, '確認した職員'], [myNumber, '個人番号'], [myNumberAgain, '個人番号（確認）'], [source, '転出元市区町村コード']]) {
    expect(await field.count() === 1, `no single field labelled for ${what}`);
  }
  for (const [field, what] of [[myNumber, '個人番号'], [myNumberAgain, '個人番号（確認）']]) {
    expect(await field.getAttribute('type') === 'password', `the ${what} field is not masked`);
  }
  expect(problems.length === 0, problems.join('\n'));
});

await check('keyboard: Tab walks the inquiry form in order — consent, document, checker, number twice, source', async () => {
  const presses = await tabTo(consent, 'the consent checkbox', 40);
  await page.keyboard.press('Space');
  expect(await consent.isChecked(), 'Space did not tick the consent checkbox');
  await page.keyboard.press('Space');
  expect(!(await consent.isChecked()), 'Space did not untick the consent checkbox');
  await tabTo(idDocument, 'the 本人確認書類 select (next after consent)', 1);
  await tabTo(checkedBy, 'the 確認した職員 field (next after the document)', 1);
  await tabTo(myNumber, 'the 個人番号 field (next after 確認した職員)', 1);
  await tabTo(myNumberAgain, 'the second 個人番号 field (next after the first)', 1);
  await tabTo(source, 'the 転出元市区町村コード field (next after the numbers)', 1);
  console.log(`     (consent reached after ${presses} Tab presses, then one press per field)`);
});

/** Fills the inquiry form with the keyboard where a person would type. */
async function fillInquiry(number, from) {
  await consent.focus();
  if (!(await consent.isChecked())) await page.keyboard.press('Space');
  expect(await consent.isChecked(), 'consent is not ticked');
  await idDocument.selectOption({ label: '個人番号カード' });
  const checker = await checkedBy.inputValue();
  expect(checker.trim() !== '', '確認した職員 is not prefilled with the signed-in staff member');
  await myNumber.focus();
  await page.keyboard.type(number);
  await page.keyboard.press('Tab');
  await page.keyboard.type(number);
  await page.keyboard.press('Tab');
  expect(await source.evaluate((el) => el === document.activeElement), 'Tab from the second number does not reach the source field');
  await page.keyboard.type(from);
  expect(await source.inputValue() === from, `the source field holds ${JSON.stringify(await source.inputValue())}`);
  const purpose = page.getByLabel('新たな接種券の発行のため', { exact: true });
  expect(await purpose.isChecked(), 'the default purpose 新たな接種券の発行のため is not selected');
}

await check('transfers: an inquiry to 古河市 (082040) with 個人番号カード returns the 2 doses, never showing the number', async () => {
  await fillInquiry(MOVER_NUMBER, '082040');
  expect(problems.length === 0, problems.join('\n'));
  await screenshot('transfer-form-ja.png');
  const [res] = await Promise.all([page.waitForNavigation({ timeout: 20_000 }), page.keyboard.press('Enter')]);
  expect(res && res.status() === 200, `the inquiry answered ${res && res.status()}`);
  expect(await page.locator('#inquiry-errors').count() === 0, `the form has errors: ${await page.locator('#inquiry-errors').innerText().catch(() => '')}`);
  expect((await h1.innerText()).trim() === '照会の結果', `h1 is ${JSON.stringify(await h1.innerText())}`);
  const matched = page.locator('#matched');
  expect(await matched.isVisible(), 'no #matched section');
  expect(await page.locator('#no-match').count() === 0, '#no-match is shown too');
  const said = (await matched.innerText()).trim();
  expect(said.includes('茨城県古河市'), `the result does not name 茨城県古河市: ${said}`);
  const doses = page.locator('#given-doses tbody tr');
  expect(await doses.count() === 2, `${await doses.count()} dose rows: ${JSON.stringify(await doses.allInnerTexts())}`);
  const first = await doses.first().innerText();
  expect(first.includes('1回目'), `first dose row: ${first}`);
  await expectNoNumber('the result page');
  expect(problems.length === 0, problems.join('\n'));
  await screenshot('transfer-matched-ja.png');
});

await check('transfers: the result opens the resident record (D0000037) and its provision records', async () => {
  const open = page.locator('#open-record');
  expect(await open.isVisible(), 'no #open-record link on the result');
  await Promise.all([page.waitForNavigation(), open.click()]);
  expect(/^\/residents\/[^/]+$/.test(new URL(page.url()).pathname), `landed on ${page.url()}`);
  const title = (await h1.innerText()).trim();
  expect(title.startsWith('鈴木　花子'), `h1 is ${JSON.stringify(title)}`);
  const attrs = await page.locator('#resident').innerText();
  expect(attrs.includes('D0000037'), `the record is not 宛名番号 D0000037: ${attrs}`);
  await expectNoNumber('the resident record');
  await Promise.all([page.waitForNavigation(), page.locator('#provisions-link').click()]);
  expect(/^\/residents\/[^/]+\/provisions$/.test(new URL(page.url()).pathname), `landed on ${page.url()}`);
  expect((await h1.innerText()).trim() === '提供記録', `h1 is ${JSON.stringify(await h1.innerText())}`);
  const lines = page.locator('#provisions tbody tr');
  const n = await lines.count();
  expect(n >= 1, `${n} provision records`);
  const all = (await lines.allInnerTexts()).join(' | ');
  expect(all.includes('提供あり'), `no 提供あり line: ${all}`);
  expect(all.includes('窓口'), `no 窓口 line: ${all}`);
  await expectNoNumber('the provision records');
  expect(problems.length === 0, problems.join('\n'));
  await screenshot('transfer-provisions-ja.png');
});

await check('transfers: the same number asked of 函館市 (012025) finds no match', async () => {
  await Promise.all([page.waitForNavigation(), page.locator('header nav a[href="/transfers"]').click()]);
  expect(new URL(page.url()).pathname === '/transfers', `landed on ${page.url()}`);
  expect(await myNumber.inputValue() === '' && await myNumberAgain.inputValue() === '', 'the number fields are not empty on a new form');
  await fillInquiry(MOVER_NUMBER, '012025');
  const [res] = await Promise.all([page.waitForNavigation({ timeout: 20_000 }), page.getByRole('button', { name: '照会する' }).click()]);
  expect(res && res.status() === 200, `the inquiry answered ${res && res.status()}`);
  expect(await page.locator('#inquiry-errors').count() === 0, `the form has errors: ${await page.locator('#inquiry-errors').innerText().catch(() => '')}`);
  expect(await page.locator('#no-match').isVisible(), 'no #no-match section');
  expect(await page.locator('#matched').count() === 0, '#matched is shown for 函館市');
  const said = (await page.locator('#no-match').innerText()).trim();
  expect(said.includes('該当する方の記録はありませんでした'), `no-match says ${JSON.stringify(said)}`);
  await expectNoNumber('the no-match page');
  expect(problems.length === 0, problems.join('\n'));
  await screenshot('transfer-no-match-ja.png');
});

await check('transfers: staff log out', async () => {
  await logOut();
  await page.goto(`${BASE_URL}/transfers`);
  expect(new URL(page.url()).pathname === '/login', `/transfers reachable after logout: ${page.url()}`);
});

// Flow 5, the vaccination certificate (接種証明書): 千代田区's staff issue
// one at the window, on the LG-WAN network declared above, for demo
// resident 5 (宛名番号 D0000006, 3 doses), print it, and download its
// SMART Health Card; anyone then checks the card on the public /verify page.
const CERT_RESIDENT_NUMBER = demoNumber('131016', 5);
const certNumbers = [MOVER_NUMBER, CERT_RESIDENT_NUMBER];

/** The i-th demo resident's individual number (src/demo.rs demo_resident, made up). */
function demoNumber(code, i) {
  const body = String(Number(code.slice(0, 5)) * 1_000_000 + 7_000 + i).padStart(11, '0');
  return `${body}${checkDigit(body)}`;
}

/** The JWS with one character in the middle of its payload changed. */
function tamperedJws(jws) {
  const [header, payload, signature] = jws.split('.');
  const at = Math.floor(payload.length / 2);
  const changed = payload[at] === 'A' ? 'B' : 'A';
  return `${header}.${payload.slice(0, at)}${changed}${payload.slice(at + 1)}.${signature}`;
}

/** The JWS with the name in its payload rewritten and re-compressed, the signature kept. */
function forgedJws(jws, from, to) {
  const [header, payload, signature] = jws.split('.');
  const json = inflateRawSync(Buffer.from(payload, 'base64url')).toString('utf8');
  expect(json.includes(from), `the card's payload does not hold ${from}`);
  const forged = deflateRawSync(Buffer.from(json.replaceAll(from, to), 'utf8')).toString('base64url');
  return `${header}.${forged}.${signature}`;
}

const applied = page.locator('#applied');
const kindDomestic = page.locator('#kind-domestic');
const kindOverseas = page.locator('#kind-overseas');
const issueButton = page.locator('#issue-certificate');
const certErrors = page.locator('#cert-errors');
const cardInput = page.locator('#card-input');
const verifySubmit = page.locator('#verify-submit');
const verifyHeading = page.locator('#verify-result h2');
let certificateId = '';
let certificateJws = '';

/** Pastes a card's text into /verify's field and submits it with the keyboard. */
async function verifyCard(text) {
  await tabTo(cardInput, 'the card field', 30);
  await page.keyboard.insertText(text);
  expect(await cardInput.inputValue() === text, 'the card field does not hold the pasted text');
  await tabTo(verifySubmit, 'the verify button (next after the card field)', 1);
  const [res] = await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
  expect(res && res.status() === 200, `the verify page answered ${res && res.status()}`);
  expect(await page.locator('#verify-result').isVisible(), 'no #verify-result section');
  return (await verifyHeading.innerText()).trim();
}

await check('certificates: the record of D0000006 (3 doses) opens the issuance form; submitting it with the keyboard without 交付申請の受理 is refused', async () => {
  await page.setViewportSize({ width: 1280, height: 900 });
  await logIn('131016-staff');
  await page.goto(`${BASE_URL}/residents`);
  await page.getByLabel('宛名番号', { exact: true }).fill('D0000006');
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: '検索' }).click()]);
  const rows = page.locator('#results tbody tr');
  expect(await rows.count() === 1, `found ${await rows.count()} rows`);
  await Promise.all([page.waitForNavigation(), rows.first().locator('a').click()]);
  const doses = page.locator('#doses tbody tr[id^="dose-"]');
  expect(await doses.count() === 3, `the record holds ${await doses.count()} doses`);
  const section = (await page.locator('#certificates-title').innerText()).trim();
  expect(section === '接種証明書', `the certificate section is titled ${JSON.stringify(section)}`);
  expect(await page.locator('#certificates').count() === 0, 'the record already lists certificates');
  await expectNoNumber('the resident record', certNumbers);
  const link = page.locator('#new-certificate');
  expect(await link.isVisible(), 'no #new-certificate link on the record');
  const record = new URL(page.url()).pathname;
  await Promise.all([page.waitForNavigation(), link.click()]);
  expect(new URL(page.url()).pathname === `${record}/certificates/new`, `landed on ${page.url()}`);
  expect((await h1.innerText()).trim() === '接種証明書の発行', `h1 is ${JSON.stringify(await h1.innerText())}`);
  const listed = page.locator('#cert-doses tbody tr');
  expect(await listed.count() === 3, `the form lists ${await listed.count()} doses`);
  expect(!(await applied.isChecked()), '交付申請を受理した is ticked on a new form');
  expect(await kindDomestic.isChecked(), '日本国内用 is not the default');
  expect((await checkedBy.inputValue()).trim() !== '', '確認した職員 is not prefilled with the signed-in staff member');
  await idDocument.selectOption({ label: '個人番号カード' });
  await tabTo(issueButton, 'the 証明書を発行する button', 40);
  const [res] = await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
  expect(res && res.status() === 422, `the form answered ${res && res.status()}, not 422`);
  expect(await certErrors.isVisible(), 'no #cert-errors');
  const errors = (await certErrors.locator('li').allInnerTexts()).map((e) => e.trim());
  expect(errors.length === 1 && errors[0].includes('交付申請の受理'), `the errors: ${JSON.stringify(errors)}`);
  expect(await idDocument.inputValue() !== '', 'the chosen 本人確認書類 was lost');
  expect(!(await applied.isChecked()), '交付申請を受理した came back ticked');
  await expectNoNumber('the refused form', certNumbers);
  expect(problems.length === 0, problems.join('\n'));
  await screenshot('certificate-form-error-ja.png');
});

await check('certificates: keyboard — 海外用 with the passport typed in lower case issues a certificate that prints on one A4 page', async () => {
  await tabTo(applied, 'the 交付申請を受理した checkbox', 40);
  await page.keyboard.press('Space');
  expect(await applied.isChecked(), 'Space did not tick 交付申請を受理した');
  await tabTo(idDocument, 'the 本人確認書類 select (next after the application)', 1);
  await tabTo(checkedBy, 'the 確認した職員 field (next after the document)', 1);
  await tabTo(kindDomestic, 'the 日本国内用 radio (next after 確認した職員)', 1);
  await page.keyboard.press('ArrowDown');
  expect(await kindOverseas.isChecked(), 'ArrowDown did not choose 海外用');
  for (const [id, typed] of [['#family', 'yamada'], ['#given', 'hanako'], ['#nationality', 'jpn'], ['#passport_number', 'tk1234567']]) {
    await tabTo(page.locator(id), `the ${id} field`, 1);
    await page.keyboard.type(typed);
  }
  expect(problems.length === 0, problems.join('\n'));
  await screenshot('certificate-form-ja.png');
  const [res] = await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
  expect(res && res.status() === 200, `the issued certificate answered ${res && res.status()}`);
  const path = new URL(page.url()).pathname;
  const m = /^\/certificates\/([0-9A-F]{4}(?:-[0-9A-F]{4}){3})$/.exec(path);
  expect(m, `landed on ${page.url()}, not /certificates/{id}`);
  certificateId = m[1];
  const issued = (await page.locator('#cert-issued').innerText()).trim();
  expect(issued.includes('証明書を発行しました'), `#cert-issued says ${JSON.stringify(issued)}`);
  expect((await page.locator('#cert-id').innerText()).trim() === certificateId, `#cert-id is ${await page.locator('#cert-id').innerText()}`);
  const name = (await page.locator('#cert-name').innerText()).trim();
  expect(name === 'YAMADA HANAKO', `#cert-name is ${JSON.stringify(name)}`);
  const certificate = await page.locator('article#certificate').innerText();
  for (const want of ['TK1234567', 'JPN', '海外用', 'for overseas use', '東京都千代田区']) {
    expect(certificate.includes(want), `the certificate does not say ${want}`);
  }
  const qr = page.locator('.certificate__qr svg');
  expect(await qr.count() === 1, `${await qr.count()} QR codes on the certificate`);
  expect(await page.locator('#cert-doses tbody tr').count() === 3, `${await page.locator('#cert-doses tbody tr').count()} doses on the certificate`);
  const download = page.locator('#card-download');
  expect(await download.getAttribute('href') === `/certificates/${certificateId}/card`, `#card-download goes to ${await download.getAttribute('href')}`);
  const print = page.locator('#print-certificate');
  expect(await print.isVisible(), 'print.js did not show the print button');
  await page.evaluate(() => {
    window.printed = 0;
    window.print = () => { window.printed += 1; };
  });
  await print.focus();
  await page.keyboard.press('Enter');
  expect(await page.evaluate(() => window.printed) === 1, 'Enter on the print button did not call window.print()');
  await expectNoNumber('the certificate', certNumbers);
  expect(problems.length === 0, problems.join('\n'));
  await screenshot('certificate-ja.png');
  await page.emulateMedia({ media: 'print' });
  for (const hidden of ['.site-header', '.site-header__nav', '.site-footer', '#cert-issued', '#print-certificate', '#card-download', '#revoke-form']) {
    expect(!(await page.locator(hidden).isVisible()), `${hidden} prints on the certificate`);
  }
  const qrBox = await qr.boundingBox();
  expect(qrBox && qrBox.width >= 200 && qrBox.height >= 200, `the QR code prints ${qrBox && Math.round(qrBox.width)}x${qrBox && Math.round(qrBox.height)}px`);
  await page.screenshot({ path: join(ARTIFACTS, 'certificate-print-ja.png'), clip: { x: 0, y: 0, width: 794, height: 1123 } });
  console.log(`     screenshot ${join(ARTIFACTS, 'certificate-print-ja.png')}`);
  const pdf = await page.pdf({ path: join(ARTIFACTS, 'certificate.pdf'), format: 'A4', printBackground: true, preferCSSPageSize: true });
  const pages = (pdf.toString('latin1').match(/\/Type\s*\/Page(?![a-z])/g) || []).length;
  expect(pages === 1, `the certificate prints on ${pages} pages`);
  console.log(`     pdf ${join(ARTIFACTS, 'certificate.pdf')} (QR ${Math.round(qrBox.width)} px wide in print)`);
  await page.emulateMedia({ media: 'screen' });
  expect(problems.length === 0, problems.join('\n'));
});

await check('certificates: the card file verifies on the public /verify page, without login, with the keyboard', async () => {
  const card = await page.evaluate(async (href) => {
    const r = await fetch(href);
    return { status: r.status, type: r.headers.get('content-type'), disposition: r.headers.get('content-disposition'), body: await r.text() };
  }, `/certificates/${certificateId}/card`);
  expect(card.status === 200, `the card file answered ${card.status}`);
  expect((card.disposition || '').includes('.smart-health-card'), `content-disposition: ${card.disposition}`);
  const file = JSON.parse(card.body);
  const vc = file.verifiableCredential;
  expect(Array.isArray(vc) && vc.length === 1, `verifiableCredential: ${JSON.stringify(vc)?.slice(0, 80)}`);
  expect(/^[\w-]+\.[\w-]+\.[\w-]+$/.test(vc[0]), 'the card does not hold a compact JWS');
  certificateJws = vc[0];
  await logOut();
  await page.goto(`${BASE_URL}/verify`);
  expect(new URL(page.url()).pathname === '/verify', `/verify without login went to ${page.url()}`);
  expect((await h1.innerText()).trim() === '接種証明書の検証', `h1 is ${JSON.stringify(await h1.innerText())}`);
  const heading = await verifyCard(shcNumeric(certificateJws));
  expect(heading === '有効な証明書です', `the result says ${JSON.stringify(heading)}`);
  expect(await page.locator('#verify-result.verify-result--valid').count() === 1, 'the result is not marked valid');
  const name = (await page.locator('#verify-name').innerText()).trim();
  expect(name === 'YAMADA HANAKO', `#verify-name is ${JSON.stringify(name)}`);
  expect(await page.locator('#verify-doses tbody tr').count() === 3, `${await page.locator('#verify-doses tbody tr').count()} doses on the result`);
  expect(await cardInput.inputValue() === '', 'the card text is still in the field after the result');
  await expectNoNumber('the verify result', certNumbers);
  expect(problems.length === 0, problems.join('\n'));
  await screenshot('certificate-verify-valid-ja.png');
});

await check('certificates: /verify rejects a card with one character of its payload changed, and one with the name rewritten', async () => {
  const heading = await verifyCard(shcNumeric(tamperedJws(certificateJws)));
  const invalid = ['署名が一致しません', 'SMART Health Card として読み取れません', '証明書の内容が仕様に合っていません'];
  expect(invalid.some((h) => heading.startsWith(h)), `the result says ${JSON.stringify(heading)}`);
  expect(await page.locator('#verify-result.verify-result--invalid').count() === 1, 'the result is not marked invalid');
  expect(await page.locator('#verify-name').count() === 0, 'a name is shown for an invalid card');
  console.log(`     (one changed character: ${heading})`);
  await expectNoNumber('the tampered result', certNumbers);
  expect(problems.length === 0, problems.join('\n'));
  await screenshot('certificate-verify-tampered-ja.png');
  const forged = await verifyCard(shcNumeric(forgedJws(certificateJws, 'YAMADA', 'TANAKA')));
  expect(forged.startsWith('署名が一致しません'), `the forged name's result says ${JSON.stringify(forged)}`);
  expect(await page.locator('#verify-name').count() === 0, 'a name is shown for a forged card');
  expect(problems.length === 0, problems.join('\n'));
  await screenshot('certificate-verify-forged-ja.png');
});

await check('certificates: the English /verify page reads "Valid certificate" for the card', async () => {
  await Promise.all([
    page.waitForNavigation(),
    page.getByRole('link', { name: 'English', exact: true }).click(),
  ]);
  expect(new URL(page.url()).pathname === '/verify', `landed on ${page.url()}`);
  expect(await page.getAttribute('html', 'lang') === 'en', `<html lang> is ${await page.getAttribute('html', 'lang')}`);
  const heading = await verifyCard(shcNumeric(certificateJws));
  expect(heading === 'Valid certificate', `the result says ${JSON.stringify(heading)}`);
  expect((await page.locator('#verify-name').innerText()).trim() === 'YAMADA HANAKO', `#verify-name is ${await page.locator('#verify-name').innerText()}`);
  await expectNoNumber('the English verify result', certNumbers);
  expect(problems.length === 0, problems.join('\n'));
  await screenshot('certificate-verify-valid-en.png');
});

await check('tablet: a site of another municipality types the ticket, confirms and records, and the screen is ready for the next person', async () => {
  await page.setViewportSize({ width: 820, height: 1180 });
  await page.goto(`${BASE_URL}/lang/ja?next=/login`);
  await page.getByLabel('ログインID', { exact: true }).fill('131016-tablet');
  await page.getByLabel('パスワード', { exact: true }).fill('demo-password-2026');
  await Promise.all([page.waitForNavigation(), page.getByLabel('パスワード', { exact: true }).press('Enter')]);
  await page.goto(`${BASE_URL}/site`);
  const input = page.locator('#ticket-input');
  expect(await input.evaluate((el) => el === document.activeElement), 'the ticket field has the focus');
  await screenshot('tablet-scan-ja.png');
  expect(/^[0-9]{10}$/.test(recordTicket), `ticket from the record page: ${recordTicket}`);
  await input.fill(`082040${recordTicket}`);
  await Promise.all([page.waitForNavigation(), input.press('Enter')]);
  const muni = (await page.locator('#preview-municipality').innerText()).trim();
  expect(muni === '茨城県古河市', `municipality shown: ${muni}`);
  const dose = (await page.locator('#preview-dose').innerText()).trim();
  expect(dose === '1回目', `dose shown: ${dose}`);
  const hint = (await page.locator('#preview-hint').innerText()).trim();
  expect(/^.・.\s·\s\d{4}年\d{1,2}月$/.test(hint), `hint: ${hint}`);
  await page.getByLabel('ワクチン（製品）').selectOption('PFZ_JN1_12P');
  await page.getByLabel('ロット番号').fill('FA1000');
  const confirm = page.locator('#confirm');
  const box = await confirm.boundingBox();
  expect(box && box.height >= 44, `confirm button is ${box && box.height}px tall`);
  expect(problems.length === 0, problems.join('\n'));
  await screenshot('tablet-confirm-ja.png');
  await Promise.all([page.waitForNavigation(), confirm.click()]);
  expect(new URL(page.url()).pathname === '/site', `landed on ${page.url()}`);
  const done = (await page.locator('#recorded').innerText()).trim();
  expect(done.includes('接種を記録しました') && done.includes('1回目'), `success: ${done}`);
  await screenshot('tablet-recorded-ja.png');
  // The next person's ticket: the previous result leaves the screen at
  // the first digit typed.
  await page.locator('#ticket-input').type('1');
  expect(!(await page.locator('#result').isVisible()), 'the previous result is still on screen');
  // The same ticket again: the record now says dose 2 is due, too soon.
  await page.locator('#ticket-input').fill(`082040${recordTicket}`);
  await Promise.all([page.waitForNavigation(), page.locator('#ticket-input').press('Enter')]);
  const blocks = (await page.locator('#blocks').innerText()).trim();
  expect(blocks.includes('必要な間隔'), `blocks: ${blocks}`);
  await screenshot('tablet-too-soon-ja.png');
});

// Flow 7, the statistics pages (接種状況の統計). Counts only: no page may
// show a resident's name or number. The demo has no viewer accounts, so the
// platform operator issues them (with OPERATOR_PASSWORD) the way an operator
// would; every person then sets a password of their own at first login.
const DEMO_CODES = ['082040', '131016', '012025'];
const demoNumbers = [MOVER_NUMBER, ...DEMO_CODES.flatMap((code) => Array.from({ length: 40 }, (_, i) => demoNumber(code, i)))];
// The demo residents' family names (src/demo.rs FAMILY), and the 古河市
// residents imported above, as a name is written: family, full-width space.
const residentName = /(佐藤|鈴木|高橋|田中|伊藤|渡辺|山本|中村|小林|加藤|古河)　/;

/** No demo resident's name or individual number on the page. */
async function expectNoResident(where) {
  await expectNoNumber(where, demoNumbers);
  const text = await page.locator('body').innerText();
  const name = residentName.exec(text);
  expect(!name, `${where} shows a resident's name (${name && text.slice(name.index, name.index + 6)})`);
  expect(!text.includes('渡辺　美咲'), `${where} shows 渡辺　美咲`);
}

/** A table's rows as [label, value] pairs. */
async function tableRows(table) {
  return page.locator(`${table} tbody tr`).evaluateAll((rows) =>
    rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.innerText.trim())));
}

/** The smallest size, in CSS pixels, at which a chart on the page draws its text (charts scale with their box). */
async function smallestChartText() {
  return page.locator('svg.chart').evaluateAll((svgs) => Math.min(...svgs.map((svg) => {
    const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
    return parseFloat(getComputedStyle(svg).fontSize) * scale;
  })));
}

/** "1,234" as 1234; NaN for anything else (e.g. 10未満). */
function count(text) {
  return /^\d{1,3}(,\d{3})*$/.test(text) ? Number(text.replaceAll(',', '')) : NaN;
}

/** Opens `path` expecting the server to refuse it with `status`; that refusal alone is not a problem. */
async function expectRefused(path, status) {
  const before = problems.length;
  const res = await page.goto(`${BASE_URL}${path}`);
  expect(res && res.status() === status, `${path} answered ${res && res.status()}, not ${status}`);
  const own = (p) => p === `HTTP ${status} for ${res.url()}` || (p.startsWith(`console error on ${res.url()}:`) && p.includes(`status of ${status}`));
  problems.push(...problems.splice(before).filter((p) => !own(p)));
}

/** First login with a one-time password: the password page comes first, and a new password leads to the dashboard. */
async function firstLogIn(id, oneTime, chosen) {
  await page.goto(`${BASE_URL}/lang/ja?next=/login`);
  await page.getByLabel('ログインID', { exact: true }).fill(id);
  await page.getByLabel('パスワード', { exact: true }).fill(oneTime);
  await Promise.all([page.waitForNavigation(), page.getByLabel('パスワード', { exact: true }).press('Enter')]);
  expect(new URL(page.url()).pathname === '/password', `${id}'s first login landed on ${page.url()}, not /password`);
  const forced = (await page.locator('main .notice--warning').innerText().catch(() => '')).trim();
  expect(forced !== '', 'the password page does not say a new password is needed');
  await page.getByLabel('現在のパスワード', { exact: true }).fill(oneTime);
  await page.getByLabel('新しいパスワード', { exact: true }).fill(chosen);
  await page.getByLabel('新しいパスワード（確認）', { exact: true }).fill(chosen);
  await Promise.all([page.waitForNavigation(), page.getByLabel('新しいパスワード（確認）', { exact: true }).press('Enter')]);
  expect(new URL(page.url()).pathname === '/dashboard', `${id} landed on ${page.url()} after setting a password`);
}

/** The operator issues a viewer account on /operator; returns its one-time password. */
async function createViewer(login, name, role, prefecture = '') {
  const form = page.locator('#viewer-form');
  await form.getByLabel('ログインID', { exact: true }).fill(login);
  await form.getByLabel('氏名', { exact: true }).fill(name);
  await form.getByLabel(role, { exact: true }).check();
  await form.getByLabel('都道府県コード（2桁）', { exact: true }).fill(prefecture);
  const [res] = await Promise.all([page.waitForNavigation(), form.getByRole('button', { name: '発行する' }).click()]);
  expect(res && res.status() === 200, `creating ${login} answered ${res && res.status()}: ${await page.locator('#viewer-error').innerText().catch(() => '')}`);
  const created = page.locator('#created-admin');
  expect(await created.isVisible(), `no notice that ${login} was created`);
  expect((await created.innerText()).includes(login), `the notice does not name ${login}`);
  const password = (await page.locator('#one-time-password').innerText()).trim();
  expect(password.length >= 12, `the one-time password of ${login} is ${password.length} characters`);
  return password;
}

const statsArea = page.locator('#area');
const statsTotal = page.locator('#stats-total strong');
const VIEWER_PASSWORD = 'stats-view-2026-pw';
let nationalOneTime = '';
let prefecturalOneTime = '';
let tokyoInNation = NaN;

if (OPERATOR_PASSWORD) {
  await check('operator: the platform operator sets a password, then issues a national and a 茨城県 (08) viewer account', async () => {
    await page.setViewportSize({ width: 1280, height: 900 });
    await firstLogIn('operator', OPERATOR_PASSWORD, 'operator-pw-2026-browser');
    const link = page.locator('header nav a[href="/operator"]');
    expect(await link.count() === 1, 'no link to /operator in the header nav');
    await Promise.all([page.waitForNavigation(), link.click()]);
    expect(await page.locator('#viewer-form').isVisible(), 'no viewer form on /operator');
    nationalOneTime = await createViewer('stats-national', '統計担当　国', '国（集計閲覧）');
    prefecturalOneTime = await createViewer('stats-ibaraki', '統計担当　茨城県', '都道府県（集計閲覧）', '08');
    expect(nationalOneTime !== prefecturalOneTime, 'both accounts got the same one-time password');
    expect(problems.length === 0, problems.join('\n'));
    await logOut();
  });

  await check('statistics: a national viewer sets a password and opens 接種状況の統計 from the header with the keyboard', async () => {
    await firstLogIn('stats-national', nationalOneTime, VIEWER_PASSWORD);
    const link = page.locator('header nav a[href="/statistics"]');
    expect(await link.count() === 1, 'no link to /statistics in the header nav');
    await tabTo(link, 'the 接種状況の統計 link');
    const [res] = await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    expect(res && res.status() === 200, `/statistics answered ${res && res.status()}`);
    expect(new URL(page.url()).pathname === '/statistics', `landed on ${page.url()}`);
    const title = (await h1.innerText()).trim();
    expect(title === '接種状況の統計 — 全国', `h1 is ${JSON.stringify(title)}`);
    expect(await statsArea.inputValue() === 'all', `#area is ${await statsArea.inputValue()}, not all`);
    expect(await link.getAttribute('aria-current') === 'page', 'the nav link is not aria-current on its page');
  });

  await check('statistics: the national dashboard shows a positive total, a line per dose by day, 3 prefectures, 10未満 for small cells, chart text of 11 px or more', async () => {
    const total = count((await statsTotal.innerText()).trim());
    expect(total > 0, `the total reads ${JSON.stringify(await statsTotal.innerText())}`);
    const lines = page.locator('section[aria-labelledby="by-day"] svg polyline');
    expect(await lines.count() >= 1, 'the by-day chart has no line');
    expect(await page.locator('section[aria-labelledby="by-day"] svg text').count() >= 5, 'the by-day chart has no axis labels');
    for (const id of ['by-dose', 'by-product', 'by-age', 'by-sex', 'by-area']) {
      expect(await page.locator(`section[aria-labelledby="${id}"] svg`).count() === 1, `no chart in the ${id} panel`);
      expect(await page.locator(`#${id}-table tbody tr`).count() >= 1, `#${id}-table is empty`);
    }
    const areas = await tableRows('#by-area-table');
    expect(areas.length === 3, `#by-area-table lists ${JSON.stringify(areas)}`);
    for (const name of ['茨城県', '東京都', '北海道']) {
      expect(areas.some(([label]) => label === name), `${name} is not in #by-area-table: ${JSON.stringify(areas)}`);
    }
    const byArea = areas.map(([, v]) => count(v));
    expect(byArea.every((n) => n > 0) && byArea.reduce((a, b) => a + b, 0) === total, `the areas ${JSON.stringify(areas)} do not add up to the total ${total}`);
    tokyoInNation = count(areas.find(([label]) => label === '東京都')[1]);
    const doses = (await tableRows('#by-dose-table')).map(([, v]) => count(v));
    expect(doses.every((n) => n > 0) && doses.reduce((a, b) => a + b, 0) === total, `the doses do not add up to the total ${total}`);
    const cells = (await page.locator('.data-table td.num').allInnerTexts()).map((c) => c.trim());
    expect(cells.includes('10未満'), `no cell reads 10未満: ${JSON.stringify(cells)}`);
    expect(await page.locator('svg .chart__value--suppressed', { hasText: '10未満' }).count() >= 1, 'no chart says 10未満 for a suppressed bar');
    const px = await smallestChartText();
    expect(px >= 11, `a chart draws its text at ${px.toFixed(1)} px`);
    await expectNoResident('the national dashboard');
    expect(problems.length === 0, problems.join('\n'));
    await screenshot('statistics-national-ja.png');
    console.log(`     (total ${total}, ${cells.filter((c) => c === '10未満').length} cells under 10)`);
  });

  await check('keyboard: the national viewer chooses 東京都 in 地域 and sees its municipalities', async () => {
    await tabTo(statsArea, 'the 地域 select', 40);
    for (let i = 0; i < 47 && (await statsArea.inputValue()) !== '13'; i++) {
      await page.keyboard.press('ArrowDown');
    }
    expect(await statsArea.inputValue() === '13', `ArrowDown did not reach 東京都 (13): ${await statsArea.inputValue()}`);
    await tabTo(page.locator('#stats-filter button[type="submit"]'), 'the 表示する button (next after 地域)', 1);
    const [res] = await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    expect(res && res.status() === 200, `the filter answered ${res && res.status()}`);
    expect(new URL(page.url()).searchParams.get('area') === '13', `landed on ${page.url()}`);
    const title = (await h1.innerText()).trim();
    expect(title.includes('東京都'), `h1 is ${JSON.stringify(title)}`);
    expect(await statsArea.inputValue() === '13', 'the select does not keep 東京都');
    const areas = await tableRows('#by-area-table');
    expect(areas.some(([label]) => label.includes('千代田区')), `千代田区 is not in #by-area-table: ${JSON.stringify(areas)}`);
    expect(areas.every(([label]) => label.startsWith('東京都')), `#by-area-table lists places outside 東京都: ${JSON.stringify(areas)}`);
    const total = count((await statsTotal.innerText()).trim());
    expect(total === tokyoInNation, `東京都's total ${total} is not its ${tokyoInNation} on the national page`);
    expect((await page.locator('#open-ndjson').getAttribute('href')).includes('area=13'), 'the open data links do not follow the chosen area');
    await expectNoResident('the 東京都 dashboard');
    expect(problems.length === 0, problems.join('\n'));
    await screenshot('statistics-national-tokyo-ja.png');
  });

  await check('statistics: the open data links download — NDJSON lines with date, prefecture, gender, age, medical_worker, status, count; the CSVs with their header', async () => {
    await page.goto(`${BASE_URL}/statistics`);
    const files = {};
    for (const id of ['open-ndjson', 'open-csv', 'summary-date', 'summary-prefecture']) {
      const href = await page.locator(`#${id}`).getAttribute('href');
      files[id] = await page.evaluate(async (h) => {
        const r = await fetch(h);
        return { status: r.status, type: r.headers.get('content-type'), disposition: r.headers.get('content-disposition'), body: await r.text() };
      }, href);
      expect(files[id].status === 200, `${href} answered ${files[id].status}`);
      expect((files[id].disposition || '').startsWith('attachment'), `${href}: content-disposition ${files[id].disposition}`);
    }
    expect((files['open-ndjson'].type || '').startsWith('application/x-ndjson'), `NDJSON content-type: ${files['open-ndjson'].type}`);
    const keys = ['date', 'prefecture', 'gender', 'age', 'medical_worker', 'status', 'count'];
    const lines = files['open-ndjson'].body.split('\n').filter((l) => l !== '');
    for (const line of lines) {
      const row = JSON.parse(line);
      expect(JSON.stringify(Object.keys(row).sort()) === JSON.stringify([...keys].sort()), `an NDJSON line has keys ${Object.keys(row)}`);
      expect(Number.isInteger(row.count) && row.count >= 10, `an NDJSON line publishes a count of ${row.count}`);
    }
    const csv = files['open-csv'].body.split('\r\n');
    expect(csv[0] === keys.join(','), `the CSV header is ${JSON.stringify(csv[0])}`);
    expect(files['summary-date'].body.startsWith('date,'), `summary by date starts ${JSON.stringify(files['summary-date'].body.slice(0, 30))}`);
    const prefs = files['summary-prefecture'].body.split('\r\n').filter((l) => l !== '');
    expect(prefs[0].startsWith('prefecture,') && prefs[0].endsWith(',total'), `summary by prefecture header: ${prefs[0]}`);
    for (const code of ['01', '08', '13']) {
      expect(prefs.some((l) => l.startsWith(`${code},`)), `summary by prefecture has no ${code} line: ${JSON.stringify(prefs)}`);
    }
    for (const [id, f] of Object.entries(files)) {
      expect(!residentName.test(f.body) && !/\d{12}/.test(f.body), `${id} holds a name or a 12-digit number`);
    }
    console.log(`     (NDJSON: ${lines.length} lines, CSV: ${csv.filter((l) => l !== '').length - 1} rows, by prefecture: ${prefs.length - 1} rows)`);
  });

  await check('tablet (820x1180): the national dashboard does not scroll sideways and its charts stay legible', async () => {
    await page.setViewportSize({ width: 820, height: 1180 });
    await page.goto(`${BASE_URL}/statistics`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow <= 0, `the dashboard scrolls sideways by ${overflow}px at 820px wide`);
    const px = await smallestChartText();
    expect(px >= 11, `a chart draws its text at ${px.toFixed(1)} px at 820px wide`);
    expect(problems.length === 0, problems.join('\n'));
    await screenshot('statistics-national-tablet-ja.png');
    await page.setViewportSize({ width: 1280, height: 900 });
    await logOut();
  });

  await check('statistics: a 茨城県 viewer sees 茨城県 only; /statistics?area=13 answers 403', async () => {
    await firstLogIn('stats-ibaraki', prefecturalOneTime, VIEWER_PASSWORD);
    const [res] = await Promise.all([page.waitForNavigation(), page.locator('header nav a[href="/statistics"]').click()]);
    expect(res && res.status() === 200, `/statistics answered ${res && res.status()}`);
    const title = (await h1.innerText()).trim();
    expect(title === '接種状況の統計 — 茨城県', `h1 is ${JSON.stringify(title)}`);
    expect(await statsArea.count() === 0, 'a prefectural viewer is offered the 地域 select');
    expect(count((await statsTotal.innerText()).trim()) > 0, `the total reads ${await statsTotal.innerText()}`);
    const areas = await tableRows('#by-area-table');
    expect(areas.length >= 1 && areas.every(([label]) => label.startsWith('茨城県')), `#by-area-table: ${JSON.stringify(areas)}`);
    expect(areas.some(([label]) => label.includes('古河市')), `古河市 is not in #by-area-table: ${JSON.stringify(areas)}`);
    await expectNoResident('the 茨城県 dashboard');
    expect(problems.length === 0, problems.join('\n'));
    await screenshot('statistics-prefectural-ja.png');
    await expectRefused('/statistics?area=13', 403);
    expect((await h1.innerText()).trim() === 'この操作は許可されていません', `the refusal says ${JSON.stringify(await h1.innerText())}`);
    await expectRefused('/statistics?area=all', 403);
    await expectNoResident('the refusal');
    expect(problems.length === 0, problems.join('\n'));
    await screenshot('statistics-prefectural-refused-ja.png');
    await page.goto(`${BASE_URL}/dashboard`);
    await logOut();
  });
} else {
  console.log('skip statistics: national and prefectural viewers (set OPERATOR_PASSWORD to the operator\'s one-time password `vrs serve` prints)');
}

await check('statistics: 131016 staff open 接種の進み具合とデータの品質 from the header: 40 current residents, the progress and 要確認 charts', async () => {
  await page.setViewportSize({ width: 1280, height: 900 });
  await logIn('131016-staff');
  const link = page.locator('header nav a[href="/statistics/municipality"]');
  expect(await link.count() === 1, 'no link to /statistics/municipality in the header nav');
  await tabTo(link, 'the 接種の進み具合とデータの品質 link', 30);
  const [res] = await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
  expect(res && res.status() === 200, `/statistics/municipality answered ${res && res.status()}`);
  const title = (await h1.innerText()).trim();
  expect(title === '接種の進み具合とデータの品質 — 東京都千代田区', `h1 is ${JSON.stringify(title)}`);
  const residents = (await page.locator('#current-residents').innerText()).trim();
  expect(residents === '40', `#current-residents is ${JSON.stringify(residents)}`);
  expect(await page.locator('section[aria-labelledby="progress-title"] svg polyline').count() >= 1, 'the progress chart has no line');
  const progress = await tableRows('#progress-table');
  expect(progress.length >= 1 && progress[0][0] === '1回目', `#progress-table: ${JSON.stringify(progress)}`);
  for (const [label, value] of progress) {
    const m = /^(\d+) \((\d+) %\)$/.exec(value);
    expect(m && Math.round((Number(m[1]) * 100) / 40) === Number(m[2]), `${label}: ${value} is not a share of 40`);
  }
  expect(await page.locator('section[aria-labelledby="queue-title"] svg').count() === 1, 'no 要確認 chart');
  const px = await smallestChartText();
  expect(px >= 11, `a chart draws its text at ${px.toFixed(1)} px`);
  const now = (await page.locator('#queue-now').innerText()).trim();
  expect(/^\d+$/.test(now), `#queue-now is ${JSON.stringify(now)}`);
  for (const id of ['queue-by-site', 'queue-by-rule']) {
    const panel = page.locator(`section[aria-labelledby="${id}"]`);
    const table = await panel.locator('table').count();
    const empty = await panel.locator('p.muted', { hasText: '確認を待っている記録はありません' }).count();
    expect((table === 1) !== (empty === 1), `${id}: ${table} tables and ${empty} "nothing waiting" lines`);
    expect(now !== '0' || empty === 1, `${id} has a table while nothing waits`);
  }
  await expectNoResident('the municipal statistics');
  expect(problems.length === 0, problems.join('\n'));
  await screenshot('statistics-municipal-ja.png');
  console.log(`     (progress ${progress.map(([l, v]) => `${l} ${v}`).join(', ')}; 要確認 now ${now})`);
});

await check('statistics: staff are refused the national dashboard; the 131016 administrator sees the municipal page too', async () => {
  await expectRefused('/statistics', 403);
  await page.goto(`${BASE_URL}/dashboard`);
  await logOut();
  await logIn('131016-admin');
  const res = await page.goto(`${BASE_URL}/statistics/municipality`);
  expect(res && res.status() === 200, `/statistics/municipality answered ${res && res.status()} for the administrator`);
  expect((await page.locator('#current-residents').innerText()).trim() === '40', 'the administrator does not see 40 residents');
  await expectNoResident('the administrator\'s municipal statistics');
  expect(problems.length === 0, problems.join('\n'));
  await logOut();
});

await check('statistics: the open data downloads without login; NDJSON lines parse with the 7 keys', async () => {
  await page.goto(`${BASE_URL}/login`);
  const got = await page.evaluate(async () => {
    const out = {};
    for (const path of ['/statistics/open-data.ndjson?area=all', '/statistics/open-data.csv?area=08', '/statistics/summary-by-prefecture.csv']) {
      const r = await fetch(path);
      out[path] = { status: r.status, cors: r.headers.get('access-control-allow-origin'), body: await r.text() };
    }
    return out;
  });
  for (const [path, f] of Object.entries(got)) {
    expect(f.status === 200, `${path} answered ${f.status} without login`);
    expect(f.cors === '*', `${path}: access-control-allow-origin ${f.cors}`);
    expect(!residentName.test(f.body) && !/\d{12}/.test(f.body), `${path} holds a name or a 12-digit number`);
  }
  const keys = JSON.stringify(['age', 'count', 'date', 'gender', 'medical_worker', 'prefecture', 'status']);
  const lines = got['/statistics/open-data.ndjson?area=all'].body.split('\n').filter((l) => l !== '');
  for (const line of lines) {
    expect(JSON.stringify(Object.keys(JSON.parse(line)).sort()) === keys, `an NDJSON line: ${line}`);
  }
  expect(got['/statistics/open-data.csv?area=08'].body.startsWith('date,prefecture,gender,age,medical_worker,status,count\r\n'), 'the CSV has no header line');
  await page.goto(`${BASE_URL}/statistics`);
  expect(new URL(page.url()).pathname === '/login', `/statistics without login went to ${page.url()}`);
  await page.goto(`${BASE_URL}/statistics/municipality`);
  expect(new URL(page.url()).pathname === '/login', `/statistics/municipality without login went to ${page.url()}`);
  expect(problems.length === 0, problems.join('\n'));
  console.log(`     (NDJSON without login: ${lines.length} lines)`);
});

await check('notices: staff list who is due a dose and print an A4 letter with the ticket for each', async () => {
  await logIn('082040-staff');
  const today = new Date();
  const day = (d) => new Date(today.getTime() + d * 86400000).toISOString().slice(0, 10);
  let dose = null;
  for (const d of [3, 2, 4, 1]) {
    await page.goto(`${BASE_URL}/residents/due?dose=${d}&from=${day(-365)}&to=${day(30)}`);
    const n = Number((await page.locator('#due-count').innerText()).trim());
    if (n > 0 && n <= 50) { dose = d; break; }
  }
  expect(dose !== null, 'no dose with between 1 and 50 people due in the demo');
  expect((await h1.innerText()).trim() === '接種勧奨', `h1 is ${JSON.stringify(await h1.innerText())}`);
  const due = Number((await page.locator('#due-count').innerText()).trim());
  await expectNoNumber('the due list', []);
  await screenshot('due-list-ja.png');
  await Promise.all([page.waitForURL(/\/residents\/due\/notices\/[0-9a-f-]{36}$/), page.locator('#make-notices').click()]);
  await page.locator('#result').waitFor({ timeout: 60_000 });
  const letters = Number((await page.locator('#letters').innerText()).trim());
  expect(letters === due, `${letters} letters for ${due} people`);
  await screenshot('notices-job-ja.png');
  await Promise.all([page.waitForNavigation(), page.locator('#print-pages a').first().click()]);
  const first = page.locator('article.letter').first();
  expect(await page.locator('article.letter').count() === letters, 'one letter per person on the page');
  const box = await first.boundingBox();
  expect(box && Math.abs(box.width - 793.7) < 2 && Math.abs(box.height - 1122.5) < 2, `the letter is ${box && box.width}x${box && box.height}px, not A4`);
  const windowBox = await first.locator('.letter__window').boundingBox();
  // The address sits in the window of a 長形3号 envelope: 20 mm from the left, 14 mm from the top.
  expect(windowBox && Math.abs(windowBox.x - box.x - 75.6) < 2 && Math.abs(windowBox.y - box.y - 52.9) < 2, 'the address is not where the envelope window is');
  expect(/様$/.test((await first.locator('.letter__to').innerText()).trim()), 'the letter is not addressed to a person');
  const ocr = (await first.locator('.sticker__ocr').innerText()).trim();
  expect(new RegExp(`^1${dose > 9 ? 9 : dose}082040\\d{10}$`).test(ocr), `the ticket's OCR line ${JSON.stringify(ocr)} is not for dose ${dose}`);
  expect(await first.locator('.sticker__qr svg').count() === 1, 'no QR code on the letter');
  await screenshot('notice-screen-ja.png');
  await page.emulateMedia({ media: 'print' });
  expect(!(await page.locator('.site-header').isVisible()), 'the site header prints on the letter');
  await page.setViewportSize({ width: 1280, height: 1200 });
  await page.screenshot({ path: join(ARTIFACTS, 'notice-print-ja.png'), clip: { x: 0, y: 0, width: 794, height: 1123 } });
  await page.setViewportSize({ width: 1280, height: 900 });
  console.log(`     screenshot ${join(ARTIFACTS, 'notice-print-ja.png')}`);
  await page.pdf({ path: join(ARTIFACTS, 'notices.pdf'), format: 'A4', printBackground: true, preferCSSPageSize: true });
  await page.emulateMedia({ media: 'screen' });
  expect(problems.length === 0, problems.join('\n'));
  console.log(`     (dose ${dose}: ${letters} letters)`);
  await page.goto(`${BASE_URL}/dashboard`);
  await logOut();
});

await browser.close();
clearTimeout(guard);
for (const n of notes) console.log(`     ${n}`);
console.log(`browser checks: all ${run.passed} ok`);
