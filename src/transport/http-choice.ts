/**
 * Which {@link HttpServer} serves: native uWebSockets.js, the `node:http` fallback, or (`auto`)
 * uWebSockets.js where a binary for this process loads and the fallback elsewhere, said once.
 */
import { InvalidOptionError } from '../errors.js';
import type { HttpServerFactory } from './http.js';
import { createNodeHttpServer } from './node-http.js';
import { createUwsServer } from './uws-http.js';
import { uwsUnavailable } from './uws-load.js';

/** The HTTP server to use: `uws` (native, an error where it cannot load), `node` (`node:http` + `ws`), or `auto`. */
export type HttpChoice = 'uws' | 'node' | 'auto';

/** Every {@link HttpChoice}, the default first. */
export const HTTP_CHOICES: readonly HttpChoice[] = ['auto', 'uws', 'node'];

/**
 * Checks an `http` option's value; undefined stays undefined (the default applies).
 * @throws InvalidOptionError naming `option` when it is not an {@link HttpChoice}.
 */
export function checkHttpChoice(option: string, value: unknown): HttpChoice | undefined {
  if (value === undefined || (HTTP_CHOICES as readonly unknown[]).includes(value)) return value as HttpChoice | undefined;
  throw new InvalidOptionError(option, `must be ${HTTP_CHOICES.map((c) => `"${c}"`).join(', ')}, got ${JSON.stringify(value)}`);
}

/**
 * Why `auto` serves HTTP with `node:http` in this process (no uWebSockets.js binary loads), as
 * the line that says so; undefined for other choices and where uWebSockets.js loads.
 */
export function httpFallbackNotice(choice: HttpChoice = 'auto'): string | undefined {
  const why = choice === 'auto' ? uwsUnavailable() : undefined;
  return why === undefined ? undefined : `HTTP served by node:http (slower than uWebSockets.js): ${why}`;
}

let said = false;

/**
 * The factory for `choice`. For `auto` where no uWebSockets.js binary loads, the `node:http`
 * server, and `say` (when given) is called with why, once per process (each partition's worker is one).
 */
export function httpServerFactory(choice: HttpChoice = 'auto', say?: (message: string) => void): HttpServerFactory {
  if (choice === 'uws') return createUwsServer;
  if (choice === 'node') return createNodeHttpServer;
  const notice = httpFallbackNotice(choice);
  if (notice === undefined) return createUwsServer;
  if (say && !said) {
    said = true;
    say(notice);
  }
  return createNodeHttpServer;
}
