/**
 * The dashboard's static files: the page (markup, style and script in one file: nothing to
 * bundle, one request) and uPlot (a small, fast canvas chart library, MIT) from its npm package.
 * Read once on first use and kept in memory (about 60 KiB).
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/** A file ready to send. */
export interface Asset {
  readonly body: Buffer;
  readonly contentType: string;
}

const require = createRequire(import.meta.url);

/** Asset name (the last path segment under /dashboard/) → where it is read from. */
const FILES: Record<string, { path: () => string; contentType: string }> = {
  '': { path: () => join(import.meta.dirname, 'dashboard.html'), contentType: 'text/html; charset=utf-8' },
  'uplot.js': { path: () => require.resolve('uplot/dist/uPlot.iife.min.js'), contentType: 'text/javascript; charset=utf-8' },
  'uplot.css': { path: () => require.resolve('uplot/dist/uPlot.min.css'), contentType: 'text/css; charset=utf-8' },
};

const cache = new Map<string, Promise<Asset>>();

/** The asset called `name`, or undefined when there is none. */
export function dashboardAsset(name: string): Promise<Asset> | undefined {
  const file = FILES[name];
  if (!file) return undefined;
  let asset = cache.get(name);
  if (!asset) {
    asset = readFile(file.path()).then((body) => ({ body, contentType: file.contentType }));
    // A failed read is not cached: the next request tries again.
    asset.catch(() => cache.delete(name));
    cache.set(name, asset);
  }
  return asset;
}
