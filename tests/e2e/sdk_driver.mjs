// Drive Authport with the real Nango Node SDK, one step at a time, and print what each call gave.
//
// Usage: node sdk_driver.mjs <dir holding node_modules/@nangohq/node>  < plan.json
// plan = {host, keys: {<name>: <secret key>}, steps: [{call, args?, as?}]}
//   call: an SDK method name ("listConnections"), or "http.<verb>" for a raw request through the
//         SDK's own axios instance with the SDK's headers; its first argument is a path on `host`.
//   as:   which entry of `keys` builds the client (default "dev").
// Output: one JSON line per step, in order:
//   {"returned": value} | {"returned": "AxiosResponse", "status", "data"}
//   | {"threw": class name, "message", "status", "data"} (status/data only for HTTP errors).
import { createRequire } from 'node:module';
import { join } from 'node:path';

const sdkDir = process.argv[2];
if (!sdkDir) {
    console.error('usage: node sdk_driver.mjs <sdk install dir> < plan.json');
    process.exit(2);
}
// Resolve the package the way an application beside that node_modules would.
const { Nango } = createRequire(join(sdkDir, 'package.json'))('@nangohq/node');

function isAxiosResponse(value) {
    return value !== null && typeof value === 'object' && 'status' in value && 'headers' in value && 'config' in value;
}

async function perform(nango, host, step) {
    const args = step.args ?? [];
    if (step.call.startsWith('http.')) {
        const verb = step.call.slice('http.'.length);
        const [path, ...rest] = args;
        const withBody = ['post', 'put', 'patch'].includes(verb);
        const options = { headers: nango.enrichHeaders({ 'Content-Type': 'application/json' }) };
        return withBody ? nango.http[verb](host + path, rest[0], options) : nango.http[verb](host + path, options);
    }
    if (typeof nango[step.call] !== 'function') {
        throw new Error(`the SDK has no method ${step.call}`);
    }
    return nango[step.call](...args);
}

function describe(value) {
    if (isAxiosResponse(value)) {
        return { returned: 'AxiosResponse', status: value.status, data: value.data };
    }
    return { returned: value === undefined ? null : value };
}

function describeError(err) {
    const out = { threw: err?.constructor?.name ?? 'Error', message: String(err?.message ?? err) };
    if (err?.response) {
        out.status = err.response.status;
        out.data = err.response.data;
    }
    return out;
}

async function main() {
    const chunks = [];
    for await (const chunk of process.stdin) {
        chunks.push(chunk);
    }
    const plan = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const clients = {};
    for (const [name, key] of Object.entries(plan.keys)) {
        clients[name] = new Nango({ host: plan.host, secretKey: key });
    }
    for (const step of plan.steps) {
        const nango = clients[step.as ?? 'dev'];
        let line;
        try {
            line = describe(await perform(nango, plan.host, step));
        } catch (err) {
            line = describeError(err);
        }
        process.stdout.write(JSON.stringify(line) + '\n');
    }
}

main().catch((err) => {
    console.error(err?.stack ?? String(err));
    process.exit(1);
});
