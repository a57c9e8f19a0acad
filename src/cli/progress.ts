/**
 * Terminal progress for long CLI work (replay, bench, jar download, model warm-up): a bar for
 * work of known size, a spinner with elapsed time for work of unknown size, and a block of live
 * lines redrawn in place. On a terminal the lines are rewritten; elsewhere (pipes, CI logs,
 * tests) a snapshot is printed at most every `intervalMs`, so logs stay short and readable.
 * Written here instead of a dependency: the whole of it is an ANSI "cursor up, clear line".
 */

/** Where progress goes: a stream, or anything with `write` (tests). */
export interface ProgressStream {
  write(text: string): unknown;
  readonly isTTY?: boolean | undefined;
}

/** `[██████░░░░░░]  50%` for `done` of `total` (clamped), `width` cells wide. */
export function progressBar(done: number, total: number, width = 24): string {
  const fraction = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const full = Math.round(fraction * width);
  return `[${'█'.repeat(full)}${'░'.repeat(width - full)}] ${String(Math.floor(fraction * 100)).padStart(3)}%`;
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/** A spinner frame for a tick count. */
export function spinnerFrame(tick: number): string {
  return SPINNER[tick % SPINNER.length] as string;
}

/** Options of {@link createLiveLines}. */
export interface LiveLinesOptions {
  /** Without a terminal: the least time between two printed snapshots, ms. Default 2000. */
  intervalMs?: number;
  /** Time source, ms (tests inject one). Default performance.now. */
  now?: () => number;
}

/** A block of lines redrawn in place (terminal) or printed now and then (elsewhere). */
export interface LiveLines {
  /** Shows `lines` (on a terminal at once; elsewhere only when the interval has passed). */
  update(lines: readonly string[]): void;
  /** Prints `lines` for good (always, whatever the interval) and ends the block. */
  finish(lines: readonly string[]): void;
}

/** Creates a live block on `stream`. */
export function createLiveLines(stream: ProgressStream, options: LiveLinesOptions = {}): LiveLines {
  const tty = stream.isTTY === true;
  const now = options.now ?? (() => performance.now());
  const interval = options.intervalMs ?? 2000;
  let drawn = 0;
  let lastPrint = Number.NEGATIVE_INFINITY;
  const draw = (lines: readonly string[]): void => {
    // Up over what was drawn, then each line cleared before it is written again.
    const up = drawn > 0 ? `\x1b[${drawn}F` : '';
    stream.write(`${up}${lines.map((l) => `\x1b[2K${l}\n`).join('')}`);
    drawn = lines.length;
  };
  return {
    update(lines) {
      if (tty) return draw(lines);
      const t = now();
      if (t - lastPrint < interval) return;
      lastPrint = t;
      stream.write(`${lines.join('\n')}\n`);
    },
    finish(lines) {
      if (tty) draw(lines);
      else stream.write(`${lines.join('\n')}\n`);
      drawn = 0;
    },
  };
}

/**
 * Runs `work` with a spinner and the elapsed seconds on a terminal (`label… 3 s`), or one line
 * before and one after elsewhere; the final line says how long it took. The work's error
 * passes through (the spinner line is cleared first).
 */
export async function withSpinner<T>(stream: ProgressStream, label: string, work: Promise<T>, done?: (value: T) => string): Promise<T> {
  const started = performance.now();
  const elapsed = (): string => `${((performance.now() - started) / 1000).toFixed(1)} s`;
  let timer: ReturnType<typeof setInterval> | undefined;
  if (stream.isTTY === true) {
    let tick = 0;
    const frame = (): void => void stream.write(`\r\x1b[2K${spinnerFrame(tick++)} ${label}… ${elapsed()}`);
    frame();
    timer = setInterval(frame, 100);
    // The spinner must never keep the process alive on its own.
    timer.unref();
  } else {
    stream.write(`${label}…\n`);
  }
  try {
    const value = await work;
    if (timer) clearInterval(timer);
    stream.write(`${stream.isTTY === true ? '\r\x1b[2K' : ''}✔ ${done ? done(value) : label} (${elapsed()})\n`);
    return value;
  } catch (error) {
    if (timer) {
      clearInterval(timer);
      stream.write('\r\x1b[2K');
    }
    throw error;
  }
}
