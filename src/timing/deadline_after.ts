/** A deadline that has not fired yet can be cancelled; cancelling after it fired does nothing. */
export interface Deadline {
  cancel(): void;
}

interface Entry {
  at: number;
  onExpire: (() => void) | null;
}

/**
 * Deadlines of one length expire in the order they were set, so one timer,
 * armed for the oldest, serves them all. A webhook sets two (its body's, its
 * write's); with one timer each, Node-style timer objects cost a few
 * microseconds per webhook, a deadline here a few hundred nanoseconds.
 *
 * The timer stays armed when every deadline is cancelled: the queue empties
 * whenever the webhooks in flight all end (every batch, under load), and
 * clearing then setting a timer each time cost 3.5% of the service's busy
 * thread. Firing early is harmless (it re-arms for the oldest pending one),
 * and the timer is unreferenced, so it keeps no process alive.
 */
class DeadlineQueue {
  #entries: Entry[] = [];
  #head = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly delayMs: number) {}

  add(onExpire: () => void): Deadline {
    const entry: Entry = { at: performance.now() + this.delayMs, onExpire };
    this.#entries.push(entry);
    if (this.#timer === undefined) this.#arm(entry.at);
    return {
      cancel: () => {
        entry.onExpire = null;
        this.#dropCancelled();
      },
    };
  }

  #arm(at: number): void {
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, at - performance.now()));
    Deno.unrefTimer(this.#timer);
  }

  #fire(): void {
    this.#timer = undefined;
    const now = performance.now();
    while (this.#head < this.#entries.length && this.#entries[this.#head].at <= now) {
      const entry = this.#entries[this.#head++];
      const onExpire = entry.onExpire;
      entry.onExpire = null;
      onExpire?.();
    }
    this.#dropCancelled();
    this.#rearm();
  }

  /** Cancelled deadlines at the front go at once, so that the queue holds about what is pending. */
  #dropCancelled(): void {
    const entries = this.#entries;
    while (this.#head < entries.length && entries[this.#head].onExpire === null) this.#head++;
    if (this.#head === entries.length) {
      this.#entries = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > entries.length) {
      this.#entries = entries.slice(this.#head);
      this.#head = 0;
    }
  }

  #rearm(): void {
    if (this.#timer !== undefined || this.#head >= this.#entries.length) return;
    this.#arm(this.#entries[this.#head].at);
  }

  /** For tests: deadlines held (pending, or cancelled behind a pending one). */
  get size(): number {
    return this.#entries.length - this.#head;
  }
}

const queues = new Map<number, DeadlineQueue>();

/**
 * Calls `onExpire` after `delayMs` unless cancelled first, as `setTimeout`
 * would, but sharing one timer among all deadlines of the same length.
 */
export function deadlineAfter(delayMs: number, onExpire: () => void): Deadline {
  let queue = queues.get(delayMs);
  if (queue === undefined) {
    queue = new DeadlineQueue(delayMs);
    queues.set(delayMs, queue);
  }
  return queue.add(onExpire);
}

/** For tests: how many deadlines of this length are held. */
export function heldDeadlines(delayMs: number): number {
  return queues.get(delayMs)?.size ?? 0;
}
