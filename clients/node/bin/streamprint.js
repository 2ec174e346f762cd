#!/usr/bin/env node
'use strict';
// streamprint (Node.js): stream a media file to a streamprint server and print the updates.
//
//   node clients/node/bin/streamprint.js stream FILE [--json] [--chunk-ms N | --chunk-bytes N]
//        [--update-interval S] [--client-stream-id ID] [--server HOST:PORT] [--timeout S]
//   node clients/node/bin/streamprint.js info
//
// The server comes from --server, else $STREAMPRINT_SERVER, else 127.0.0.1:50051. With --json
// every update is one JSON line with the Python client's keys (session_id, revision, final,
// values and confidence keyed by dimension name, media_seconds, ...). Errors print the status
// code name and details on stderr (and an {"error": ...} line with --json). Exit codes: 0
// success, 1 an RPC or file error, 2 usage.

const { parseArgs } = require('node:util');
const { StreamprintClient, StreamprintRpcError } = require('../lib/client');

const USAGE = `usage: streamprint.js stream FILE [--json] [--chunk-ms N] [--chunk-bytes N]
                        [--update-interval S] [--client-stream-id ID] [--server HOST:PORT]
                        [--timeout S]
       streamprint.js info [--server HOST:PORT] [--timeout S]
--timeout S: seconds to reach the server (stream) or for the whole call (info); default 20`;

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function usage(message) {
  process.stderr.write(`${message ? `streamprint.js: error: ${message}\n` : ''}${USAGE}\n`);
  return 2;
}

function human(update, file) {
  if (!update.final) {
    const low = Math.min(...Object.values(update.confidence));
    process.stdout.write(
      `revision ${update.revision}: ${update.media_seconds.toFixed(2).padStart(7)} s, lowest confidence ${low.toFixed(2)}\n`,
    );
    return;
  }
  process.stdout.write(
    `${file}: session ${update.session_id}, ${update.algorithm}, ${update.media_seconds.toFixed(2)} s, final (revision ${update.revision})\n`,
  );
  const width = Math.max(...Object.keys(update.values).map((n) => n.length));
  for (const [name, value] of Object.entries(update.values)) {
    process.stdout.write(`  ${name.padEnd(width)}  ${value.toPrecision(6).padStart(14)}  confidence ${update.confidence[name].toFixed(2)}\n`);
  }
}

async function main(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        json: { type: 'boolean', default: false },
        'chunk-ms': { type: 'string', default: '100' },
        'chunk-bytes': { type: 'string', default: '0' },
        'update-interval': { type: 'string', default: '0' },
        'client-stream-id': { type: 'string', default: '' },
        server: { type: 'string' },
        timeout: { type: 'string', default: '20' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    return usage(err.message);
  }
  const { values: opts, positionals } = parsed;
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const [command, ...rest] = positionals;
  const numbers = {};
  for (const key of ['chunk-ms', 'chunk-bytes', 'update-interval', 'timeout']) {
    numbers[key] = Number(opts[key]);
    if (!Number.isFinite(numbers[key]) || numbers[key] < 0) return usage(`--${key} must be a non-negative number`);
  }
  if (command === 'stream') {
    if (rest.length !== 1) return usage('stream takes exactly one FILE');
  } else if (command === 'info') {
    if (rest.length !== 0) return usage('info takes no arguments');
  } else {
    return usage(command ? `unknown command ${command}` : 'a command is required');
  }

  const client = new StreamprintClient(opts.server);
  try {
    if (command === 'info') {
      const info = await client.serverInfo({ timeoutS: numbers.timeout || 20 });
      emit(info);
      return 0;
    }
    const file = rest[0];
    await client.streamFile(file, {
      chunkMs: numbers['chunk-ms'] || 100,
      chunkBytes: numbers['chunk-bytes'],
      updateIntervalS: numbers['update-interval'],
      clientStreamId: opts['client-stream-id'],
      connectTimeoutS: numbers.timeout || 20,
      onUpdate: (update) => (opts.json ? emit({ ...update, path: file }) : human(update, file)),
    });
    return 0;
  } catch (err) {
    if (err instanceof StreamprintRpcError) {
      process.stderr.write(`streamprint.js: error: ${err.describe()}\n`);
      if (opts.json) emit({ error: err.toJSON() });
      return 1;
    }
    if (err && err.code && typeof err.code === 'string' && err.syscall) {
      process.stderr.write(`streamprint.js: error: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    client.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`streamprint.js: error: ${err && err.stack ? err.stack : err}\n`);
    process.exitCode = 1;
  },
);
