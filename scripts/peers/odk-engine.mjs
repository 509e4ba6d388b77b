// odk-engine loads ODK's form engine (@getodk/xforms-engine) in Node, under
// jsdom, for the peer scripts beside it: `import { loadForm } from
// './odk-engine.mjs'`.
import { JSDOM } from 'jsdom';
import { createRequire } from 'node:module';
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

export const { loadForm } = await import('@getodk/xforms-engine');
