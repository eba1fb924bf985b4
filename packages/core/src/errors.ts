/**
 * Typed errors. Every K* error says what was wrong, with the offending value, and what to do.
 * `exitCode` is what the `kstar` CLI exits with: 2 for bad input (config, flags, data), 1 otherwise.
 */
export class KstarError extends Error {
  readonly code: string;
  readonly exitCode: number;
  constructor(code: string, message: string, exitCode = 1) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** Bad user input: a config field, a flag, a corpus path. The CLI exits with code 2. */
export class InputError extends KstarError {
  constructor(message: string, code = 'E_INPUT') {
    super(code, message, 2);
  }
}

/** Two plugins that cannot be combined (two optimizers, an optimizer that needs all gradients with gradient release…). */
export class PluginConflictError extends KstarError {
  constructor(message: string) {
    super('E_PLUGIN_CONFLICT', message, 2);
  }
}

/** A requested backend that cannot start. The message names the package to install. */
export class BackendUnavailableError extends KstarError {
  readonly backend: string;
  constructor(backend: string, message: string) {
    super('E_BACKEND_UNAVAILABLE', message, 2);
    this.backend = backend;
  }
}

/** A tensor with the wrong shape or dtype reached a K* function. */
export class ShapeError extends KstarError {
  constructor(message: string) {
    super('E_SHAPE', message, 1);
  }
}

/** Training produced a non-finite loss or a device error: the step's numbers cannot be trusted. */
export class TrainingError extends KstarError {
  readonly step: number;
  constructor(step: number, message: string) {
    super('E_TRAINING', message, 1);
    this.step = step;
  }
}
