import { afterEach, expect, it } from 'vitest';
import { StopRequest, stopOnSignals } from '../src/index.ts';

let unwatch: (() => void) | undefined;
afterEach(() => unwatch?.());

it.each([
  ['SIGINT', 130],
  ['SIGTERM', 143],
  ['SIGHUP', 129],
] as const)(
  '%s asks for a stop (exit %i after the report); a second signal exits at once',
  (signal, code) => {
    const stop = new StopRequest();
    const exits: number[] = [];
    unwatch = stopOnSignals(stop, { exitNow: (c) => exits.push(c) });
    expect(stop.requested).toBe(false);
    expect(stop.exitCode).toBe(0);
    process.emit(signal);
    expect(stop.requested).toBe(true);
    expect(stop.cause).toBe(signal);
    expect(stop.exitCode).toBe(code);
    expect(exits).toEqual([]);
    process.emit(signal);
    expect(exits).toEqual([code]);
    // The first cause stays the one reported.
    stop.request('parent-exit');
    expect(stop.cause).toBe(signal);
  },
);

it('removing the handlers leaves the process as it was', () => {
  const before = ['SIGINT', 'SIGTERM', 'SIGHUP'].map((s) => process.listenerCount(s));
  const stop = new StopRequest();
  stopOnSignals(stop)();
  expect(['SIGINT', 'SIGTERM', 'SIGHUP'].map((s) => process.listenerCount(s))).toEqual(before);
});
