/**
 * Writes src/protocol/protocol.schema.json from the protocol's one definition (src/protocol/schema.ts),
 * for the Python runner. `npm run protocol`; a test fails when the file is out of date.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PROTOCOL_VERSION } from '../src/protocol/codec.js';
import { protocolJsonSchema } from '../src/protocol/schema.js';

const file = fileURLToPath(new URL('../src/protocol/protocol.schema.json', import.meta.url));
writeFileSync(file, JSON.stringify(protocolJsonSchema(PROTOCOL_VERSION), null, 2) + '\n');
console.log(`wrote ${file}`);
