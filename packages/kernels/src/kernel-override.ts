import * as tf from '@tensorflow/tfjs-core';

/**
 * Replaces some of one backend's tfjs kernels by wrappers around them, restorably (K*'s wasm matMul fix, K*'s WebGPU
 * matmul). A global symbol marks a wrapper, so a second copy of this module does not wrap a wrapper.
 */
export interface KernelOverride {
  /** Installs the wrappers (idempotent; skips a kernel the backend has not registered yet). */
  install(): void;
  /** Puts the backend's own kernels back (`install` wraps them again). */
  restore(): void;
}

export function kernelOverride(
  tag: string,
  backendName: string,
  kernelNames: readonly string[],
  wrap: (original: tf.KernelFunc, kernelName: string) => tf.KernelFunc,
): KernelOverride {
  const marker = Symbol.for(`kstar.${tag}`);
  const originals = new Map<string, tf.KernelConfig>();
  return {
    install() {
      for (const name of kernelNames) {
        const config = tf.getKernel(name, backendName);
        if (!config || (config.kernelFunc as { [marker]?: boolean })[marker]) continue;
        const kernelFunc = wrap(config.kernelFunc, name);
        (kernelFunc as { [marker]?: boolean })[marker] = true;
        originals.set(name, config);
        tf.unregisterKernel(name, backendName);
        tf.registerKernel({ ...config, kernelFunc });
      }
    },
    restore() {
      for (const [name, config] of originals) {
        tf.unregisterKernel(name, backendName);
        tf.registerKernel(config);
      }
      originals.clear();
    },
  };
}
