// SPDX-License-Identifier: MPL-2.0
// A real browser player for the HLS tests (tests/hls.rs): Debian's
// chromium, headless, through puppeteer-core (no browser of its own),
// loads hls_player.html from PAGE_URL, plays the package, switches the
// audio to SWITCH_TO, shows SUBTITLES, takes SCREENSHOT with the subtitle
// on screen and prints what it saw as JSON.
//
//   node hls_player.mjs CHROMIUM PAGE_URL SWITCH_TO SUBTITLES SCREENSHOT
import puppeteer from 'puppeteer-core';

const [, , chromium, pageUrl, switchTo, subtitles, screenshot] = process.argv;
const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required'],
});
try {
  const page = await browser.newPage();
  page.on('console', (message) => console.error('page:', message.text()));
  await page.setViewport({ width: 640, height: 480 });
  await page.goto(pageUrl);
  const seen = await page.evaluate(
    (to, language) => window.runPlayerTest(to, language),
    switchTo,
    subtitles,
  );
  await page.screenshot({ path: screenshot });
  console.log(JSON.stringify(seen));
} finally {
  await browser.close();
}
