#!/usr/bin/env python3
"""Make web/dist/fedpki-certify.html: the certify page as one self-contained
file (CSS, wasm-bindgen glue, app and the wasm as base64 inlined), for use
from a local file on a host that cannot reach the CA (offline mode)."""
import base64
import pathlib
import re
import sys

dist = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "web/dist")
glue = (dist / "fedpki_wasm.js").read_text()
app = (dist / "app.js").read_text()
css = (dist / "style.css").read_text()
html = (dist / "index.html").read_text()
wasm = base64.b64encode((dist / "fedpki_wasm_bg.wasm").read_bytes()).decode()

# The glue is an ES module: keep its declarations, drop its exports.
glue = re.sub(r"^export (async function|function|class|const|let)\b", r"\1", glue, flags=re.M)
# The default export is `export default f;` or `export { …, f as default };`.
glue, n_default = re.subn(r"^export default (\w+);?\s*$", r"const __fedpki_init = \1;", glue, flags=re.M)
if n_default == 0:
    glue, n_default = re.subn(
        r"^export \{[^}]*?(\w+) as default[^}]*\};?\s*$", r"const __fedpki_init = \1;", glue, flags=re.M
    )
glue = re.sub(r"^export \{[^}]*\};?\s*$", "", glue, flags=re.M)
app, n_import = re.subn(r"^import init, \{[^}]*\} from './fedpki_wasm.js';\s*$", "", app, flags=re.M)
wasm_bytes = f'Uint8Array.from(atob("{wasm}"), (c) => c.charCodeAt(0))'
app, n_init = re.subn(r"^await init\(\);", f"await __fedpki_init({{ module_or_path: {wasm_bytes} }});", app, flags=re.M)
if (n_default, n_import, n_init) != (1, 1, 1):
    sys.exit(f"inline-page: unexpected glue or app shape ({n_default}, {n_import}, {n_init})")

# The app in a block of its own, so its names cannot meet the glue's.
script = f'<script type="module">\n{glue}\n{{\n{app}\n}}\n</script>'
html = html.replace('<link rel="stylesheet" href="style.css">', f"<style>\n{css}</style>")
html = html.replace('<script type="module" src="app.js"></script>', script)
if "app.js" in html or "style.css" in html:
    sys.exit("inline-page: index.html did not have the expected <link>/<script>")
(dist / "fedpki-certify.html").write_text(html)
print(f"inline page: {dist / 'fedpki-certify.html'} ({len(html)} bytes)")
