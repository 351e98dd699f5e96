// Runs @openfeature/ofrep-web-provider under @openfeature/web-sdk, as a page would, with the
// client key: Node's fetch, and the `eventsource` package as the global EventSource.
//
// 1. Initialization with a static context: one bulk POST to /ofrep/v1/evaluate/flags; every
//    entry of cases.json ("static") must read back with the expected value, variant, reason
//    and error code.
// 2. ETag: the bulk answer carries an ETag, and when the event stream's first notification
//    makes the provider fetch again, it sends that ETag in If-None-Match and gets 304.
// 3. Change notifications: after a PATCH of one flag through the REST API, the provider must
//    report the new value through ConfigurationChanged, naming that flag alone, within
//    CHANGE_WAIT_MS; the fetch that brings it must be the one an SSE notification triggers
//    (it carries flagConfigEtag). The provider does not poll (pollInterval is 0 by default).
//
// Environment: CHECKGATE_URL, OFREP_CLIENT_KEY, CHECKGATE_ENV (environment id),
// CHECKGATE_SESSION (an editor's cg_session cookie, for the PATCH). Argument: cases.json.
// Exits 1 with one line per failed check.
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';

import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';
import { OpenFeature, ProviderEvents } from '@openfeature/web-sdk';
import { EventSource } from 'eventsource';

const CHANGE_WAIT_MS = 10_000;
const ETAG_WAIT_MS = 5_000;

const base = process.env.CHECKGATE_URL;
const key = process.env.OFREP_CLIENT_KEY;
const env = process.env.CHECKGATE_ENV;
const session = process.env.CHECKGATE_SESSION;
const cases = JSON.parse(readFileSync(process.argv[2], 'utf8'));

const problems = [];
const fail = (message) => problems.push(message);

function finish() {
  if (problems.length > 0) {
    console.error('node web provider: FAILED');
    for (const p of problems) console.error(`  ${p}`);
    process.exit(1);
  }
  console.log(`node web provider: bulk requests ${describe()}`);
  console.log(`node web provider: ${cases.static.expect.length} values, ETag and 304, change by SSE as expected`);
  process.exit(0);
}

// Every request the provider makes, with what it sent and what it got.
const requests = [];
async function recordingFetch(input, init) {
  const request = new Request(input, init);
  const entry = {
    url: new URL(request.url),
    ifNoneMatch: request.headers.get('if-none-match'),
    status: null,
    etag: null,
  };
  requests.push(entry);
  const response = await fetch(request);
  entry.status = response.status;
  entry.etag = response.headers.get('etag');
  return response;
}
const bulkRequests = () => requests.filter((r) => r.url.pathname === '/ofrep/v1/evaluate/flags');

// Every event stream the provider opens.
const streams = [];
globalThis.EventSource = class RecordingEventSource extends EventSource {
  constructor(url, init) {
    super(url, init);
    streams.push(new URL(url));
  }
};

// Waits for `test()` to hold, checking every 20 ms, at most `ms`.
async function until(ms, test) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (test()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return test();
}

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
  for (const field of Object.keys(want)) {
    if (!isDeepStrictEqual(got[field], want[field])) {
      fail(`${label}: ${field} is ${JSON.stringify(got[field])}, expected ${JSON.stringify(want[field])}`);
    }
  }
}

// A stuck run still ends, with what it has found.
setTimeout(() => {
  fail('the run did not finish within 30 s');
  finish();
}, 30_000).unref();

const changes = [];
const errors = [];
const client = OpenFeature.getClient();
client.addHandler(ProviderEvents.ConfigurationChanged, (details) => changes.push(details));
client.addHandler(ProviderEvents.Error, (details) => errors.push(details?.message));

// ---- 1. initialization: one bulk evaluation for the static context ----------------------------
await OpenFeature.setContext(cases.static.context);
try {
  await OpenFeature.setProviderAndWait(
    new OFREPWebProvider({
      baseUrl: base,
      headers: [['X-API-Key', key]],
      fetchImplementation: recordingFetch,
      // Node has no localStorage: the provider's persisted cache would only log errors.
      cacheMode: 'disabled',
    }),
  );
} catch (e) {
  fail(`the provider did not initialize: ${e?.cause?.message ?? e?.message ?? e}`);
  finish();
}
const first = bulkRequests()[0];
if (!first || first.status !== 200) {
  fail(`the first bulk evaluation answered ${first?.status}, expected 200`);
  finish();
}
for (const e of cases.static.expect) {
  compare(`${e.flag} as ${e.type}`, client[getters[e.type]](e.flag, e.default), e);
}

// ---- 2. ETag: the stream's first notification makes the provider fetch again: 304 ---------------
if (!first.etag) {
  fail('the bulk evaluation carried no ETag (the provider reads the `etag` response header)');
} else {
  const revalidated = await until(ETAG_WAIT_MS, () =>
    bulkRequests().some((r) => r !== first && r.ifNoneMatch === first.etag && r.status !== null),
  );
  const again = bulkRequests().find((r) => r !== first && r.ifNoneMatch === first.etag);
  if (!revalidated || !again) {
    fail(
      `within ${ETAG_WAIT_MS} ms of the event stream opening, the provider sent no bulk ` +
        `request with If-None-Match: ${first.etag} (requests: ${describe()})`,
    );
  } else if (again.status !== 304) {
    fail(`a bulk request with If-None-Match equal to the current ETag answered ${again.status}, expected 304`);
  }
}
if (streams.length === 0) {
  fail('the provider opened no event stream (the bulk answer advertises none it can use?)');
} else {
  const [stream] = streams;
  if (stream.origin !== new URL(base).origin || stream.pathname !== '/ofrep/v1/events') {
    fail(`the event stream is at ${stream.origin}${stream.pathname}, expected ${base}/ofrep/v1/events`);
  }
  if (stream.href.includes(key)) fail('the event stream URL carries the SDK key itself');
}

// ---- 3. a change through the API reaches the provider by its event stream ----------------------
const change = cases.change;
const changesBefore = changes.length;
const bulkBefore = bulkRequests().length;
const patch = await fetch(`${base}/api/environments/${env}/flags/${change.flag}`, {
  method: 'PATCH',
  headers: {
    Cookie: `cg_session=${session}`,
    'X-Checkgate-Request': '1',
    'Content-Type': 'application/json',
  },
  body: JSON.stringify(change.patch),
});
if (patch.status !== 200) {
  fail(`PATCH ${change.flag} answered ${patch.status}: ${await patch.text()}`);
  finish();
}
const started = Date.now();
const heard = await until(CHANGE_WAIT_MS, () =>
  changes.slice(changesBefore).some((c) => c.flagsChanged?.includes(change.flag)),
);
if (!heard) {
  fail(
    `no ConfigurationChanged naming ${change.flag} within ${CHANGE_WAIT_MS} ms of the PATCH ` +
      `(events: ${JSON.stringify(changes.slice(changesBefore))}; requests: ${describe()})`,
  );
} else {
  const event = changes.slice(changesBefore).find((c) => c.flagsChanged?.includes(change.flag));
  if (!isDeepStrictEqual(event.flagsChanged, [change.flag])) {
    fail(`ConfigurationChanged named ${JSON.stringify(event.flagsChanged)}, expected only ${change.flag}`);
  }
  compare(`${change.flag} after the change`, client.getStringDetails(change.flag, 'none'), change);
  console.log(`node web provider: the change arrived ${Date.now() - started} ms after the PATCH answered`);
}
for (const r of bulkRequests().slice(bulkBefore)) {
  if (!r.url.searchParams.has('flagConfigEtag')) {
    fail(`a bulk request after the change was not triggered by a notification: ${r.url.pathname}${r.url.search}`);
  }
}
// One stream for the whole run: a stream the server ends makes the provider reconnect.
if (streams.length > 1) fail(`the provider opened ${streams.length} event streams, expected 1`);
if (errors.length > 0) fail(`the provider reported errors: ${JSON.stringify(errors)}`);

await OpenFeature.close();
finish();

function describe() {
  return JSON.stringify(
    bulkRequests().map((r) => ({
      query: r.url.search,
      ifNoneMatch: r.ifNoneMatch,
      status: r.status,
      etag: r.etag,
    })),
  );
}
