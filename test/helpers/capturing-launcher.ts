import { EmbeddedLauncher } from '../../src/driver/launch/embedded-launcher.js';
import { partitionSource } from '../../src/driver/launch/data-source.js';
import type { BusNetwork, LaunchEvents, LaunchPlan, Launcher } from '../../src/index.js';

/**
 * A launcher (the embedded one, or any given), keeping the plan it was given: the tests play a
 * stolen partition (or the driver, to watch the bus) with the very credentials the run handed out.
 */
export class CapturingLauncher implements Launcher {
  readonly kind: string;
  plan?: LaunchPlan;
  readonly busNetwork?: () => BusNetwork;
  constructor(private readonly inner: Launcher) {
    this.kind = `${inner.kind} (capturing)`;
    if (inner.busNetwork) this.busNetwork = () => inner.busNetwork!();
  }

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
