// lambdabox's wrapper around aws-lambda-ric for a runtime started ahead of
// need (`prestart MEMORY`, run by lambdabox-init in a prewarmed container
// with the environment every function of the runtime shares).
//
// It loads the runtime client (its module, which reads
// AWS_LAMBDA_RUNTIME_VERBOSE and AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA as it
// loads, and its native Runtime API client), then blocks reading descriptor
// 3 until lambdabox-init writes the function's whole environment there
// (lambdabox-protocol's handoff: a 4-byte big-endian length, then NAME=VALUE
// entries each ended by a NUL) and closes it. It makes that the process
// environment (process.env writes through to the C library's, so children
// inherit it), does what the bootstrap's shell does before starting Node
// (the task root as working folder and PWD, no OLDPWD, the default
// NODE_PATH), sets process.argv as the bootstrap passes it, and runs the
// client's own entry point, which imports the handler.
//
// lambdabox hands a function to this process only if nothing read before
// this point (NODE_*, UV_*, the two variables above, the locale…) differs
// for it, and only at the MemorySize it was started for.
import { closeSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import "node:http";

const ric = "/var/runtime/node_modules/aws-lambda-ric";
const defaultNodePath = process.env.NODE_PATH;
createRequire(import.meta.url)(`${ric}/dist/rapid-client.node`);
await import(`${ric}/dist/index.mjs`);

const message = readFileSync(3);
closeSync(3);
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
await import(`${ric}/bin/index.mjs`);
