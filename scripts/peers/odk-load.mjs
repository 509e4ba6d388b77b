// odk-load loads XForms into ODK Web Forms' engine (@getodk/xforms-engine,
// the engine of ODK Central's web forms) under jsdom, and creates an
// instance of each: the check a real client makes of a server's forms.
// Usage: node odk-load.mjs FILE.xml... ; prints one JSON line per file
// ({"file", "ok", "error"}) and a last line {"ok": N, "fail": M}.
import { JSDOM } from 'jsdom';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import url from 'node:url';

const here = path.dirname(url.fileURLToPath(import.meta.url));
const dist = path.join(here, 'node_modules/@getodk/xforms-engine/dist');
// The engine's tree-sitter loader looks for these in Node.
globalThis.__dirname = dist;
globalThis.__filename = path.join(dist, 'index.js');
globalThis.require = createRequire(path.join(dist, 'index.js'));
const dom = new JSDOM('<!doctype html><html><body></body></html>');
for (const k of ['window', 'document', 'DOMParser', 'XMLSerializer', 'Node', 'Element', 'Document', 'XPathResult',
  'XMLDocument', 'Attr', 'Text', 'NodeFilter', 'XPathEvaluator']) {
  if (dom.window[k] !== undefined && globalThis[k] === undefined) globalThis[k] = dom.window[k];
}
const { loadForm } = await import('@getodk/xforms-engine');

// Attachments are not at hand: an empty file of the kind the form names.
const attachment = async (u) => {
  const s = String(u);
  if (s.endsWith('.csv')) return new Response('name,label\n', { headers: { 'content-type': 'text/csv' } });
  if (s.endsWith('.geojson')) return new Response('{"type":"FeatureCollection","features":[]}', { headers: { 'content-type': 'application/geo+json' } });
  if (s.endsWith('.xml')) return new Response('<root/>', { headers: { 'content-type': 'text/xml' } });
  return new Response('', { status: 404 });
};

let ok = 0, fail = 0;
for (const file of process.argv.slice(2)) {
  let error = null;
  try {
    const r = await loadForm(fs.readFileSync(file, 'utf8'), { fetchFormAttachment: attachment });
    if (r.status === 'failure') {
      error = String(r.error?.message ?? r.error);
    } else {
      r.createInstance();
    }
  } catch (e) {
    error = String(e?.message ?? e);
  }
  if (error === null) ok++; else fail++;
  console.log(JSON.stringify({ file, ok: error === null, error: error && error.slice(0, 300) }));
}
console.log(JSON.stringify({ ok, fail }));
