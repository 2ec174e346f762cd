'use strict';
// A small streamprint.v1 client for Node.js: @grpc/grpc-js with the service definitions
// loaded from the repository's protos/ at run time by @grpc/proto-loader (no generated code).
//
//   const { StreamprintClient } = require('./lib/client');
//   const client = new StreamprintClient('127.0.0.1:50051');
//   await client.streamFile('clip.wav', { onUpdate: (u) => console.log(u) });
//
// Updates are plain objects with the same keys as the Python client's JSON lines:
// session_id, [client_stream_id], algorithm, values, confidence (both keyed by snake_case
// dimension names), revision, media_seconds, final, model, model_version.

const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const DEFAULT_SERVER = '127.0.0.1:50051';
const SERVER_ENV = 'STREAMPRINT_SERVER';
/** protos/ of the repository (override with STREAMPRINT_PROTO_DIR). */
const PROTO_DIR = process.env.STREAMPRINT_PROTO_DIR || path.resolve(__dirname, '..', '..', '..', 'protos');
const RPC_PROTO = path.resolve(__dirname, '..', 'proto', 'google', 'rpc', 'status.proto');
const DETAILS_KEY = 'grpc-status-details-bin';
/** Byte rate assumed when the headers say nothing (128 kbit/s), as the Python client. */
const FALLBACK_BYTE_RATE = 16000;
const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

const LOADER_OPTIONS = {
  keepCase: true, // snake_case field names, as in the .proto files
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

let cachedPackage = null;

/** The loaded `streamprint.v1` package (service constructors and message types). */
function loadApi() {
  if (cachedPackage === null) {
    const definition = protoLoader.loadSync(
      ['streamprint/v1/fingerprint_service.proto', 'streamprint/v1/admin_service.proto'],
      LOADER_OPTIONS,
    );
    cachedPackage = grpc.loadPackageDefinition(definition).streamprint.v1;
  }
  return cachedPackage;
}

const STATUS_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([name, code]) => [code, name]));

let rpcRoot = null;

/** Decode the google.rpc.Status trailer of an error into [{type, ...fields}] (best effort). */
function decodeDetails(metadata) {
  const raw = metadata && typeof metadata.get === 'function' ? metadata.get(DETAILS_KEY) : [];
  if (!raw || raw.length === 0) return [];
  try {
    if (rpcRoot === null) rpcRoot = protobuf.loadSync(RPC_PROTO);
    const Status = rpcRoot.lookupType('google.rpc.Status');
    const status = Status.decode(Buffer.from(raw[0]));
    return status.details.map((any) => {
      const type = any.type_url.split('/').pop();
      let content = {};
      try {
        const T = rpcRoot.lookupType(type);
        content = T.toObject(T.decode(any.value), { longs: Number, defaults: false });
      } catch (_) {
        content = { value: Buffer.from(any.value).toString('base64') };
      }
      return { type, ...snakeKeys(content) };
    });
  } catch (_) {
    return [];
  }
}

function snakeKeys(value) {
  if (Array.isArray(value)) return value.map(snakeKeys);
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), snakeKeys(v)]),
    );
  }
  return value;
}

/** An RPC failure: `code` is the status code name (e.g. "INVALID_ARGUMENT"). */
class StreamprintRpcError extends Error {
  constructor(err) {
    super(err.details || err.message);
    this.name = 'StreamprintRpcError';
    this.code = STATUS_NAMES[err.code] || 'UNKNOWN';
    this.details = decodeDetails(err.metadata);
  }

  toJSON() {
    return { code: this.code, message: this.message, details: this.details };
  }

  /** Code, message, then one line per detail, as the Python client's describe(). */
  describe() {
    const lines = [`${this.code}: ${this.message}`];
    for (const { type, ...d } of this.details) {
      if (type === 'google.rpc.BadRequest') {
        for (const v of d.field_violations || []) lines.push(`  field ${v.field}: ${v.description}`);
      } else if (type === 'google.rpc.RetryInfo' && d.retry_delay) {
        const s = (d.retry_delay.seconds || 0) + (d.retry_delay.nanos || 0) / 1e9;
        lines.push(`  retry after ${s} s`);
      } else if (type === 'google.rpc.ErrorInfo') {
        const meta = Object.keys(d.metadata || {}).sort().map((k) => `, ${k}=${d.metadata[k]}`);
        lines.push(`  reason ${d.reason || ''} (${d.domain || ''}${meta.join('')})`);
      } else if (type === 'google.rpc.ResourceInfo') {
        lines.push(`  resource ${d.resource_type || ''} ${d.resource_name || ''}`);
      } else if (type === 'google.rpc.QuotaFailure') {
        for (const v of d.violations || []) lines.push(`  quota ${v.subject || ''}: ${v.description || ''}`);
      } else {
        lines.push(`  ${type}: ${JSON.stringify(d)}`);
      }
    }
    return lines.join('\n');
  }
}

function round6(x) {
  return Math.round(x * 1e6) / 1e6;
}

/** A StreamFingerprintResponse as the Python client's JSON dict. */
function updateToJson(response) {
  const fp = response.fingerprint || {};
  const out = { session_id: response.session_id };
  if (response.client_stream_id) out.client_stream_id = response.client_stream_id;
  const values = {};
  const confidence = {};
  for (const d of fp.dimensions || []) {
    values[d.name] = d.value;
    confidence[d.name] = d.confidence;
  }
  return Object.assign(out, {
    algorithm: fp.algorithm,
    values,
    confidence,
    revision: Number(fp.revision),
    media_seconds: round6(fp.media_seconds || 0),
    final: Boolean(fp.final),
    model: fp.model,
    model_version: fp.model_version,
  });
}

/** Average byte rate of a WAV file from its header (else the fallback), as the Python client. */
function byteRate(data) {
  if (data.length >= 12 && data.toString('latin1', 0, 4) === 'RIFF' && data.toString('latin1', 8, 12) === 'WAVE') {
    let pos = 12;
    while (pos + 8 <= data.length) {
      const id = data.toString('latin1', pos, pos + 4);
      const size = data.readUInt32LE(pos + 4);
      if (id === 'fmt ' && pos + 16 + 4 <= data.length) return data.readUInt32LE(pos + 16) || FALLBACK_BYTE_RATE;
      pos += 8 + size + (size & 1);
    }
  }
  return FALLBACK_BYTE_RATE;
}

/** Cut `data` into chunks of about `chunkMs` of media (or exactly `chunkBytes` bytes). */
function cutChunks(data, { chunkMs = 100, chunkBytes = 0 } = {}) {
  const size = chunkBytes > 0 ? chunkBytes : Math.max(1, Math.round((byteRate(data) * chunkMs) / 1000));
  const chunks = [];
  for (let i = 0; i < data.length; i += size) chunks.push(data.subarray(i, i + size));
  return chunks;
}

class StreamprintClient {
  /** @param {string} [target] host:port (default $STREAMPRINT_SERVER or 127.0.0.1:50051) */
  constructor(target) {
    this.target = target || process.env[SERVER_ENV] || DEFAULT_SERVER;
    const api = loadApi();
    const options = {
      'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    };
    this.fingerprints = new api.FingerprintService(this.target, grpc.credentials.createInsecure(), options);
  }

  close() {
    this.fingerprints.close();
  }

  /**
   * Stream `chunks` (Buffers of encoded media) and call `onUpdate(json)` for every update.
   * Resolves with the list of updates; rejects with a StreamprintRpcError.
   */
  async stream(
    chunks,
    { onUpdate = () => {}, updateIntervalS = 0, clientStreamId = '', dimensions = [], connectTimeoutS = 20 } = {},
  ) {
    // grpc-js has no connect timeout of its own: a server that accepts TCP but never answers
    // would hold the stream forever. A stream's length has no bound, so the wait is for the
    // connection only.
    await this.waitForReady(connectTimeoutS);
    return new Promise((resolve, reject) => {
      const updates = [];
      let failed = false;
      const call = this.fingerprints.StreamFingerprint();
      call.on('data', (response) => {
        const update = updateToJson(response);
        updates.push(update);
        try {
          onUpdate(update);
        } catch (err) {
          failed = true;
          call.cancel();
          reject(err);
        }
      });
      call.on('error', (err) => {
        if (!failed) {
          failed = true;
          reject(new StreamprintRpcError(err));
        }
      });
      call.on('end', () => {
        if (!failed) resolve(updates);
      });
      const write = async () => {
        const send = (message) =>
          new Promise((ok) => {
            if (call.write(message)) ok();
            else call.once('drain', ok);
          });
        await send({
          config: {
            modality: 'MODALITY_AUDIO',
            update_interval_seconds: updateIntervalS,
            dimensions,
            client_stream_id: clientStreamId,
          },
        });
        let seq = 0;
        for (const data of chunks) {
          if (failed) return;
          await send({ chunk: { data, seq: seq++ } });
        }
        call.end();
      };
      write().catch((err) => {
        if (!failed) {
          failed = true;
          call.cancel();
          reject(err);
        }
      });
    });
  }

  /** Stream a media file's bytes (the server decodes them). */
  streamFile(file, options = {}) {
    const data = fs.readFileSync(file);
    return this.stream(cutChunks(data, options), options);
  }

  /** Resolves once the channel is connected; rejects UNAVAILABLE after `timeoutS` seconds. */
  waitForReady(timeoutS = 20) {
    return new Promise((resolve, reject) => {
      this.fingerprints.waitForReady(Date.now() + timeoutS * 1000, (err) => {
        if (!err) resolve();
        else reject(new StreamprintRpcError({ code: grpc.status.UNAVAILABLE, details: `cannot reach ${this.target} within ${timeoutS} s (${err.message})` }));
      });
    });
  }

  /** GetServerInfo as a plain object (DEADLINE_EXCEEDED after `timeoutS` seconds). */
  serverInfo({ timeoutS = 30 } = {}) {
    return new Promise((resolve, reject) => {
      this.fingerprints.GetServerInfo({}, { deadline: Date.now() + timeoutS * 1000 }, (err, response) => {
        if (err) reject(new StreamprintRpcError(err));
        else resolve(response);
      });
    });
  }
}

module.exports = {
  DEFAULT_SERVER,
  PROTO_DIR,
  SERVER_ENV,
  StreamprintClient,
  StreamprintRpcError,
  cutChunks,
  loadApi,
  updateToJson,
};
