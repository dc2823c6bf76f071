// What the browser scripts (pages.mjs, camera.mjs) share: a check that
// prints one line and stops the run at the first failure with a screenshot
// of the page as it was, the screenshots themselves, Chromium's flags, and
// a SMART Health Card's QR text.

import { join } from 'node:path';

export class CheckFailed extends Error {}

export function expect(cond, message) {
  if (!cond) throw new CheckFailed(message);
}

// No sandbox (containers), no network of Chromium's own, nothing that
// would make two runs differ.
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * The checks of one script: `script` names it in messages, failure
 * screenshots are `${failedPrefix}N.png` in `artifacts`, `currentPage()`
 * is the page a failure or a screenshot shows, `cleanUp()` closes what the
 * script opened before it exits.
 */
export function checks({ script, artifacts, failedPrefix, currentPage, cleanUp }) {
  let passed = 0;
  return {
    get passed() {
      return passed;
    },
    async check(name, body) {
      try {
        await body();
      } catch (e) {
        const why = e instanceof CheckFailed ? e.message : (e && e.stack) || String(e);
        console.log(`FAIL ${name}`);
        console.error(`${script}: check failed: ${name}\n  ${why.replace(/\n/g, '\n  ')}`);
        const page = currentPage();
        if (page && !page.isClosed()) {
          const shot = join(artifacts, `${failedPrefix}${passed + 1}.png`);
          await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
          console.error(`  page: ${page.url()}\n  screenshot: ${shot}`);
        }
        await cleanUp();
        process.exit(1);
      }
      passed += 1;
      console.log(`ok   ${name}`);
    },
    async screenshot(file) {
      const path = join(artifacts, file);
      await currentPage().screenshot({ path, fullPage: true });
      console.log(`     screenshot ${path}`);
    },
  };
}

/** A card's QR text: `shc:/` and two digits per JWS character, its code minus 45. */
export function shcNumeric(jws) {
  return `shc:/${[...jws].map((c) => String(c.charCodeAt(0) - 45).padStart(2, '0')).join('')}`;
}
