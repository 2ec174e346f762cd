'use strict';
// node --test clients/node/test/ : the Node client against a real streamprint server.
//
// Uses $STREAMPRINT_SERVER when set (the pytest wrapper starts a server); otherwise starts
// `python -m streamprint serve --port 0` itself (python from $STREAMPRINT_PYTHON, else the
// repository's .venv) and reads the bound port from its "serving on HOST:PORT" log line.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { StreamprintClient, cutChunks } = require('../lib/client');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.resolve(__dirname, '..', 'bin', 'streamprint.js');

let server = null;
let address = process.env.STREAMPRINT_SERVER || '';
let tmp = '';

/** A 16-bit PCM WAV: a chord plus a click on every beat at 120 BPM. */
function wav(seconds, rate = 22050, channels = 2) {
  const n = Math.floor(seconds * rate);
  const data = Buffer.alloc(n * channels * 2);
  let seed = 12345;
  const noise = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff - 0.5;
  };
  for (let i = 0; i < n; i++) {
    const t = i / rate;
    let x = 0.15 * (Math.sin(2 * Math.PI * 220 * t) + Math.sin(2 * Math.PI * 277.2 * t) + Math.sin(2 * Math.PI * 329.6 * t));
    const sinceBeat = t % 0.5;
    if (sinceBeat < 0.05) x += 0.6 * Math.exp(-sinceBeat / 0.01) * noise();
    x += 0.01 * noise();
    for (let c = 0; c < channels; c++) {
      const v = Math.max(-1, Math.min(1, c === 0 ? x : 0.8 * x));
      data.writeInt16LE(Math.round(v * 32767), (i * channels + c) * 2);
    }
  }
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVEfmt ', 8, 'latin1');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(channels, 22);
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * channels * 2, 28);
  header.writeUInt16LE(channels * 2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'latin1');
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}

function startServer() {
  const python = process.env.STREAMPRINT_PYTHON || path.join(ROOT, '.venv', 'bin', 'python');
  return new Promise((resolve, reject) => {
    const child = spawn(python, ['-m', 'streamprint', 'serve', '--port', '0', '--engine-threads', '1'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, STREAMPRINT_LOG_FORMAT: 'text' },
    });
    let log = '';
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), 60000);
    child.stderr.on('data', (chunk) => {
      log += chunk;
      const m = /serving on (\S+)/.exec(log);
      if (m && !address) {
        clearTimeout(timer);
        address = m[1];
        resolve(child);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (!address) reject(new Error(`server exited with ${code}:\n${log}`));
    });
  });
}

function runCli(args) {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, STREAMPRINT_SERVER: address } }, (err, stdout, stderr) =>
      resolve({ code: err ? err.code : 0, stdout, stderr }),
    );
  });
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'streamprint-node-'));
  fs.writeFileSync(path.join(tmp, 'clip.wav'), wav(4.0));
  fs.writeFileSync(path.join(tmp, 'garbage.bin'), Buffer.from('this is not audio at all '.repeat(400)));
  if (!address) server = await startServer();
});

after(async () => {
  if (server) {
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('stream --json prints one update per line, revisions increasing, final last', async () => {
  const { code, stdout, stderr } = await runCli(['stream', path.join(tmp, 'clip.wav'), '--json']);
  assert.equal(code, 0, stderr);
  const lines = stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(lines.length >= 3);
  const revisions = lines.map((l) => l.revision);
  revisions.forEach((r, i) => i && assert.ok(r > revisions[i - 1]));
  assert.deepEqual(
    lines.map((l) => l.final),
    [...Array(lines.length - 1).fill(false), true],
  );
  const last = lines.at(-1);
  for (const key of ['session_id', 'revision', 'final', 'values', 'confidence', 'media_seconds', 'algorithm', 'path']) {
    assert.ok(key in last, key);
  }
  assert.equal(Object.keys(last.values).length, 13);
  assert.deepEqual(Object.keys(last.values), Object.keys(last.confidence));
  assert.ok('spectral_centroid' in last.values && 'tempo_bpm' in last.values);
  assert.ok(Math.abs(last.media_seconds - 4.0) < 0.01);
  assert.ok(new Set(lines.map((l) => l.session_id)).size === 1);
});

test('library: chunking does not change the final fingerprint', async () => {
  const client = new StreamprintClient(address);
  try {
    const data = fs.readFileSync(path.join(tmp, 'clip.wav'));
    const a = await client.stream(cutChunks(data, { chunkBytes: 4096 }), { clientStreamId: 'node-a' });
    const b = await client.stream(cutChunks(data, { chunkMs: 1000 }));
    assert.equal(a.at(-1).client_stream_id, 'node-a');
    assert.deepEqual(a.at(-1).values, b.at(-1).values);
  } finally {
    client.close();
  }
});

test('undecodable media: INVALID_ARGUMENT with field details, exit 1', async () => {
  const { code, stdout, stderr } = await runCli(['stream', path.join(tmp, 'garbage.bin'), '--json']);
  assert.equal(code, 1);
  assert.match(stderr, /INVALID_ARGUMENT/);
  const { error } = JSON.parse(stdout.trim().split('\n').at(-1));
  assert.equal(error.code, 'INVALID_ARGUMENT');
  const bad = error.details.find((d) => d.type === 'google.rpc.BadRequest');
  assert.equal(bad.field_violations[0].field, 'chunk.data');
});

test('usage errors exit 2', async () => {
  assert.equal((await runCli([])).code, 2);
  assert.equal((await runCli(['stream'])).code, 2);
  assert.equal((await runCli(['frobnicate', 'x'])).code, 2);
});

test('a missing file exits 1', async () => {
  const { code, stderr } = await runCli(['stream', path.join(tmp, 'nope.wav')]);
  assert.equal(code, 1);
  assert.match(stderr, /ENOENT|no such file/i);
});

test('info returns the server description', async () => {
  const { code, stdout, stderr } = await runCli(['info']);
  assert.equal(code, 0, stderr);
  const info = JSON.parse(stdout);
  assert.equal(info.api_version, 'streamprint.v1');
});

test('describe() prints every rich detail as the Python client does', () => {
  const { StreamprintRpcError } = require('../lib/client');
  const error = Object.create(StreamprintRpcError.prototype);
  Object.assign(error, {
    code: 'RESOURCE_EXHAUSTED',
    message: 'refused',
    details: [
      { type: 'google.rpc.ErrorInfo', reason: 'R', domain: 'd', metadata: { b: '2', a: '1' } },
      { type: 'google.rpc.RetryInfo', retry_delay: { seconds: 1, nanos: 500000000 } },
      { type: 'google.rpc.BadRequest', field_violations: [{ field: 'chunk.seq', description: 'gap' }] },
      { type: 'google.rpc.ResourceInfo', resource_type: 'session', resource_name: 's-1' },
      { type: 'google.rpc.QuotaFailure', violations: [{ subject: 'server', description: 'over' }] },
      { type: 'example.v1.Unknown', value: 'AAE=' },
    ],
  });
  assert.deepEqual(error.describe().split('\n'), [
    'RESOURCE_EXHAUSTED: refused',
    '  reason R (d, a=1, b=2)',
    '  retry after 1.5 s',
    '  field chunk.seq: gap',
    '  resource session s-1',
    '  quota server: over',
    '  example.v1.Unknown: {"value":"AAE="}',
  ]);
});
