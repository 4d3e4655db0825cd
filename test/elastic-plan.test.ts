import test from 'ava';
import { commitDisagreement, restorePlan, restoreRole } from '../src/worker/elastic/plan.js';
import { createElasticState, elasticRun } from '../src/worker/elastic/elastic-state.js';
import type { Communicator } from '../src/worker/collectives/communicator.js';

test('a restore goes back to the highest commit any partition saw complete; only partitions without it receive it', (t) => {
  // Killed between commits: survivors 0 and 2 committed 2, partition 1's new attempt holds only the initial state.
  t.deepEqual(restorePlan([{ committed: 2 }, { committed: 0 }, { committed: 2 }]), { commit: 2, source: 0, receivers: [1] });
  // Killed during commit 3: one survivor saw it complete (so every partition reached it), another still holds it as pending.
  const during = [{ committed: 2, pending: 3 }, { committed: 3 }, { committed: 0 }];
  t.deepEqual(restorePlan(during), { commit: 3, source: 1, receivers: [2] });
  t.is(restoreRole(restorePlan(during), 0, during[0]!), 'pending');
  t.is(restoreRole(restorePlan(during), 1, during[1]!), 'send');
  t.is(restoreRole(restorePlan(during), 2, during[2]!), 'receive');
  // A commit no partition saw complete does not count: back to the one before.
  t.deepEqual(restorePlan([{ committed: 2, pending: 3 }, { committed: 0 }, { committed: 2, pending: 3 }]), { commit: 2, source: 0, receivers: [1] });
  // Nothing committed yet (a first run, or barrier mode where every attempt is new): everyone starts from its initial state.
  const fresh = restorePlan([{ committed: 0 }, { committed: 0, pending: 1 }]);
  t.deepEqual(fresh, { commit: 0, source: 0, receivers: [] });
  t.is(restoreRole(fresh, 1, { committed: 0, pending: 1 }), 'committed');
  // Two partitions lost in turn: both new attempts receive.
  t.deepEqual(restorePlan([{ committed: 0 }, { committed: 4 }, { committed: 0 }]), { commit: 4, source: 1, receivers: [0, 2] });
  t.throws(() => restorePlan([]), { instanceOf: RangeError });
});

test('a commit is agreed only when every partition committed the same number', (t) => {
  t.is(commitDisagreement([3, 3, 3]), undefined);
  t.is(commitDisagreement([1]), undefined);
  t.regex(commitDisagreement([3, 4, 3])!, /partitions committed different numbers \(0: 3, 1: 4, 2: 3\)/);
});

test('ctx.elastic and ctx.elasticRun name what is wrong with their arguments before anything is sent', async (t) => {
  // Nothing here reaches the communicator: every check comes first.
  const comm = {} as Communicator;
  t.throws(() => createElasticState(comm, [1, 2] as unknown as object), { code: 'SPS_COLLECTIVE_ARGUMENT', message: /an object of fields/ });
  t.throws(() => createElasticState(comm, { commit: 1 }), { code: 'SPS_COLLECTIVE_ARGUMENT', message: /commit are the state's own methods/ });
  t.throws(() => createElasticState(comm, { f: () => 1 }), { code: 'SPS_COLLECTIVE_ARGUMENT', message: /not plain data/ });
  const state = createElasticState(comm, { iteration: 0, model: new Float64Array(4) });
  t.deepEqual(Object.keys(state), ['iteration', 'model'], 'the controls are not fields');
  t.is(state.committed, 0);
  await t.throwsAsync(
    elasticRun(state, () => 1, { restoreTimeout: 5 } as never),
    { code: 'SPS_INVALID_OPTION', message: /restoreTimeout/ },
  );
  await t.throwsAsync(
    elasticRun(state, () => 1, { restoreTimeoutMs: -1 }),
    { code: 'SPS_COLLECTIVE_ARGUMENT' },
  );
  await t.throwsAsync(
    elasticRun({ iteration: 0 } as never, () => 1),
    { code: 'SPS_COLLECTIVE_ARGUMENT', message: /not made by ctx.elastic/ },
  );
});
