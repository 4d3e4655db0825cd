import { EmbeddedLauncher } from '../../src/launch/embedded-launcher.js';
import { partitionSource } from '../../src/launch/data-source.js';
import type { LaunchEvents, LaunchPlan, Launcher } from '../../src/index.js';

/**
 * The embedded launcher, keeping the plan it was given: the tests play a stolen partition (or the
 * driver, to watch the bus) with the very credentials the run handed out.
 */
export class CapturingLauncher implements Launcher {
  readonly kind = 'embedded (capturing)';
  plan?: LaunchPlan;
  private constructor(private readonly inner: EmbeddedLauncher) {}

  static async create(data: unknown[], partitions: number): Promise<CapturingLauncher> {
    return new CapturingLauncher(new EmbeddedLauncher(await partitionSource(data, partitions)));
  }

  launch(plan: LaunchPlan, events: LaunchEvents): Promise<void> {
    this.plan = plan;
    return this.inner.launch(plan, events);
  }
  stop(): Promise<void> {
    return this.inner.stop();
  }
  pids(): number[] {
    return this.inner.pids();
  }
  killNow(): void {
    this.inner.killNow();
  }
}
