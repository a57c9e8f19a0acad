/**
 * Hot reload: refresh the repository when files change (fs.watch, recursive) and on a poll
 * interval (network filesystems and some container volumes deliver no events). Events are
 * debounced; refreshes never overlap (the repository coalesces them).
 */
import { type FSWatcher, watch } from 'node:fs';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';
import type { ModelRepository } from './model-repository.ts';

export interface WatcherOptions {
  /** Poll interval, ms; 0 disables polling. Default 2000. */
  pollMs?: number;
  /** Quiet time after the last file event before refreshing, ms. Default 250. */
  debounceMs?: number;
  logger?: Logger;
}

/** Starts watching; the returned function stops it. */
export function watchRepository(repository: ModelRepository, root: string, options: WatcherOptions = {}): () => void {
  const log = options.logger ?? silentLogger;
  const refresh = (): void => {
    repository.refresh().catch((error: unknown) => log.error({ err: error }, 'model repository refresh failed'));
  };
  let debounce: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(root, { recursive: true, persistent: false }, () => {
      clearTimeout(debounce);
      debounce = setTimeout(refresh, options.debounceMs ?? 250);
      debounce.unref();
    });
    watcher.on('error', (error) => log.warn({ err: error }, 'watching the model repository failed; polling only'));
  } catch (error) {
    log.warn({ err: error }, 'cannot watch the model repository; polling only');
  }
  const pollMs = options.pollMs ?? 2000;
  const poll = pollMs > 0 ? setInterval(refresh, pollMs) : undefined;
  poll?.unref();
  return () => {
    clearTimeout(debounce);
    if (poll) clearInterval(poll);
    watcher?.close();
  };
}
