// The page's WebAssembly, tested in Node against the native fedpki binary:
// keys and CSRs made here are accepted by the native CA, and the answer
// check refuses a wrong chain or a foreign key.
//   node --test wasm/tests/   (after scripts/build-wasm and cargo build -p fedpki)
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const w = require(path.join(root, 'target', 'wasm-node', 'fedpki_wasm.js'));
const BIN = process.env.FEDPKI_BIN || path.join(root, 'target', 'debug', 'fedpki');
const env = { ...process.env, FEDPKI_PASSWORD: 'wasm-test-password' };

function fedpki(cwd, args) {
  return execFileSync(BIN, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

/** A CA in a temporary folder, with a request signed by it through `pki sign`. */
function caWithSigned(name, key, withToken) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fedpki-wasm-'));
  fedpki(dir, ['pki', 'install', '-p', 'ca', '--ca-url', 'localhost:9']);
  const token = withToken ? fedpki(dir, ['pki', 'get-token', '-n', name, '-p', 'ca']).trim() : undefined;
  fs.writeFileSync(path.join(dir, 'r.req'), w.requestFile(key.csrPem(name, []), name, token));
  fedpki(dir, ['pki', 'sign', '-p', 'ca', 'r.req', '-o', 'r.signed', '--yes']);
  const signed = JSON.parse(w.readSignedFile(fs.readFileSync(path.join(dir, 'r.signed'), 'utf8')));
  return { dir, signed, token };
}

test('keys of every type make CSRs OpenSSL verifies', () => {
  for (const kt of ['p256', 'p384', 'ed25519']) {
    const key = w.Key.generate(kt);
    const csr = key.csrPem('node1', []);
    const out = spawnSync('openssl', ['req', '-verify', '-noout', '-subject'], { input: csr });
    assert.equal(out.status, 0, `${kt}: ${out.stderr}`);
    assert.match(out.stdout.toString(), /CN = node1/);
    assert.equal(w.csrHash(csr).length, 96);
    assert.match(key.pkcs8Pem(), /^-----BEGIN PRIVATE KEY-----/);
  }
  assert.throws(() => w.Key.generate('rsa'), /key type/);
});

test('the native CA signs a wasm request (token and hash-confirmed) and the answer verifies', () => {
  for (const withToken of [true, false]) {
    const key = w.Key.generate('p256');
    const { dir, signed } = caWithSigned('col1', key, withToken);
    assert.equal(signed.name, 'col1');
    w.verifyAnswer(key, 'col1', [], signed.crt, signed.ca, signed.root, Date.now());
    fs.rmSync(dir, { recursive: true });
  }
});

test('the answer check refuses a foreign key, a wrong chain, another name and a stale time', () => {
  const key = w.Key.generate('p256');
  const a = caWithSigned('col1', key, true);
  const b = caWithSigned('col1', w.Key.generate('p256'), true);
  const s = a.signed;
  assert.throws(() => w.verifyAnswer(w.Key.generate('p256'), 'col1', [], s.crt, s.ca, s.root, Date.now()), /different public key/);
  assert.throws(() => w.verifyAnswer(key, 'col1', [], s.crt, s.ca, b.signed.root, Date.now()), /certificate check failed/);
  assert.throws(() => w.verifyAnswer(key, 'col1', [], s.crt, b.signed.ca, s.root, Date.now()), /certificate check failed/);
  assert.throws(() => w.verifyAnswer(key, 'col2', [], s.crt, s.ca, s.root, Date.now()), /name/);
  assert.throws(() => w.verifyAnswer(key, 'col1', [], s.crt, s.ca, s.root, Date.now() + 2 * 365 * 86400e3), /expired/);
  for (const d of [a.dir, b.dir]) fs.rmSync(d, { recursive: true });
});

test('tokens are checked before use: root against sha, name against the request', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fedpki-wasm-'));
  fedpki(dir, ['pki', 'install', '-p', 'ca', '--ca-url', 'localhost:9']);
  const token = fedpki(dir, ['pki', 'get-token', '-n', 'agg', '-p', 'ca']).trim();
  const info = JSON.parse(w.parseToken(token));
  assert.equal(info.name, 'agg');
  assert.equal(info.aud, 'https://localhost:9/1.0/sign');
  assert.match(info.rootPem, /BEGIN CERTIFICATE/);
  // Another root in the bundle: refused.
  const [jwt] = token.split('.');
  const other = Buffer.from(fs.readFileSync(path.join(dir, 'ca', 'certs', 'intermediate_ca.crt'))).toString('base64');
  assert.throws(() => w.parseToken(`${jwt}.${other}`), /does not match the token's sha/);
  assert.throws(() => w.parseToken('nonsense'), /malformed/);
  assert.throws(() => w.requestFile(w.Key.generate('p256').csrPem('other', []), 'other', token), /this token is for "agg"/);
  // An encrypted key export OpenSSL reads.
  const pem = w.Key.generate('p256').encryptedPkcs8Pem('browser-pass', 10000);
  const out = spawnSync('openssl', ['pkey', '-passin', 'pass:browser-pass', '-noout'], { input: pem });
  assert.equal(out.status, 0, out.stderr.toString());
  fs.rmSync(dir, { recursive: true });
});

test('a WebCrypto key: the core builds its CSR, WebCrypto signs, the CA certifies it, the file is PKCS#8', async () => {
  const { subtle } = globalThis.crypto;
  const pair = await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign']);
  const pkcs8 = new Uint8Array(await subtle.exportKey('pkcs8', pair.privateKey));
  const spki = new Uint8Array(await subtle.exportKey('spki', pair.publicKey));
  const key = w.Key.fromWebCrypto(pkcs8, spki);
  assert.throws(() => key.csrPem('col1', []), /signs in WebCrypto/);
  const draft = key.draft('col1', []);
  const sig = new Uint8Array(await subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, draft.toBeSigned()));
  const csr = draft.finish(sig);
  assert.throws(() => draft.finish(sig), /finished already/);
  const v = spawnSync('openssl', ['req', '-verify', '-noout'], { input: csr });
  assert.equal(v.status, 0, v.stderr.toString());
  // The saved key is the bytes WebCrypto exported, which OpenSSL reads.
  const pem = key.pkcs8Pem();
  assert.deepEqual(Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64'), Buffer.from(pkcs8));
  assert.equal(spawnSync('openssl', ['pkey', '-noout'], { input: pem }).status, 0);
  const enc = key.encryptedPkcs8Pem('browser-pass', 10000);
  assert.equal(spawnSync('openssl', ['pkey', '-passin', 'pass:browser-pass', '-noout'], { input: enc }).status, 0);
  // The native CA signs its request file, and the answer checks against it.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fedpki-wasm-'));
  fedpki(dir, ['pki', 'install', '-p', 'ca', '--ca-url', 'localhost:9']);
  fs.writeFileSync(path.join(dir, 'r.req'), w.requestFile(csr, 'col1', undefined));
  fedpki(dir, ['pki', 'sign', '-p', 'ca', 'r.req', '-o', 'r.signed', '--yes']);
  const signed = JSON.parse(w.readSignedFile(fs.readFileSync(path.join(dir, 'r.signed'), 'utf8')));
  w.verifyAnswer(key, 'col1', [], signed.crt, signed.ca, signed.root, Date.now());
  assert.throws(() => w.verifyAnswer(w.Key.generate('p256'), 'col1', [], signed.crt, signed.ca, signed.root, Date.now()), /different public key/);
  fs.rmSync(dir, { recursive: true });
});
