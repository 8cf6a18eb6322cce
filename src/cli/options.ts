/** Parsers of command-line option values shared by the commands (commander's argParser). */
import { InvalidArgumentError } from 'commander';
import { parseDuration } from '../config/duration.js';

/** A duration of at least `min` ms (`5s`, `1500ms`); `what` is what the error says was expected. */
export function durationArgument(min: number, what = `a duration of at least ${min}ms, such as 5s or 1500ms`): (value: string) => number {
  return (value) => {
    const ms = parseDuration(value);
    if (ms === undefined || ms < min) throw new InvalidArgumentError(`expected ${what}`);
    return ms;
  };
}

/** `--timeout DURATION`: at least 100 ms. */
export const parseTimeout = durationArgument(100);
