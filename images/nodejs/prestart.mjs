// lambdabox's wrapper around aws-lambda-ric for a runtime started ahead of
// need (`prestart MEMORY`, run by lambdabox-init in a prewarmed container
// with the environment every function of the runtime shares).
//
// It loads the runtime client (its module, which reads
// AWS_LAMBDA_RUNTIME_VERBOSE and AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA as it
// loads, and its native Runtime API client) and warms what the client's
// start uses first (see warmUp), then waits (see handOff) until
// lambdabox-init writes the function's whole environment to descriptor 3
// (lambdabox-protocol's handoff: a 4-byte big-endian length, then NAME=VALUE
// entries each ended by a NUL) and closes it. It makes that the process
// environment (process.env writes through to the C library's, so children
// inherit it), does what the bootstrap's shell does before starting Node
// (the task root as working folder and PWD, no OLDPWD, the default
// NODE_PATH), sets process.argv as the bootstrap passes it, and starts the
// client as its own entry point (bin/index.mjs) does: the same log line,
// then the client's exported run(), which imports the handler. Calling run()
// directly saves importing that three-line script as a new ES module after
// the hand-off (1.4 ms in an instrumented start, a file read on libuv's
// thread pool included).
//
// lambdabox hands a function to this process only if nothing read before
// this point (NODE_*, UV_*, the two variables above, the locale…) differs
// for it, and only at the MemorySize it was started for.
import { createRequire } from "node:module";
import { Socket } from "node:net";
import { format } from "node:util";
import "node:http";

const ric = "/var/runtime/node_modules/aws-lambda-ric";
const defaultNodePath = process.env.NODE_PATH;
// The native client, loaded as the client's own module asks for it
// (relative to it), so that its later require finds it in the cache.
createRequire(`${ric}/dist/index.mjs`)("./rapid-client.node");
const { run } = await import(`${ric}/dist/index.mjs`);
warmUp();
// A full collection now (the bootstrap passes --expose-gc, as Lambda's
// does), so the function's start begins with an empty young generation and
// an old-generation limit set from what is live, not from Node's start.
globalThis.gc?.();

const message = await handOff();
if (message.length < 4 || message.readUInt32BE(0) !== message.length - 4) {
    process.stderr.write("lambdabox: the function environment arrived cut short\n");
    process.exit(1);
}
for (const name of Object.keys(process.env)) {
    delete process.env[name];
}
let at = 4;
while (at < message.length) {
    const end = message.indexOf(0, at);
    const entry = message.toString("utf8", at, end);
    const eq = entry.indexOf("=");
    process.env[entry.slice(0, eq)] = entry.slice(eq + 1);
    at = end + 1;
}
try {
    process.chdir(process.env.LAMBDA_TASK_ROOT || "/var/task");
} catch {
    process.exit(1);
}
process.env.PWD = process.cwd();
delete process.env.OLDPWD;
if (!process.env.NODE_PATH) {
    process.env.NODE_PATH = defaultNodePath;
}
process.argv.splice(1, process.argv.length, `${ric}/bin/index.mjs`, process.env._HANDLER ?? "");
const appRoot = process.cwd();
const handler = process.argv[2];
console.log(`Executing '${handler}' in function directory '${appRoot}'`);
await run(appRoot, handler);

// The function's environment, read from descriptor 3 to its end, which then
// closes. The wait is the event loop's, not a blocking read: V8 runs the
// heap's upkeep it schedules on the loop (its memory reducer starts a full
// collection some seconds after the last one) while the container waits,
// instead of all at once when the function starts, where it cost a full
// mark-compact in every start of a container that had waited a while.
function handOff() {
    return new Promise((resolve) => {
        const chunks = [];
        const pipe = new Socket({ fd: 3, readable: true, writable: false });
        pipe.on("data", (chunk) => chunks.push(chunk));
        pipe.on("end", () => {
            pipe.destroy();
            resolve(Buffer.concat(chunks));
        });
        pipe.on("error", () => {
            pipe.destroy();
            resolve(Buffer.alloc(0));
        });
    });
}

// Run, before the function is known, the first use of what the client's
// start needs, which Node otherwise builds or compiles on that first use:
// the standard streams (each a pipe stream, created when first touched; an
// empty write sends nothing), console's formatting, and process.env's setter
// and deleter. An instrumented start spent about 2 ms on these and the
// client's relative require; an echo start, timed from outside, gained
// about 0.3 ms. None of it reads a function's setting.
function warmUp() {
    process.stdout.write("");
    process.stderr.write("");
    format("%s '%s' %d", "warm", "up", 1);
    process.env.LAMBDABOX_PRESTART_WARM_UP = "1";
    delete process.env.LAMBDABOX_PRESTART_WARM_UP;
}
