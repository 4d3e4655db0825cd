import test from 'ava';
import { DeltaPublisher, MembershipView } from '../src/protocol/membership.js';
import type { Member } from '../src/protocol/types.js';

const m = (partition: number, attempt: number, state: Member['state']): Member => ({
  partition,
  attempt,
  state,
  host: 'h',
  port: null,
  pid: 100 + partition,
  endpoints: [],
});

test('the driver publishes only the members that changed, with the epochs the delta spans', (t) => {
  const pub = new DeltaPublisher();
  t.deepEqual(pub.next(1, [m(0, 0, 'registered')]), { from: 0, epoch: 1, members: [m(0, 0, 'registered')] });
  t.deepEqual(pub.next(2, [m(0, 0, 'registered'), m(1, 0, 'registered')]), { from: 1, epoch: 2, members: [m(1, 0, 'registered')] });
  t.is(pub.next(2, [m(0, 0, 'registered'), m(1, 0, 'registered')]), undefined, 'nothing changed');
  // Two changes between publishes (an epoch bump that was not published) go out as one delta.
  t.deepEqual(pub.next(4, [m(0, 0, 'serving'), m(1, 1, 'registered')]), { from: 2, epoch: 4, members: [m(0, 0, 'serving'), m(1, 1, 'registered')] });
});

test('a view takes deltas that fit, keeps early ones until its first whole view, and reports a gap', (t) => {
  const view = new MembershipView();
  // A delta that overtakes the registration's answer waits for it.
  t.is(view.apply({ from: 1, epoch: 2, generation: 0, members: [m(1, 0, 'registered')] }), 'old');
  t.true(view.replace(1, 0, [m(0, 0, 'registered')]));
  t.is(view.epoch, 2);
  t.deepEqual(
    view.members.map((x) => [x.partition, x.state]),
    [
      [0, 'registered'],
      [1, 'registered'],
    ],
  );
  t.is(view.apply({ from: 1, epoch: 2, generation: 0, members: [m(1, 0, 'registered')] }), 'old');
  t.is(view.apply({ from: 2, epoch: 3, generation: 1, members: [m(0, 0, 'serving')] }), 'applied');
  t.is(view.generation, 1, 'the generation comes with the delta');
  // Epoch 4 was missed: the delta from 4 waits, and the view asks for the whole view.
  t.is(view.apply({ from: 4, epoch: 5, generation: 0, members: [m(1, 0, 'serving')] }), 'gap');
  t.true(view.behind);
  t.is(view.members[1]!.state, 'registered');
  t.true(view.replace(4, 0, [m(0, 0, 'serving'), m(1, 0, 'registered')]));
  t.false(view.behind);
  t.is(view.epoch, 5);
  t.is(view.members[1]!.state, 'serving');
  t.false(view.replace(3, 0, []), 'an older whole view changes nothing');
});
