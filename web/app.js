// The certify page. All key material is made and kept here; only the CSR
// and the token are ever sent (to this page's own origin).
import init, { Key, parseToken, verifyAnswer, requestFile, readSignedFile, acceptSignedFile, csrHash } from './fedpki_wasm.js';

const $ = (id) => document.getElementById(id);
const busy = (on) => document.querySelectorAll('button').forEach((b) => { b.disabled = on; });
let pending = null; // offline: { key, name, sans, rootPem } between request and signed file

// Each form says what happened right below its own button: its status
// (announced politely), its error (announced at once, and focused so a
// keyboard or screen-reader user lands on it), and the files it made.
function outcomeOf(form) {
  const box = $(`${form.id}-outcome`);
  return { box, status: box.querySelector('.status'), error: box.querySelector('.error') };
}

let current = outcomeOf($('online'));
const status = (text) => { current.status.textContent = text; };

function fail(message) {
  current.status.textContent = '';
  current.error.textContent = message;
  current.error.hidden = false;
  current.error.focus();
}

function begin(event) {
  event.preventDefault();
  current = outcomeOf(event.currentTarget);
  for (const form of document.forms) {
    const o = outcomeOf(form);
    o.status.textContent = '';
    o.error.hidden = true;
    o.error.textContent = '';
  }
  $('results').hidden = true;
  $('downloads').replaceChildren();
}

// Errors from the wasm module arrive as Error objects with the core's text.
const text = (e) => (e && e.message) || String(e);

// The files, shown right after the form that made them, in view, focused.
function offer(files) {
  const list = $('downloads');
  list.replaceChildren();
  for (const [name, blob] of files) {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = name;
    a.textContent = `Download ${name}`;
    const li = document.createElement('li');
    li.append(a);
    list.append(li);
  }
  current.box.after($('results'));
  $('results').hidden = false;
  $('results-h').focus({ preventScroll: true });
  const r = $('results').getBoundingClientRect();
  if (r.top < 0 || r.bottom > innerHeight) $('results').scrollIntoView({ block: 'start' });
}

function pemBlob(s) { return new Blob([s], { type: 'application/x-pem-file' }); }

// The three files `fedpki pki certify` writes, plus one zip of them.
function certifiedFiles(name, keyPem, crt, ca, root) {
  const chain = ensureNl(crt) + ensureNl(ca);
  const files = [[`${name}.key`, keyPem], [`${name}.crt`, chain], ['root_ca.crt', ensureNl(root)]];
  const zip = zipStore(files.map(([n, s]) => [n, new TextEncoder().encode(s)]));
  return [...files.map(([n, s]) => [n, pemBlob(s)]), [`${name}-certificates.zip`, new Blob([zip], { type: 'application/zip' })]];
}

const ensureNl = (s) => (s.endsWith('\n') ? s : `${s}\n`);

// A new key. The NIST curves come from WebCrypto, which makes and signs at
// native speed: the key is exported once as PKCS#8 (the file saved, the
// same form `fedpki pki certify` writes) and the core builds the CSR
// around WebCrypto's signature. Ed25519, and a page without WebCrypto,
// use the core's own key.
const subtle = globalThis.crypto && globalThis.crypto.subtle;
const CURVES = { p256: ['P-256', 'SHA-256'], p384: ['P-384', 'SHA-384'] };

async function newKey(type) {
  const curve = CURVES[type];
  if (!curve || !subtle) return { key: Key.generate(type) };
  const pair = await subtle.generateKey({ name: 'ECDSA', namedCurve: curve[0] }, true, ['sign']);
  const [pkcs8, spki] = await Promise.all([subtle.exportKey('pkcs8', pair.privateKey), subtle.exportKey('spki', pair.publicKey)]);
  return { key: Key.fromWebCrypto(new Uint8Array(pkcs8), new Uint8Array(spki)), signer: pair.privateKey, hash: curve[1] };
}

async function csrOf(made, name, sans) {
  if (!made.signer) return made.key.csrPem(name, sans);
  const draft = made.key.draft(name, sans);
  const sig = await subtle.sign({ name: 'ECDSA', hash: made.hash }, made.signer, draft.toBeSigned());
  return draft.finish(new Uint8Array(sig));
}

// The browser tests time the page's own key route against WebCrypto's.
globalThis.fedpkiKeys = { newKey, csrOf };

async function certifyOnline(event) {
  begin(event);
  const token = $('token').value.trim();
  if (!token) return fail('Paste a token first.');
  let info;
  try {
    info = JSON.parse(parseToken(token));
  } catch (e) {
    return fail(`This token cannot be used: ${text(e)}`);
  }
  if (Date.now() / 1000 > info.exp + 60) {
    return fail('This token has expired. Ask the CA operator for a new one (fedpki pki get-token).');
  }
  busy(true);
  try {
    status(`Generating a ${$('key-type').value} key for ${info.name} in this browser…`);
    const made = await newKey($('key-type').value);
    const csr = await csrOf(made, info.name, info.sans);
    status('Asking the CA to sign…');
    let resp;
    try {
      resp = await fetch('/1.0/sign', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ csr, ott: info.jwt }),
      });
    } catch (e) {
      return fail(`The CA at ${location.origin} could not be reached (${text(e)}). Check that it is running.`);
    }
    const body = await resp.json().catch(() => ({}));
    if (resp.status !== 201) {
      return fail(`The CA refused: ${body.message || resp.statusText} (${resp.status}).`);
    }
    status('Checking the certificate…');
    try {
      verifyAnswer(made.key, info.name, info.sans, body.crt, body.ca, info.rootPem, Date.now());
    } catch (e) {
      return fail(`The CA's answer failed the checks, nothing is offered: ${text(e)}`);
    }
    status(`Certified ${info.name}. Save the files below; the key exists nowhere else.`);
    offer(certifiedFiles(info.name, made.key.pkcs8Pem(), body.crt, body.ca, info.rootPem));
  } catch (e) {
    fail(`Nothing was certified: ${text(e)}`);
  } finally {
    busy(false);
  }
}

// The 96 hex digits in groups of eight, for reading aloud.
const grouped = (hex) => hex.match(/.{1,8}/g).join(' ');

async function makeRequest(event) {
  begin(event);
  $('hash').hidden = true;
  const token = $('off-token').value.trim() || undefined;
  let name = $('off-name').value.trim();
  let sans = [];
  let rootPem; // the token's root: the signed file must chain to it
  busy(true);
  try {
    if (token) {
      const info = JSON.parse(parseToken(token));
      name = info.name;
      sans = info.sans;
      rootPem = info.rootPem;
      $('off-name').value = name;
    }
    if (!name) return fail('Give the name to certify, or paste a token.');
    const made = await newKey('p256');
    const req = requestFile(await csrOf(made, name, sans), name, token);
    const hash = csrHash(JSON.parse(req).csr);
    pending = { key: made.key, name, sans, rootPem };
    $('hash-value').textContent = grouped(hash);
    $('hash').hidden = false;
    status(`Request for ${name} made. Carry ${name}.req to the CA; keep this page open or save ${name}.key.`);
    offer([[`${name}.req`, new Blob([req], { type: 'application/json' })], [`${name}.key`, pemBlob(made.key.pkcs8Pem())]]);
  } catch (e) {
    fail(`No request was made: ${text(e)}`);
  } finally {
    busy(false);
  }
}

async function copyHash() {
  const hash = $('hash-value').textContent.replace(/\s/g, '');
  try {
    await navigator.clipboard.writeText(hash);
    status('The CSR hash is copied.');
  } catch {
    status('Copying is not allowed here: select the hash and copy it.');
  }
}

async function loadSigned(event) {
  begin(event);
  const file = $('signed').files[0];
  if (!file) return fail('Choose the signed file first.');
  try {
    const text = await file.text();
    const signed = JSON.parse(readSignedFile(text));
    const ours = pending && pending.name === signed.name ? pending : null;
    let key = ours ? ours.key : null;
    const sans = ours ? ours.sans : [];
    const saved = $('saved-key').files[0];
    if (!key && saved) key = Key.fromPkcs8Pem(await saved.text());
    if (!key) return fail(`The key for ${signed.name} is not in this page; choose the saved ${signed.name}.key.`);
    // The file came back by hand: its root is trusted only if it is the
    // token's (kept since the request) or has the fingerprint typed here.
    const fingerprint = $('root-fp').value.trim() || undefined;
    acceptSignedFile(key, text, sans, ours ? ours.rootPem : undefined, fingerprint, Date.now());
    status(`Certified ${signed.name}.`);
    offer(certifiedFiles(signed.name, key.pkcs8Pem(), signed.crt, signed.ca, signed.root));
  } catch (e) {
    fail(`The signed file was not accepted: ${text(e)}`);
  }
}

// A zip with stored (uncompressed) entries: enough for three PEM files.
function zipStore(entries) {
  const crcTable = new Uint32Array(256).map((_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc32 = (d) => { let c = 0xffffffff; for (const b of d) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; };
  const parts = []; const central = []; let offset = 0;
  for (const [name, data] of entries) {
    const n = new TextEncoder().encode(name); const crc = crc32(data);
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true); local.setUint16(4, 20, true); local.setUint32(14, crc, true);
    local.setUint32(18, data.length, true); local.setUint32(22, data.length, true); local.setUint16(26, n.length, true);
    parts.push(new Uint8Array(local.buffer), n, data);
    const cen = new DataView(new ArrayBuffer(46));
    cen.setUint32(0, 0x02014b50, true); cen.setUint16(4, 20, true); cen.setUint16(6, 20, true); cen.setUint32(16, crc, true);
    cen.setUint32(20, data.length, true); cen.setUint32(24, data.length, true); cen.setUint16(28, n.length, true); cen.setUint32(42, offset, true);
    central.push(new Uint8Array(cen.buffer), n);
    offset += 30 + n.length + data.length;
  }
  const size = central.reduce((s, p) => s + p.length, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true); end.setUint16(8, entries.length, true); end.setUint16(10, entries.length, true);
  end.setUint32(12, size, true); end.setUint32(16, offset, true);
  const out = new Uint8Array(offset + size + 22); let at = 0;
  for (const p of [...parts, ...central, new Uint8Array(end.buffer)]) { out.set(p, at); at += p.length; }
  return out;
}

await init();
$('online').addEventListener('submit', certifyOnline);
$('offline').addEventListener('submit', makeRequest);
$('load').addEventListener('submit', loadSigned);
$('copy-hash').addEventListener('click', copyHash);
$('page-status').textContent = 'Ready.';
