// Evaluates the seeded flags through @openfeature/server-sdk and @openfeature/ofrep-provider.
//
// The provider has a dynamic context: each evaluation is one POST to
// /ofrep/v1/evaluate/flags/{key}. Every case of cases.json ("dynamic") must come back with the
// expected value, variant, reason and error code. The server key travels as `X-API-Key`.
//
// Environment: CHECKGATE_URL, OFREP_SERVER_KEY. Argument: the path of cases.json.
// Exits 1 with one line per mismatch.
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';

import { OFREPProvider } from '@openfeature/ofrep-provider';
import { OpenFeature } from '@openfeature/server-sdk';

const base = process.env.CHECKGATE_URL;
const key = process.env.OFREP_SERVER_KEY;
const cases = JSON.parse(readFileSync(process.argv[2], 'utf8'));

const getters = {
  boolean: 'getBooleanDetails',
  string: 'getStringDetails',
  integer: 'getNumberDetails',
  object: 'getObjectDetails',
};

function compare(label, details, expect) {
  const got = {
    value: details.value,
    variant: details.variant ?? null,
    reason: details.reason ?? null,
    errorCode: details.errorCode ?? null,
  };
  const want = {
    value: expect.value,
    variant: expect.variant ?? null,
    reason: expect.reason,
    errorCode: expect.errorCode ?? null,
  };
  const problems = [];
  for (const field of Object.keys(want)) {
    if (!isDeepStrictEqual(got[field], want[field])) {
      problems.push(
        `${label}: ${field} is ${JSON.stringify(got[field])}, expected ${JSON.stringify(want[field])}`,
      );
    }
  }
  if (problems.length > 0 && details.errorMessage) {
    problems.push(`${label}: the provider said: ${details.errorMessage}`);
  }
  return problems;
}

await OpenFeature.setProviderAndWait(
  'checkgate',
  new OFREPProvider({ baseUrl: base, headers: [['X-API-Key', key]] }),
);
const client = OpenFeature.getClient('checkgate');

const problems = [];
for (const c of cases.dynamic) {
  const details = await client[getters[c.type]](c.flag, c.default, c.context);
  problems.push(...compare(c.name, details, c.expect));
}
await OpenFeature.close();

if (problems.length > 0) {
  console.error('node server provider: FAILED');
  for (const p of problems) console.error(`  ${p}`);
  process.exit(1);
}
console.log(`node server provider: ${cases.dynamic.length} evaluations as expected`);
