// The certify page end to end in a real headless Chromium against a real
// `fedpki pki run`: online certify, the offline round trip with
// `fedpki pki sign`, refused tokens, and proof that the private key never
// left the browser.
//   cd tests/browser && npm ci && node --test   (after scripts/build-wasm and cargo build)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = process.env.FEDPKI_BIN || path.join(root, 'target', 'debug', 'fedpki');
const MTLS = path.join(path.dirname(BIN), 'mtls-handshake');
const PASSWORD = 'browser-test-password';
const env = { ...process.env, FEDPKI_PASSWORD: PASSWORD };
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fedpki-browser-'));
let server; let browser; let port; let origin;

const fedpki = (args, cwd = work) => execFileSync(BIN, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const token = (name, extra = []) => fedpki(['pki', 'get-token', '-n', name, '-p', 'ca', ...extra]).trim();

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

/** A token signed with the CA's own provisioner key but already expired. */
function expiredToken(name) {
  const key = crypto.createPrivateKey({ key: fs.readFileSync(path.join(work, 'ca/secrets/provisioner_key')), passphrase: PASSWORD });
  const rootPem = fs.readFileSync(path.join(work, 'ca/certs/root_ca.crt'), 'utf8');
  const rootDer = new crypto.X509Certificate(rootPem).raw;
  const jwk = key.export({ format: 'jwk' });
  const kid = crypto.createHash('sha256').update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })).digest('base64url');
  const now = Math.floor(Date.now() / 1000) - 7200;
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${b64({ alg: 'ES256', kid, typ: 'JWT' })}.${b64({
    iss: 'provisioner', sub: name, sans: [name], aud: `https://localhost:${port}/1.0/sign`,
    sha: crypto.createHash('sha256').update(rootDer).digest('hex'), nbf: now, iat: now, exp: now + 300,
    jti: crypto.randomBytes(32).toString('hex'),
  })}`;
  const sig = crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  return `${Buffer.from(`${input}.${sig}`).toString('base64')}.${Buffer.from(rootPem).toString('base64')}`;
}

async function startServer() {
  server = spawn(BIN, ['pki', 'run', '-p', 'ca'], { cwd: work, env, stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise((resolve, reject) => {
    let log = '';
    server.stderr.on('data', (d) => { log += d; if (log.includes('event=listening')) resolve(); });
    server.on('exit', (c) => reject(new Error(`server exited ${c}: ${log}`)));
  });
}

before(async () => {
  port = await freePort();
  origin = `https://localhost:${port}`;
  // The aggregator of the mutual-TLS check is `localhost`, the CA's host.
  fedpki(['pki', 'install', '-p', 'ca', '--ca-url', `localhost:${port}`, '--node-on-ca-host', 'allow']);
  await startServer();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  fs.rmSync(work, { recursive: true, force: true });
});

/** A page whose every request body is recorded. The CA's TLS certificate
 *  comes from the CA itself, which this fresh browser does not trust yet. */
async function openPage() {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true });
  const page = await context.newPage();
  const sent = [];
  page.on('request', (r) => sent.push(`${r.method()} ${r.url()}\n${r.postData() || ''}`));
  await page.goto(`${origin}/`);
  await page.getByRole('status').filter({ hasText: 'Ready.' }).waitFor();
  return { page, sent, context };
}

async function downloadAll(page, dir) {
  fs.mkdirSync(dir, { recursive: true });
  const links = await page.locator('#downloads a').all();
  const names = [];
  for (const link of links) {
    const [dl] = await Promise.all([page.waitForEvent('download'), link.click()]);
    const name = dl.suggestedFilename();
    await dl.saveAs(path.join(dir, name));
    names.push(name);
  }
  return names;
}

const rootFingerprint = () => JSON.parse(fs.readFileSync(path.join(work, 'ca/config/ca.json'), 'utf8')).rootFingerprint;

/** A signed file for `req` (the page's request file) from another CA
 *  folder made here: what an attacker on the way back could hand over. */
function signedElsewhere(req, out) {
  const evil = fs.mkdtempSync(path.join(os.tmpdir(), 'fedpki-evil-'));
  execFileSync(BIN, ['pki', 'install', '-p', 'ca', '--ca-url', 'localhost:1'], { cwd: evil, env });
  const request = JSON.parse(fs.readFileSync(req, 'utf8'));
  request.token = null;
  fs.writeFileSync(path.join(evil, 'x.req'), JSON.stringify(request));
  execFileSync(BIN, ['pki', 'sign', '-p', 'ca', 'x.req', '-o', out, '--yes'], { cwd: evil, env, stdio: 'ignore' });
  const fp = JSON.parse(fs.readFileSync(path.join(evil, 'ca/config/ca.json'), 'utf8')).rootFingerprint;
  fs.rmSync(evil, { recursive: true });
  return fp;
}

const keyBody = (pem) => pem.split('\n').filter((l) => l && !l.startsWith('-----')).join('');

test('online: the browser certifies, the files verify, and the key never left it', async () => {
  const { page, sent, context } = await openPage();
  await page.getByLabel('Token', { exact: true }).fill(token('collaborator1'));
  const started = Date.now();
  await page.getByRole('button', { name: 'Certify' }).click();
  await page.getByRole('heading', { name: 'Your files' }).waitFor();
  const elapsed = Date.now() - started;
  const dir = path.join(work, 'browser-online');
  const names = await downloadAll(page, dir);
  assert.deepEqual(names.sort(), ['collaborator1-certificates.zip', 'collaborator1.crt', 'collaborator1.key', 'root_ca.crt']);
  const verify = spawnSync('openssl', ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', 'root_ca.crt', '-untrusted', 'collaborator1.crt', 'collaborator1.crt'], { cwd: dir });
  assert.equal(verify.status, 0, verify.stderr.toString() + verify.stdout.toString());
  const keyPem = fs.readFileSync(path.join(dir, 'collaborator1.key'), 'utf8');
  const body = keyBody(keyPem);
  assert.ok(body.length > 40);
  for (const r of sent) assert.ok(!r.includes(body) && !r.includes(body.slice(0, 40)), `a request carried the key: ${r.slice(0, 80)}`);
  assert.ok(sent.some((r) => r.startsWith('POST') && r.includes('/1.0/sign')), 'the CSR went to the CA');
  // The zip holds the same three files.
  const unzip = spawnSync('python3', ['-c', 'import sys,zipfile; print(sorted(zipfile.ZipFile(sys.argv[1]).namelist()))', path.join(dir, 'collaborator1-certificates.zip')]);
  assert.match(unzip.stdout.toString(), /collaborator1\.crt.*collaborator1\.key.*root_ca\.crt/);
  // Mutual TLS with an aggregator certified by the CLI.
  fedpki(['pki', 'certify', '-n', 'localhost', '-t', token('localhost'), '-c', path.join(work, 'agg')]);
  const mtls = spawnSync(MTLS, [path.join(work, 'agg'), 'localhost', dir, 'collaborator1']);
  assert.equal(mtls.status, 0, mtls.stderr.toString());
  assert.match(mtls.stdout.toString(), /verified the collaborator's certificate: CN=collaborator1/);
  await page.screenshot({ path: path.join(root, 'target', 'page.png'), fullPage: true });
  console.log(`# browser certify on loopback: ${elapsed} ms from Certify to downloads`);
  await context.close();
});

test('a reused, an expired and a foreign token each show their error', async () => {
  const { page, context } = await openPage();
  const used = token('col-used');
  fedpki(['pki', 'certify', '-n', 'col-used', '-t', used, '-c', path.join(work, 'cli')]);
  // A token of another CA: its root checks out against its own sha, but
  // this CA's provisioner did not sign it.
  const other = fs.mkdtempSync(path.join(os.tmpdir(), 'fedpki-other-'));
  execFileSync(BIN, ['pki', 'install', '-p', 'ca', '--ca-url', `localhost:${port}`], { cwd: other, env });
  const foreign = execFileSync(BIN, ['pki', 'get-token', '-n', 'col-x', '-p', 'ca'], { cwd: other, env }).toString().trim();
  fs.rmSync(other, { recursive: true });
  const cases = [
    [foreign, /token of another CA/],
    [used, /already used/],
    [expiredToken('col-old'), /expired/],
    ['not a token at all', /cannot be used: the token is malformed/],
  ];
  for (const [t, message] of cases) {
    await page.getByLabel('Token', { exact: true }).fill(t);
    await page.getByRole('button', { name: 'Certify' }).click();
    await page.getByRole('alert').filter({ hasText: message }).waitFor({ timeout: 10000 });
    assert.ok(await page.locator('#results').isHidden());
  }
  // The CA goes away while the page is open.
  server.kill('SIGTERM');
  await new Promise((r) => server.on('exit', r));
  await page.getByLabel('Token', { exact: true }).fill(token('col-late'));
  await page.getByRole('button', { name: 'Certify' }).click();
  await page.getByRole('alert').filter({ hasText: 'could not be reached' }).waitFor({ timeout: 10000 });
  await startServer();
  await context.close();
});

test('offline: request file → fedpki pki sign → signed file → downloads', async () => {
  const { page, sent, context } = await openPage();
  await page.getByLabel('Token (optional)').fill(token('edge1'));
  await page.getByRole('button', { name: 'Make request file' }).click();
  await page.getByRole('status').filter({ hasText: 'Request for edge1 made' }).waitFor();
  const dir = path.join(work, 'browser-offline');
  const names = await downloadAll(page, dir);
  assert.deepEqual(names.sort(), ['edge1.key', 'edge1.req']);
  // The air-gapped CA: the server must be stopped for `pki sign`.
  server.kill('SIGTERM');
  await new Promise((r) => server.on('exit', r));
  fedpki(['pki', 'sign', '-p', 'ca', path.join(dir, 'edge1.req'), '-o', path.join(dir, 'edge1.signed')]);
  await startServer();
  await page.locator('#signed').setInputFiles(path.join(dir, 'edge1.signed'));
  await page.getByRole('button', { name: 'Load signed file' }).click();
  await page.getByRole('heading', { name: 'Your files' }).waitFor();
  const out = path.join(dir, 'out');
  await downloadAll(page, out);
  const verify = spawnSync('openssl', ['verify', '-x509_strict', '-CAfile', 'root_ca.crt', '-untrusted', 'edge1.crt', 'edge1.crt'], { cwd: out });
  assert.equal(verify.status, 0, verify.stderr.toString());
  const body = keyBody(fs.readFileSync(path.join(out, 'edge1.key'), 'utf8'));
  for (const r of sent) assert.ok(!r.includes(body), 'no request carried the key');
  await context.close();

  // The page was closed in between: the saved key comes back as a file,
  // and a signed file for another key is refused.
  const again = await openPage();
  await again.page.locator('#signed').setInputFiles(path.join(dir, 'edge1.signed'));
  await again.page.getByRole('button', { name: 'Load signed file' }).click();
  await again.page.getByRole('alert').filter({ hasText: 'choose the saved edge1.key' }).waitFor();
  await again.page.locator('#saved-key').setInputFiles(path.join(dir, 'edge1.key'));
  await again.page.getByRole('button', { name: 'Load signed file' }).click();
  // The page no longer holds the token's root: the CA's fingerprint is needed.
  await again.page.getByRole('alert').filter({ hasText: 'there is no root to check it against' }).waitFor();
  assert.ok(await again.page.locator('#results').isHidden());
  await again.page.getByLabel('CA root fingerprint (SHA-256)').fill(rootFingerprint());
  await again.page.getByRole('button', { name: 'Load signed file' }).click();
  await again.page.getByRole('heading', { name: 'Your files' }).waitFor();
  fedpki(['pki', 'csr', '-n', 'edge1', '-c', path.join(work, 'other'), '-o', path.join(work, 'other.req')]);
  await again.page.locator('#saved-key').setInputFiles(path.join(work, 'other', 'edge1.key'));
  await again.page.getByRole('button', { name: 'Load signed file' }).click();
  await again.page.getByRole('alert').filter({ hasText: 'different public key' }).waitFor();
  assert.ok(await again.page.locator('#results').isHidden());
  await again.context.close();
});

test('offline: a signed file from another root is refused, as pki import refuses it', async () => {
  const { page, context } = await openPage();
  await page.getByLabel('Token (optional)').fill(token('edge2'));
  await page.getByRole('button', { name: 'Make request file' }).click();
  await page.getByRole('status').filter({ hasText: 'Request for edge2 made' }).waitFor();
  const dir = path.join(work, 'browser-foreign');
  await downloadAll(page, dir);
  const evilFp = signedElsewhere(path.join(dir, 'edge2.req'), path.join(dir, 'evil.signed'));
  const load = async (p, fingerprint = '') => {
    await p.getByLabel('CA root fingerprint (SHA-256)').fill(fingerprint);
    await p.locator('#signed').setInputFiles(path.join(dir, 'evil.signed'));
    await p.getByRole('button', { name: 'Load signed file' }).click();
  };
  // The page keeps the token's root: another one is refused, even with
  // its own fingerprint typed in.
  for (const fp of ['', evilFp]) {
    await load(page, fp);
    await page.getByRole('alert').filter({ hasText: 'than the one your token vouched for' }).waitFor();
    assert.ok(await page.locator('#results').isHidden());
  }
  await context.close();
  // Closed in between: nothing to compare with until a fingerprint is typed,
  // and the CA's own is not the file's.
  const again = await openPage();
  await again.page.locator('#saved-key').setInputFiles(path.join(dir, 'edge2.key'));
  await load(again.page);
  await again.page.getByRole('alert').filter({ hasText: 'there is no root to check it against' }).waitFor();
  await load(again.page, rootFingerprint());
  await again.page.getByRole('alert').filter({ hasText: `not the ${rootFingerprint()} you gave` }).waitFor();
  assert.ok(await again.page.locator('#results').isHidden());
  // The CLI refuses the same file with the same words.
  fs.mkdirSync(path.join(dir, 'cli'), { recursive: true });
  fs.copyFileSync(path.join(dir, 'edge2.key'), path.join(dir, 'cli', 'edge2.key'));
  const cli = spawnSync(BIN, ['pki', 'import', path.join(dir, 'evil.signed'), '-c', path.join(dir, 'cli'), '--root-fingerprint', rootFingerprint()], { env });
  assert.notEqual(cli.status, 0);
  assert.match(cli.stderr.toString(), new RegExp(`not the ${rootFingerprint()} you gave`));
  await again.context.close();
});

test('budget: the module is at most 200 KiB gzipped and holds no RSA, legacy PEM or JWE code', () => {
  const wasm = fs.readFileSync(path.join(root, 'web', 'dist', 'fedpki_wasm_bg.wasm'));
  // GNU gzip -9 (deflate implementations differ by a few per cent).
  const gz = execFileSync('gzip', ['-9', '-c'], { input: wasm }).length;
  console.log(`# wasm module: ${wasm.length} bytes, ${gz} gzipped (budget ${200 * 1024})`);
  assert.ok(gz <= 200 * 1024, `the page's module is ${gz} bytes gzipped, over its 200 KiB budget`);
  // The build before wasm-bindgen keeps function names: none of the
  // features the page never calls may be in it.
  const named = fs.readFileSync(path.join(root, 'target', 'wasm', 'wasm32-unknown-unknown', 'wasm-release', 'fedpki_wasm.wasm')).toString('latin1');
  // (Rust's legacy mangling: `_ZN3rsa…` for a function of the crate,
  // `$LT$rsa..` for one of its types' impls.)
  for (const crate of ['rsa', 'md5', 'aes_gcm', 'scrypt', 'polyval']) {
    for (const form of [`_ZN${crate.length}${crate}`, `$LT$${crate}..`]) {
      assert.ok(!named.includes(form), `${crate} code is in the page's module (${form})`);
    }
  }
  assert.ok(!named.includes('11fedpki_core3jwe'), "the core's JWE code is in the page's module");
  assert.ok(named.includes('_ZN4p256'), 'the names are there to check');
  // The self-contained page carries the same module, base64 (a third more).
  const html = fs.readFileSync(path.join(root, 'web', 'dist', 'fedpki-certify.html'), 'utf8');
  const inlined = Buffer.from(html.match(/atob\("([A-Za-z0-9+/=]+)"\)/)[1], 'base64');
  assert.ok(inlined.equals(wasm), 'the inlined module is the served one');
  console.log(`# self-contained page: ${html.length} bytes, ${execFileSync('gzip', ['-9', '-c'], { input: html }).length} gzipped`);
});

test('budget: keygen + CSR in this page within 5x WebCrypto P-256 generateKey + sign', async () => {
  const { page, context } = await openPage();
  const r = await page.evaluate(async () => {
    const { newKey, csrOf } = globalThis.fedpkiKeys;
    const m = await import('/fedpki_wasm.js');
    const data = new TextEncoder().encode('x'.repeat(300)); // about a CSR's to-be-signed size
    const time = async (f, n) => { const t = performance.now(); for (let i = 0; i < n; i++) await f(); return (performance.now() - t) / n; };
    const page = async () => csrOf(await newKey('p256'), 'bench', []);
    const webcrypto = async () => {
      const k = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
      await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, k.privateKey, data);
    };
    const core = async () => m.Key.generate('p256').csrPem('bench', []);
    await page(); await webcrypto(); await core(); // warm up
    // Interleaved rounds, the median of their ratios: this machine is noisy.
    const rounds = { page: [], webcrypto: [], ratio: [] };
    for (let i = 0; i < 9; i++) {
      const p = await time(page, 30);
      const w = await time(webcrypto, 30);
      rounds.page.push(p); rounds.webcrypto.push(w); rounds.ratio.push(p / w);
    }
    const median = (v) => v.sort((a, b) => a - b)[v.length >> 1];
    return { page: median(rounds.page), webcrypto: median(rounds.webcrypto), ratio: median(rounds.ratio), core: await time(core, 10) };
  });
  const { ratio } = r;
  console.log(`# keygen+CSR P-256: page ${r.page.toFixed(3)} ms, WebCrypto generateKey+sign ${r.webcrypto.toFixed(3)} ms, ratio ${ratio.toFixed(2)}; the core's own key ${r.core.toFixed(2)} ms`);
  assert.ok(ratio <= 5, `the page takes ${ratio.toFixed(2)}x WebCrypto's time (budget 5x)`);
  await context.close();
});

/** axe-core's violations on the page as it stands. */
async function axeViolations(page) {
  await page.addScriptTag({ path: path.join(path.dirname(fileURLToPath(import.meta.url)), 'node_modules', 'axe-core', 'axe.min.js') });
  const result = await page.evaluate(() => globalThis.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/** `true` when the element is wholly inside the viewport, else where it is. */
async function inView(page, selector) {
  return page.locator(selector).evaluate((el) => {
    const r = el.getBoundingClientRect();
    const inside = r.top >= 0 && r.bottom <= innerHeight + 1 && r.left >= 0 && r.right <= innerWidth + 1; // 1 px: rounding
    return inside || `${el.id || el.className} at ${r.left},${r.top}–${r.right},${r.bottom} in ${innerWidth}×${innerHeight}`;
  });
}

test('the result is where the user looks, focused, and axe finds nothing in any state, light or dark', async () => {
  const shots = path.join(root, 'docs', 'screenshots');
  fs.mkdirSync(shots, { recursive: true });
  for (const [scheme, viewport] of [['light', { width: 1366, height: 768 }], ['dark', { width: 390, height: 844 }]]) {
    // bypassCSP: the test injects axe-core, which the page's own CSP rightly refuses.
    const context = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true, colorScheme: scheme, viewport, bypassCSP: true });
    const page = await context.newPage();
    await page.goto(`${origin}/`);
    await page.getByRole('status').filter({ hasText: 'Ready.' }).waitFor();
    const check = async (state) => assert.deepEqual(await axeViolations(page), [], `${scheme}, ${state}`);
    await check('empty');
    // An error: beside the button, in view, focused.
    await page.getByLabel('Token', { exact: true }).fill('not a token');
    await page.getByRole('button', { name: 'Certify' }).click();
    await page.getByRole('alert').filter({ hasText: 'This token cannot be used' }).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('role')), 'alert');
    assert.equal(await inView(page, '#online-outcome .error'), true, `${scheme}: the error is out of view`);
    await check('error');
    // Certified: the files right after the form, in view, the heading focused.
    await page.getByLabel('Token', { exact: true }).fill(token(`look-${scheme}`));
    await page.getByRole('button', { name: 'Certify' }).click();
    await page.getByRole('heading', { name: 'Your files' }).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.id), 'results-h');
    assert.equal(await inView(page, '#downloads'), true, `${scheme}: the downloads are out of view`);
    assert.ok(await page.evaluate(() => document.getElementById('online').nextElementSibling?.id === 'results'
      || document.getElementById('online-outcome').nextElementSibling?.id === 'results'));
    await check('results');
    if (scheme === 'light') await page.screenshot({ path: path.join(shots, 'certified.png') });
    // Offline: the hash, large, grouped, wrapped: no sideways scrolling.
    await page.getByLabel('Name').fill(`offline-${scheme}`);
    await page.getByRole('button', { name: 'Make request file' }).click();
    await page.getByRole('status').filter({ hasText: `Request for offline-${scheme} made` }).waitFor();
    const hash = await page.locator('#hash-value').textContent();
    assert.match(hash, /^([0-9a-f]{8} ){11}[0-9a-f]{8}$/);
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth), `${scheme}: the page scrolls sideways`);
    assert.equal(await inView(page, '#downloads'), true, `${scheme}: the request file is out of view`);
    await check('offline request made');
    if (scheme === 'light') await page.screenshot({ path: path.join(shots, 'offline.png') });
    await context.close();
  }
});

test('keyboard only: every control is reached with Tab and works with Enter or Space', async () => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
  const page = await context.newPage();
  await page.goto(`${origin}/`);
  await page.getByRole('status').filter({ hasText: 'Ready.' }).waitFor();
  const order = [];
  for (let i = 0; i < 10; i++) {
    await page.keyboard.press('Tab');
    order.push(await page.evaluate(() => document.activeElement.id));
  }
  assert.deepEqual(order, ['token', 'key-type', 'certify', 'off-name', 'off-token', 'make-request', 'signed', 'saved-key', 'root-fp', 'load-signed']);
  // Certify with the keyboard alone.
  await page.locator('#token').focus();
  await page.keyboard.insertText(token('keyboard'));
  await page.keyboard.press('Tab'); // the key type
  await page.keyboard.press('Tab'); // Certify
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Your files' }).waitFor();
  await page.keyboard.press('Tab');
  assert.match(await page.evaluate(() => document.activeElement.textContent), /^Download keyboard/);
  // Offline, then copy the hash with Space.
  await page.locator('#off-name').focus();
  await page.keyboard.insertText('keyboard-off');
  await page.keyboard.press('Enter');
  await page.getByRole('status').filter({ hasText: 'Request for keyboard-off made' }).waitFor();
  await page.locator('#copy-hash').focus();
  await page.keyboard.press('Space');
  await page.getByRole('status').filter({ hasText: 'copied' }).waitFor();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(copied, (await page.locator('#hash-value').textContent()).replace(/\s/g, ''));
  assert.equal(copied.length, 96);
  await context.close();
});

test('the self-contained page works from a local file (offline request)', async () => {
  const file = path.join(root, 'web', 'dist', 'fedpki-certify.html');
  assert.ok(fs.existsSync(file), 'scripts/build-wasm makes web/dist/fedpki-certify.html');
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  const fetched = [];
  page.on('request', (r) => fetched.push(r.url()));
  await page.goto(`file://${file}`);
  await page.getByRole('status').filter({ hasText: 'Ready.' }).waitFor();
  await page.getByLabel('Name').fill('filehost');
  await page.getByRole('button', { name: 'Make request file' }).click();
  await page.getByRole('status').filter({ hasText: 'Request for filehost made' }).waitFor();
  const dir = path.join(work, 'file-page');
  await downloadAll(page, dir);
  const req = JSON.parse(fs.readFileSync(path.join(dir, 'filehost.req'), 'utf8'));
  assert.equal(req.fedpki, 'certificate-request');
  const v = spawnSync('openssl', ['req', '-verify', '-noout'], { input: req.csr });
  assert.equal(v.status, 0, v.stderr.toString());
  assert.deepEqual(fetched.filter((u) => !u.startsWith('file:') && !u.startsWith('data:')), [], 'nothing fetched from anywhere');
  await context.close();
});
