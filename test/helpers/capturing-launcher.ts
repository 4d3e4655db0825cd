import { EmbeddedLauncher } from '../../src/driver/launch/embedded-launcher.js';
import { partitionSource } from '../../src/driver/launch/data-source.js';
import type { BusNetwork, Isolation, LaunchEvents, LaunchPlan, Launcher } from '../../src/index.js';

/**
 * A launcher (the embedded one, or any given), keeping the plan it was given: the tests play a
 * stolen partition (or the driver, to watch the bus) with the very credentials the run handed out.
 */
export class CapturingLauncher implements Launcher {
  readonly kind: string;
  plan?: LaunchPlan;
  readonly busNetwork?: () => BusNetwork;
  constructor(
    private readonly inner: Launcher,
    private readonly isolation?: Isolation,
  ) {
    this.kind = `${inner.kind} (capturing)`;
    if (inner.busNetwork) this.busNetwork = () => inner.busNetwork!();
  }

  /** `isolation: 'thread'` runs the embedded launcher's partitions as threads (a launcher of one's own may not ask for it). */
  static async create(data: unknown[], partitions: number, isolation?: Isolation): Promise<CapturingLauncher> {
    return new CapturingLauncher(new EmbeddedLauncher(await partitionSource(data, partitions)), isolation);
  }

  launch(plan: LaunchPlan, events: LaunchEvents): Promise<void> {
    this.plan = this.isolation === 'thread' ? { ...plan, isolation: 'thread', http: 'node' } : plan;
    plan = this.plan;
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
