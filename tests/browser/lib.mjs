// Shared by the browser scripts: Debian's Chromium as this machine can run it, and a record of
// what went wrong in a page.
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { chromium } from 'playwright-core';

// Headless Chromium from Debian's package (a downloaded browser cannot be fetched here); the
// flags keep it from reaching for Google's hosts on a closed network.
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
}

// Collects the page's uncaught errors and console errors, except those matching `expected`
// (the 401 before logging in, say). The returned array fills as the page runs.
export function watchProblems(page, expected = /$^/) {
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !expected.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  return problems;
}

// An app page on its own origin (another port on loopback, so every call to openvod is
// cross-origin): `scripts` maps paths to files served as JavaScript, anything else gets `html`.
// Resolves to { server, origin }.
export async function serveApp(html, scripts) {
  const server = http.createServer(async (req, res) => {
    if (scripts[req.url]) {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(await readFile(scripts[req.url]));
    } else {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(html);
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}
