'use strict';

// The fixture app's real request handler (src/routes.js, the release in argv[2]) on its in-memory test
// database (test/fake-db.js), with one user: enough to exercise the API paths that need no MongoDB, such
// as the reply webhook. Env: PORT, SYNTH_USER, SYNTH_PASSWORD, REPLY_WEBHOOK_URL (empty: no webhook).
// Prints "listening <port>" once it serves.

const http = require('http');
const path = require('path');

const app = path.resolve(process.argv[2]);
const { createRequestHandler } = require(path.join(app, 'src/routes'));
const { FakeDb } = require(path.join(app, 'test/fake-db'));
const auth = require(path.join(app, 'src/auth'));
const { ObjectId } = require(require.resolve('mongodb', { paths: [app] }));

async function main() {
  const db = new FakeDb({ scans: { users: ['username'] } });
  const username = process.env.SYNTH_USER || 'synthetic-monitor';
  await db.collection('users').insertOne({
    _id: new ObjectId(), username, display_name: username,
    password: auth.hashPasswordSync(process.env.SYNTH_PASSWORD || 'pw', '22'.repeat(16)),
  });
  const config = { replyWebhookUrl: process.env.REPLY_WEBHOOK_URL || null };
  const ctx = { config, database: { db: async () => db }, metrics: { observe() {} } };
  const server = http.createServer(createRequestHandler(ctx));
  server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
    process.stdout.write(`listening ${server.address().port}\n`);
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

main().catch((err) => { process.stderr.write(`${err.stack}\n`); process.exit(1); });
