// The PouchDB side of scripts/bench/compare.
//   node pouch.js server PORT DIR           express-pouchdb on 127.0.0.1:PORT, LevelDB files in DIR
//   node pouch.js load DIR DATA.jsonl       write the records into a local PouchDB (not timed)
//   node pouch.js push DIR REMOTE           replicate the local db to REMOTE; prints {"ms":..,"docs":..}
//   node pouch.js pull DIR REMOTE           replicate REMOTE into a fresh local db
//   node pouch.js noop DIR REMOTE           sync both ways when nothing changed
//   node pouch.js edit DIR REMOTE N         edit N records locally, then push them
'use strict';
const fs = require('fs');
const path = require('path');
const PouchDB = require('pouchdb');

const [cmd, ...args] = process.argv.slice(2);

function done(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function local(dir) {
  fs.mkdirSync(dir, { recursive: true });
  return new PouchDB(path.join(dir, 'local'));
}

async function main() {
  switch (cmd) {
    case 'server': {
      const [port, dir] = args;
      fs.mkdirSync(dir, { recursive: true });
      const express = require('express');
      const Prefixed = PouchDB.defaults({ prefix: path.resolve(dir) + path.sep });
      const app = express();
      app.use('/', require('express-pouchdb')(Prefixed, { logPath: path.join(dir, 'log.txt'), mode: 'minimumForPouchDB' }));
      app.listen(Number(port), '127.0.0.1', () => done({ listening: Number(port) }));
      return;
    }
    case 'load': {
      const [dir, data] = args;
      const db = local(dir);
      const lines = fs.readFileSync(data, 'utf8').split('\n').filter(Boolean);
      for (let i = 0; i < lines.length; i += 1000) {
        await db.bulkDocs(lines.slice(i, i + 1000).map((l) => JSON.parse(l)));
      }
      done({ docs: lines.length });
      return;
    }
    case 'push':
    case 'pull':
    case 'noop': {
      const [dir, remote] = args;
      const db = local(dir);
      const t0 = process.hrtime.bigint();
      let res;
      if (cmd === 'push') res = await db.replicate.to(remote, { batch_size: 1000, batches_limit: 4 });
      else if (cmd === 'pull') res = await PouchDB.replicate(remote, db, { batch_size: 1000, batches_limit: 4 });
      else res = await db.sync(remote, { batch_size: 1000 });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const docs = res.docs_written !== undefined ? res.docs_written : (res.push.docs_written + res.pull.docs_written);
      done({ ms, docs });
      return;
    }
    case 'edit': {
      const [dir, remote, n] = args;
      const db = local(dir);
      const all = await db.allDocs({ include_docs: true, limit: Number(n) });
      await db.bulkDocs(all.rows.map((r) => Object.assign(r.doc, { n0: (r.doc.n0 || 0) + 1, s0: 'revisited' })));
      const t0 = process.hrtime.bigint();
      const res = await db.replicate.to(remote, { batch_size: 1000 });
      done({ ms: Number(process.hrtime.bigint() - t0) / 1e6, docs: res.docs_written });
      return;
    }
  }
  throw new Error('unknown command ' + cmd);
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(1);
});
