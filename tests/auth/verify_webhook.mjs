// Check an auth webhook the way a customer's backend does, with the real @nangohq/node SDK.
//
// Usage: node verify_webhook.mjs <dir holding node_modules/@nangohq/node>  < {secretKey, [webhookSigningKey,] body, headers}
// body is the raw request body (a string). Prints {"incoming": bool, "legacy": bool}: the results of
// verifyIncomingWebhookRequest(body, headers) and of the deprecated
// verifyWebhookSignature(headers['x-nango-signature'], JSON.parse(body)).
import { createRequire } from 'node:module';
import { join } from 'node:path';

const { Nango } = createRequire(join(process.argv[2], 'package.json'))('@nangohq/node');
let input = '';
for await (const chunk of process.stdin) input += chunk;
const { secretKey, webhookSigningKey, body, headers } = JSON.parse(input);
const nango = new Nango({ secretKey, webhookSigningKey, host: 'http://127.0.0.1:9' });
const legacyHeader = Object.keys(headers).find((k) => k.toLowerCase() === 'x-nango-signature');
console.log(JSON.stringify({
    incoming: nango.verifyIncomingWebhookRequest(body, headers),
    legacy: nango.verifyWebhookSignature(headers[legacyHeader], JSON.parse(body)),
}));
