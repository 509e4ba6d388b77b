// odk-load loads XForms into ODK Web Forms' engine (@getodk/xforms-engine,
// the engine of ODK Central's web forms) under jsdom, and creates an
// instance of each: the check a real client makes of a server's forms.
// Usage: node odk-load.mjs FILE.xml... ; prints one JSON line per file
// ({"file", "ok", "error"}) and a last line {"ok": N, "fail": M}.
import { loadForm } from './odk-engine.mjs';
import fs from 'node:fs';


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
