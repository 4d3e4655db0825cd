// Preloaded into worker processes by `npm run bench -- --profile` (NODE_OPTIONS=--import ...,
// since --cpu-prof itself is not allowed in NODE_OPTIONS): profiles the whole process with the
// in-process inspector and writes <SPS_BENCH_PROF_DIR>/<pid>.cpuprofile when it exits.
import { Session } from 'node:inspector';
import { mkdirSync, writeFileSync } from 'node:fs';

const dir = process.env.SPS_BENCH_PROF_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 200 });
  session.post('Profiler.start');
  process.once('exit', () => {
    session.post('Profiler.stop', (err, result) => {
      if (err || !result) return;
      mkdirSync(dir, { recursive: true });
      writeFileSync(`${dir}/${process.pid}.cpuprofile`, JSON.stringify(result.profile));
    });
  });
}
