// lambdabox's Node.js runtime client: the Lambda Runtime API loop for
// handlers written for AWS Lambda's Node.js runtimes, in plain Node (no npm
// packages, so the image builds without a registry).
//
// Handlers: `_HANDLER` is `path/to/file.export`; the file is `.js` (CommonJS,
// or ES module when package.json says "type": "module"), `.mjs` or `.cjs`.
// A handler may return a value or a promise (async), or call the callback.
// Errors are reported as Lambda's Node runtime reports them:
// {"errorType","errorMessage","trace":[...]}.

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [apiHost, apiPort] = (process.env.AWS_LAMBDA_RUNTIME_API || '127.0.0.1:9001').split(':');
const BASE = '/2018-06-01/runtime';
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/** One HTTP exchange with the Runtime API. */
function request(method, urlPath, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(body);
    const req = http.request(
      {
        host: apiHost,
        port: Number(apiPort),
        path: urlPath,
        method,
        agent,
        headers: data ? { 'Content-Type': 'application/json', 'Content-Length': data.length, ...headers } : headers,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

/** Lambda's error document for anything thrown or passed to the callback. */
function errorDocument(err) {
  if (err instanceof Error) {
    return {
      errorType: err.name || 'Error',
      errorMessage: err.message,
      trace: typeof err.stack === 'string' ? err.stack.split('\n') : [],
    };
  }
  return { errorType: typeof err, errorMessage: String(err), trace: [] };
}

class RuntimeError extends Error {
  constructor(name, message) {
    super(message);
    this.name = name;
  }
}

/** Find and import the handler named by `_HANDLER`. */
async function loadHandler() {
  const spec = process.env._HANDLER || '';
  const root = process.env.LAMBDA_TASK_ROOT || '/var/task';
  const dot = spec.lastIndexOf('.');
  if (dot <= 0 || dot === spec.length - 1) {
    throw new RuntimeError('Runtime.MalformedHandlerName', `Bad handler ${spec}`);
  }
  const modulePath = spec.slice(0, dot);
  const exportPath = spec.slice(dot + 1);
  const file = ['.js', '.mjs', '.cjs'].map((ext) => path.resolve(root, modulePath + ext)).find((f) => fs.existsSync(f));
  if (!file) {
    throw new RuntimeError('Runtime.ImportModuleError', `Error: Cannot find module '${modulePath}'`);
  }
  let mod;
  try {
    mod = await import(pathToFileURL(file).href);
  } catch (err) {
    if (err instanceof SyntaxError) throw new RuntimeError('Runtime.UserCodeSyntaxError', `${err.name}: ${err.message}`);
    throw err;
  }
  const handler = exportPath.split('.').reduce((obj, key) => (obj == null ? undefined : obj[key]), mod)
    ?? exportPath.split('.').reduce((obj, key) => (obj == null ? undefined : obj[key]), mod.default);
  if (typeof handler !== 'function') {
    throw new RuntimeError('Runtime.HandlerNotFound', `${modulePath}.${exportPath} is undefined or not exported`);
  }
  return handler;
}

/** The context object Lambda gives Node handlers. */
function makeContext(headers) {
  const deadline = Number(headers['lambda-runtime-deadline-ms']);
  const parse = (h) => (headers[h] ? JSON.parse(headers[h]) : undefined);
  return {
    awsRequestId: headers['lambda-runtime-aws-request-id'],
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: parse('lambda-runtime-client-context'),
    identity: parse('lambda-runtime-cognito-identity'),
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
}

/** Run the handler in whichever style it was written: promise or callback. */
function run(handler, event, context) {
  return new Promise((resolve, reject) => {
    const callback = (err, result) => (err != null ? reject(err) : resolve(result));
    try {
      const returned = handler(event, context, callback);
      if (returned && typeof returned.then === 'function') returned.then(resolve, reject);
      else if (handler.length < 3) resolve(returned);
    } catch (err) {
      reject(err);
    }
  });
}

async function main() {
  let handler;
  try {
    handler = await loadHandler();
  } catch (err) {
    const doc = errorDocument(err);
    console.error(JSON.stringify(doc));
    await request('POST', `${BASE}/init/error`, JSON.stringify(doc), {
      'Lambda-Runtime-Function-Error-Type': doc.errorType.startsWith('Runtime.') ? doc.errorType : 'Runtime.Unknown',
    });
    process.exit(1);
  }
  let current;
  process.on('unhandledRejection', async (reason) => {
    const doc = { ...errorDocument(reason), errorType: 'Runtime.UnhandledPromiseRejection' };
    if (current) await request('POST', `${BASE}/invocation/${current}/error`, JSON.stringify(doc));
    process.exit(128);
  });
  for (;;) {
    const next = await request('GET', `${BASE}/invocation/next`);
    if (next.status !== 200) process.exit(1);
    const id = next.headers['lambda-runtime-aws-request-id'];
    current = id;
    try {
      const event = JSON.parse(next.body.toString('utf8'));
      const result = await run(handler, event, makeContext(next.headers));
      const body = JSON.stringify(result === undefined ? null : result);
      await request('POST', `${BASE}/invocation/${id}/response`, body);
    } catch (err) {
      const doc = errorDocument(err);
      await request('POST', `${BASE}/invocation/${id}/error`, JSON.stringify(doc), {
        'Lambda-Runtime-Function-Error-Type': 'Runtime.Unknown',
      });
    }
    current = undefined;
  }
}

main();
