import test from 'ava';
import { requestAll } from '../src/protocol/call-options.js';
import { Changes, waitFor } from '../src/protocol/wait-for.js';

test('waitFor resolves at once when the condition holds, with what it returned', async (t) => {
  t.is(await waitFor(() => 42), 42);
  t.deepEqual(await waitFor(() => ({ cert: undefined })), { cert: undefined });
});

test('waitFor looks again at each change and resolves at the first that makes the condition hold', async (t) => {
  const changes = new Changes();
  let n = 0;
  let looked = 0;
  const waiting = waitFor(
    () => {
      looked++;
      return n >= 2 && n;
    },
    { changes, timeoutMs: 60_000 },
  );
  n = 1;
  changes.notify();
  n = 2;
  changes.notify();
  t.is(await waiting, 2);
  t.is(looked, 3);
  // Settled: no longer checked.
  changes.notify();
  t.is(looked, 3);
});

test('waitFor rejects with what the condition throws', async (t) => {
  const changes = new Changes();
  let replaced = false;
  const waiting = waitFor(
    () => {
      if (replaced) throw new Error('replaced');
      return false;
    },
    { changes },
  );
  replaced = true;
  changes.notify();
  await t.throwsAsync(waiting, { message: 'replaced' });
});

test('waitFor ends on timeout with the error or the value onTimeout gives, and with no timeout waits for the signal', async (t) => {
  const changes = new Changes();
  await t.throwsAsync(
    waitFor(() => false, { changes, timeoutMs: 1, onTimeout: () => new Error('nobody came') }),
    { message: 'nobody came' },
  );
  t.is(await waitFor<string>(() => undefined, { changes, timeoutMs: 1, onTimeout: () => ({ value: 'fallback' }) }), 'fallback');
  await t.throwsAsync(
    waitFor(() => false, { timeoutMs: 1 }),
    { message: /did not hold within 1 ms/ },
  );
  const abort = new AbortController();
  const waiting = waitFor(() => false, { changes, signal: abort.signal });
  abort.abort(new Error('cancelled'));
  await t.throwsAsync(waiting, { message: 'cancelled' });
});

test('waitFor with an aborted signal rejects at once, even when the condition holds', async (t) => {
  await t.throwsAsync(
    waitFor(() => true, { signal: AbortSignal.abort(new Error('gone')) }),
    { message: 'gone' },
  );
});

test('requestAll gathers each partition’s outcome by partition; an aborted signal rejects the whole call', async (t) => {
  const replies = await requestAll(3, async (p) => {
    if (p === 1) throw new Error('down');
    return p * 10;
  });
  t.deepEqual([...replies.keys()], [0, 1, 2]);
  t.deepEqual(
    [...replies.values()].map((r) => (r.ok ? r.value : r.error.message)),
    [0, 'down', 20],
  );
  const abort = new AbortController();
  const gathering = requestAll(2, () => new Promise<number>(() => {}), abort.signal);
  abort.abort(new Error('stop'));
  await t.throwsAsync(gathering, { message: 'stop' });
  await t.throwsAsync(
    requestAll(2, async () => 1, AbortSignal.abort(new Error('before'))),
    { message: 'before' },
  );
});
