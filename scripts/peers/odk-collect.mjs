// odk-collect is a collecting client built on ODK's own form engine
// (@getodk/xforms-engine, under jsdom): it does what ODK Collect does with a
// server. Usage:
//   node odk-collect.mjs BASE_URL FORM_ID ANSWERS.json
// BASE_URL is the device's OpenRosa URL ({server}/key/{token}). It reads the
// formList, downloads the form (checking its md5 against the list), loads it
// into the engine, adds repeat instances and sets answers from ANSWERS.json
// ({"repeats": {"/data/kids": 2}, "answers": {"/data/head": "Amina",
// "/data/needs": ["food", "water"], "/data/kids[1]/kid": "Ali"}}), serializes
// the instance, sends HEAD /submission then POSTs it as multipart, the first
// time split in two (*isIncomplete*), and prints one JSON line: the
// instanceID, the submission XML and the server's statuses. With "edit" in
// ANSWERS.json (a submission's XML) it edits that instance instead, as
// Collect edits a sent form (the engine writes meta/deprecatedID). "files"
// attaches files to upload questions ({"/data/photo": {"name": "door.jpg",
// "type": "image/jpeg", "base64": "..."}}); they go in the POST beside the
// instance, as Collect sends them.
import { loadForm } from './odk-engine.mjs';
import crypto from 'node:crypto';
import fs from 'node:fs';


const [base, formID, answersFile] = process.argv.slice(2);
const spec = JSON.parse(fs.readFileSync(answersFile, 'utf8'));
const H = { 'X-OpenRosa-Version': '1.0' };
const fail = (msg) => { console.log(JSON.stringify({ error: msg })); process.exit(1); };

const listRes = await fetch(`${base}/formList?formID=${encodeURIComponent(formID)}&deviceID=collect:node`, { headers: H });
if (listRes.headers.get('x-openrosa-version') !== '1.0') fail('formList: not an OpenRosa server');
const list = await listRes.text();
const downloadUrl = /<downloadUrl>([^<]+)<\/downloadUrl>/.exec(list)?.[1];
const hash = /<hash>md5:([0-9a-f]+)<\/hash>/.exec(list)?.[1];
if (!downloadUrl || !hash) fail('formList without downloadUrl or hash: ' + list);
const xform = await (await fetch(downloadUrl, { headers: H })).text();
if (crypto.createHash('md5').update(xform).digest('hex') !== hash) fail('the XForm does not match its listed md5');

const form = await loadForm(xform, { fetchFormAttachment: async () => new Response('', { status: 404 }) });
if (form.status === 'failure') fail('ODK engine: ' + form.error?.message);
const instance = spec.edit
  ? await form.editInstance({ inputType: 'FORM_INSTANCE_INPUT_RESOLVABLE', resolveInstance: () => spec.edit, attachments: new Map() })
  : form.createInstance();
const root = instance.root;

const find = (node, ref) => {
  if (node.currentState.reference === ref) return node;
  for (const c of node.currentState.children ?? []) {
    const f = find(c, ref);
    if (f) return f;
  }
  return null;
};
for (const [ref, n] of Object.entries(spec.repeats ?? {})) {
  const range = find(root, ref);
  if (!range) fail('no repeat ' + ref);
  range.addInstances(undefined, n);
}
for (const [ref, value] of Object.entries(spec.answers ?? {})) {
  const node = find(root, ref);
  if (!node) fail('no question ' + ref);
  if (Array.isArray(value)) node.selectValues(value);
  else if (node.nodeType === 'select') node.selectValue(value);
  else node.setValue(value);
}
for (const [ref, f] of Object.entries(spec.files ?? {})) {
  const node = find(root, ref);
  if (!node || node.nodeType !== 'upload') fail('no upload question ' + ref);
  node.setValue(new File([Buffer.from(f.base64, 'base64')], f.name, { type: f.type }));
}
const payload = await root.prepareInstancePayload();
const data = payload.data[0];
const xml = await data.get('xml_submission_file').text();
const instanceID = /<instanceID>([^<]+)<\/instanceID>/.exec(xml)?.[1];
const deprecatedID = /<deprecatedID>([^<]+)<\/deprecatedID>/.exec(xml)?.[1] ?? null;

const head = await fetch(`${base}/submission?deviceID=collect:node`, { method: 'HEAD', headers: H });
const statuses = [head.status];
const post = async (incomplete) => {
  const body = new FormData();
  body.append('xml_submission_file', new Blob([xml], { type: 'text/xml' }), 'submission.xml');
  // The engine's attachments; Collect sends them in the last part when it
  // splits (the first part: the instance alone).
  if (!incomplete) {
    for (const [name, value] of data.entries()) {
      if (name !== 'xml_submission_file') body.append(name, value, value.name ?? name);
    }
  }
  if (incomplete) body.append('*isIncomplete*', 'yes');
  const r = await fetch(`${base}/submission?deviceID=collect:node`, { method: 'POST', body, headers: H });
  statuses.push(r.status);
  return r.text();
};
await post(true); // Collect splits a large submission: the same XML in each part
const last = await post(false);
const attachments = [...data.keys()].filter((k) => k !== 'xml_submission_file');
console.log(JSON.stringify({ instanceID, deprecatedID, xml, statuses, attachments, response: last, violations: payload.violations?.length ?? 0 }));
