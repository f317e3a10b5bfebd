#!/usr/bin/env node
// The Kinesis steps of docker-compose.yml, with nothing but Node.js (the kinesalite image has
// no curl and no AWS CLI):
//
//   node kinesis_stream.js ready
//       The server answers ListStreams: exit 0, else 1 (the kinesis service's healthcheck).
//   node kinesis_stream.js ensure STREAM SHARDS
//       DescribeStreamSummary; CreateStream with SHARDS shards only when the stream does not
//       exist; then wait until it is ACTIVE. Exit 0 with one line saying what was found or
//       done, or 1 with the error (the create-stream service). Running it again is harmless:
//       an existing stream is kept as it is, with its records.
//
// Options: --endpoint-url URL (default $KINESIS_ENDPOINT_URL, else http://127.0.0.1:4567),
// --timeout SECONDS (ensure: how long to wait for the server and for ACTIVE; default 60).
// Requests are signed with Signature Version 4 from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
// and AWS_REGION (a local server takes any key; the defaults are "local", "local-secret" and
// us-east-1).
'use strict';

const crypto = require('node:crypto');

const API = 'Kinesis_20131202';

function usage(message) {
  if (message) process.stderr.write(`kinesis_stream: ${message}\n`);
  process.stderr.write('usage: kinesis_stream.js [--endpoint-url URL] [--timeout SECONDS] ready\n'
    + '       kinesis_stream.js [--endpoint-url URL] [--timeout SECONDS] ensure STREAM SHARDS\n');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {
    endpoint: process.env.KINESIS_ENDPOINT_URL || 'http://127.0.0.1:4567',
    timeout: 60,
    words: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--endpoint-url' && i + 1 < argv.length) opts.endpoint = argv[++i];
    else if (a === '--timeout' && i + 1 < argv.length) opts.timeout = Number(argv[++i]);
    else if (a.startsWith('--')) usage(`unknown option ${a}`);
    else opts.words.push(a);
  }
  if (!(opts.timeout > 0)) usage('--timeout must be a positive number of seconds');
  return opts;
}

const hex = (data) => crypto.createHash('sha256').update(data).digest('hex');
const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest();

// Signature Version 4 headers for a POST of `body` to `url` with the given X-Amz-Target.
function signedHeaders(url, target, body, now = new Date()) {
  const key = process.env.AWS_ACCESS_KEY_ID || 'local';
  const secret = process.env.AWS_SECRET_ACCESS_KEY || 'local-secret';
  const region = process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1';
  const amzDate = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const headers = {
    'content-type': 'application/x-amz-json-1.1',
    host: url.host,
    'x-amz-date': amzDate,
    'x-amz-target': `${API}.${target}`,
  };
  const names = Object.keys(headers).sort();
  const canonical = ['POST', url.pathname || '/', '',
    ...names.map((n) => `${n}:${headers[n]}`), '', names.join(';'), hex(body)].join('\n');
  const scope = `${day}/${region}/kinesis/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, hex(canonical)].join('\n');
  let k = hmac(`AWS4${secret}`, day);
  for (const part of [region, 'kinesis', 'aws4_request']) k = hmac(k, part);
  const signature = crypto.createHmac('sha256', k).update(toSign).digest('hex');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${key}/${scope}, `
    + `SignedHeaders=${names.join(';')}, Signature=${signature}`;
  delete headers.host; // fetch sets it, to the same value
  return headers;
}

class KinesisError extends Error {
  constructor(type, message, status) {
    super(`${type}: ${message}`);
    this.type = type;
    this.status = status;
  }
}

// One API call; resolves to the parsed answer, rejects with a KinesisError (the service said
// no) or another Error (no answer: refused, reset, timed out).
async function call(endpoint, target, payload) {
  const url = new URL(endpoint);
  const body = JSON.stringify(payload);
  const res = await fetch(url, {
    method: 'POST',
    headers: signedHeaders(url, target, body),
    body,
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  let doc = {};
  try { doc = text ? JSON.parse(text) : {}; } catch { doc = { message: text }; }
  if (!res.ok) {
    const type = String(doc.__type || `HTTP ${res.status}`).split('#').pop();
    throw new KinesisError(type, doc.message || doc.Message || text, res.status);
  }
  return doc;
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

async function ready(opts) {
  await call(opts.endpoint, 'ListStreams', {});
  return `kinesis at ${opts.endpoint} answers`;
}

async function ensure(opts, stream, shards) {
  const deadline = Date.now() + opts.timeout * 1000;
  let created = false;
  let lastError = null;
  for (;;) {
    try {
      let summary;
      try {
        summary = (await call(opts.endpoint, 'DescribeStreamSummary', { StreamName: stream }))
          .StreamDescriptionSummary;
      } catch (e) {
        if (!(e instanceof KinesisError) || e.type !== 'ResourceNotFoundException') throw e;
        try {
          await call(opts.endpoint, 'CreateStream', { StreamName: stream, ShardCount: shards });
          created = true;
        } catch (e2) {
          // Created by someone else in between: go on and wait for it like for any other.
          if (!(e2 instanceof KinesisError) || e2.type !== 'ResourceInUseException') throw e2;
        }
        continue;
      }
      if (summary.StreamStatus === 'ACTIVE') {
        const open = summary.OpenShardCount;
        return created
          ? `stream ${stream} created with ${shards} shards: ACTIVE`
          : `stream ${stream} exists (${open} open shards): ACTIVE`;
      }
      if (summary.StreamStatus === 'DELETING') {
        throw new Error(`stream ${stream} is being deleted`);
      }
      lastError = new Error(`stream ${stream} is ${summary.StreamStatus}`);
    } catch (e) {
      // The service's own refusals are final; a server that does not answer yet is waited for.
      if (e instanceof KinesisError || !(e.cause || e.name === 'TimeoutError')) throw e;
      lastError = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`gave up after ${opts.timeout}s: ${lastError && lastError.message}`
        + (lastError && lastError.cause ? ` (${lastError.cause.code || lastError.cause.message})` : ''));
    }
    await sleep(250);
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const [command, ...rest] = opts.words;
  let message;
  if (command === 'ready' && rest.length === 0) {
    message = await ready(opts);
  } else if (command === 'ensure' && rest.length === 2) {
    const shards = Number(rest[1]);
    if (!Number.isInteger(shards) || shards < 1) usage('SHARDS must be a positive integer');
    message = await ensure(opts, rest[0], shards);
  } else {
    usage(command ? `cannot read: ${opts.words.join(' ')}` : 'no command');
  }
  process.stdout.write(`${message}\n`);
}

if (require.main === module) {
  main().catch((e) => {
    const cause = e.cause ? ` (${e.cause.code || e.cause.message})` : '';
    process.stderr.write(`kinesis_stream: ${e.message}${cause}\n`);
    process.exit(1);
  });
}

module.exports = { signedHeaders };
