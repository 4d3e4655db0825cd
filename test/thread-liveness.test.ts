/**
 * How a partition thread's silence is judged: a hang only when its host kept reporting while the
 * thread did not; a gap the host shared is load. The watch asks again until the silence is its own.
 */
import test from 'ava';
import { PassThrough } from 'node:stream';
import { threadSilenceIsOwn } from '../src/driver/launch/thread-liveness.js';
import { watchLiveness } from '../src/driver/launch/liveness-watch.js';

test('a thread is silent on its own only when its host reported for the whole timeout after its last tick', (t) => {
  // The host heartbeat came a full timeout after the thread's last tick: the thread alone stopped.
  t.true(threadSilenceIsOwn(1000, 3000, 2000));
  t.true(threadSilenceIsOwn(1000, 5000, 2000));
  // The host's last heartbeat is about as old as the thread's tick: both were delayed (load).
  t.false(threadSilenceIsOwn(1000, 1200, 2000));
  t.false(threadSilenceIsOwn(1000, 2999, 2000));
  // A tick read after the host's heartbeat.
  t.false(threadSilenceIsOwn(3000, 1000, 2000));
});

test('the watch does not call a shared silence a hang, and does once the silence is the thread own', async (t) => {
  const ticks = new PassThrough();
  // The watch's timers never keep a process alive; this test's process must wait for them.
  const keepAlive = setInterval(() => {}, 1000);
  t.teardown(() => clearInterval(keepAlive));
  let own = false;
  let asked = 0;
  const hung = new Promise<void>((resolve) => {
    watchLiveness(ticks, 50, resolve, {
      startupGraceMs: 0,
      silenceIsOwn: () => {
        asked++;
        // Shared for the first few asks (the host was silent too), then the host moved on.
        if (asked >= 3) own = true;
        return own;
      },
    });
  });
  await hung;
  t.true(own);
  t.is(asked, 3);
});
