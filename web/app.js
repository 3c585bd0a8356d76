// The certify page. All key material is made and kept here; only the CSR
// and the token are ever sent (to this page's own origin).
import init, { Key, parseToken, verifyAnswer, requestFile, readSignedFile, acceptSignedFile, csrHash } from './fedpki_wasm.js';

const $ = (id) => document.getElementById(id);
const status = (text) => { $('status').textContent = text; };
const busy = (on) => document.querySelectorAll('button').forEach((b) => { b.disabled = on; });
let pending = null; // offline: { key, name, sans, rootPem } between request and signed file

function fail(message) {
  status('');
  $('error').textContent = message;
  $('error').hidden = false;
}

function clearMessages() {
  $('error').hidden = true;
  $('error').textContent = '';
  $('results').hidden = true;
  $('downloads').replaceChildren();
}

// Errors from the wasm module arrive as Error objects with the core's text.
const text = (e) => (e && e.message) || String(e);

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
  $('results').hidden = false;
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

async function certifyOnline(event) {
  event.preventDefault();
  clearMessages();
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
    const key = Key.generate($('key-type').value);
    const csr = key.csrPem(info.name, info.sans);
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
      verifyAnswer(key, info.name, info.sans, body.crt, body.ca, info.rootPem, Date.now());
    } catch (e) {
      return fail(`The CA's answer failed the checks, nothing is offered: ${text(e)}`);
    }
    offer(certifiedFiles(info.name, key.pkcs8Pem(), body.crt, body.ca, info.rootPem));
    status(`Certified ${info.name}. Save the files below; the key exists nowhere else.`);
  } finally {
    busy(false);
  }
}

function makeRequest(event) {
  event.preventDefault();
  clearMessages();
  const token = $('off-token').value.trim() || undefined;
  let name = $('off-name').value.trim();
  let sans = [];
  let rootPem; // the token's root: the signed file must chain to it
  try {
    if (token) {
      const info = JSON.parse(parseToken(token));
      name = info.name;
      sans = info.sans;
      rootPem = info.rootPem;
      $('off-name').value = name;
    }
    if (!name) return fail('Give the name to certify, or paste a token.');
    const key = Key.generate('p256');
    const req = requestFile(key, name, token);
    const hash = csrHash(JSON.parse(req).csr);
    pending = { key, name, sans, rootPem };
    offer([[`${name}.req`, new Blob([req], { type: 'application/json' })], [`${name}.key`, pemBlob(key.pkcs8Pem())]]);
    status(`Request for ${name} made. Carry ${name}.req to the CA; keep this page open or save ${name}.key. CSR hash: ${hash}`);
  } catch (e) {
    fail(`No request was made: ${text(e)}`);
  }
}

async function loadSigned(event) {
  event.preventDefault();
  clearMessages();
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
    offer(certifiedFiles(signed.name, key.pkcs8Pem(), signed.crt, signed.ca, signed.root));
    status(`Certified ${signed.name}.`);
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
status('Ready.');
