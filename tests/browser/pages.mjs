// Real-browser checks of the VRS pages, run by tests/api/browser.rs against a
// `vrs serve --demo` it started. Debian's Chromium (/usr/bin/chromium) is
// driven through playwright-core; no browser is ever downloaded.
//
//   BASE_URL=http://127.0.0.1:PORT ARTIFACTS=tests/browser/artifacts node pages.mjs
//
// Prints one line per check; exits non-zero at the first failed one, with a
// screenshot of the page as it was (failed-*.png in ARTIFACTS).

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

const BASE_URL = (process.env.BASE_URL || '').replace(/\/+$/, '');
const ARTIFACTS = resolve(process.env.ARTIFACTS || 'artifacts');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

if (!/^https?:\/\/[^/]+$/.test(BASE_URL)) {
  console.error(`pages.mjs: set BASE_URL to the server's address, e.g. http://127.0.0.1:8080 (got ${JSON.stringify(process.env.BASE_URL)})`);
  process.exit(2);
}
mkdirSync(ARTIFACTS, { recursive: true });

class CheckFailed extends Error {}

function expect(cond, message) {
  if (!cond) throw new CheckFailed(message);
}

let passed = 0;
let page;
let browser;

async function check(name, body) {
  try {
    await body();
  } catch (e) {
    const why = e instanceof CheckFailed ? e.message : (e && e.stack) || String(e);
    console.log(`FAIL ${name}`);
    console.error(`pages.mjs: check failed: ${name}\n  ${why.replace(/\n/g, '\n  ')}`);
    if (page) {
      const shot = join(ARTIFACTS, `failed-${passed + 1}.png`);
      await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
      console.error(`  page: ${page.url()}\n  screenshot: ${shot}`);
    }
    await browser?.close().catch(() => {});
    process.exit(1);
  }
  passed += 1;
  console.log(`ok   ${name}`);
}

async function screenshot(file) {
  const path = join(ARTIFACTS, file);
  await page.screenshot({ path, fullPage: true });
  console.log(`     screenshot ${path}`);
}

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
  console.error('pages.mjs: gave up after 120 s');
  process.exit(1);
}, 120_000);

try {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
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

await check('logout: the logout button ends the session', async () => {
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'ログアウト' }).click()]);
  expect(new URL(page.url()).pathname === '/login', `landed on ${page.url()}`);
  await page.goto(`${BASE_URL}/dashboard`);
  expect(new URL(page.url()).pathname === '/login', `dashboard reachable after logout: ${page.url()}`);
});

await browser.close();
clearTimeout(guard);
for (const n of notes) console.log(`     ${n}`);
console.log(`browser checks: all ${passed} ok`);
