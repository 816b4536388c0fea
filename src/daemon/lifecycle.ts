/**
 * The uniform component lifecycle: start in dependency order, and if one
 * fails, stop those already started; stop in reverse order, isolating each stop failure so one
 * broken component cannot keep the others running.
 */
import type { Logger } from 'pino';
import { errorMessage } from '../shared/errors.js';

/** Anything the daemon starts and stops. */
export interface Component {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Components started together and stopped in reverse. */
export class ComponentGroup {
  private started: Component[] = [];

  constructor(private readonly log: Logger) {}

  /** Start each in order; on failure stop the started ones and rethrow. */
  async start(components: Component[]): Promise<void> {
    for (const c of components) {
      try {
        await c.start();
        this.started.push(c);
      } catch (err) {
        this.log.error({ component: c.name, err: errorMessage(err) }, 'component failed to start');
        await this.stop();
        throw err;
      }
    }
  }

  /** Stop in reverse order; errors are logged, never thrown. */
  async stop(): Promise<void> {
    const list = this.started.reverse();
    this.started = [];
    for (const c of list) {
      try {
        await c.stop();
      } catch (err) {
        this.log.error({ component: c.name, err: errorMessage(err) }, 'component failed to stop cleanly');
      }
    }
  }
}
