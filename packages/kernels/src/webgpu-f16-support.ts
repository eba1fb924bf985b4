/**
 * What the f16-mixed WebGPU matmul (webgpu-matmul-f16-program.ts) needs from Dawn and the adapter, and the checks that
 * send it back to float32 where that is missing.
 *
 * Dawn offers `shader-f16` and `chromium-experimental-subgroup-matrix` on NVIDIA's Vulkan driver only with the toggles
 * `allow_unsafe_apis,vulkan_enable_f16_on_nvidia` (`F16_DAWN_TOGGLES`); lavapipe and browsers without
 * `--enable-dawn-features` offer neither, and then every matmul stays float32 (one log line says why).
 */

/** The precision of WebGPU matmuls: `strict` float32, or f16 operands with f32 accumulation on tensor cores. */
export type WebGPUMatMulPrecision = 'strict' | 'f16-mixed';

/** Dawn toggles that expose f16 and subgroup matrices on NVIDIA (passed as `enable-dawn-features=`). */
export const F16_DAWN_TOGGLES = ['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia'];

/** Device features the f16 kernel needs (`subgroups` is a prerequisite of subgroup matrices in Dawn). */
export const F16_FEATURES = ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix'];

/**
 * Dawn's options for `create()`: `base` (KSTAR_DAWN_FLAGS, space-separated) plus, for f16-mixed, the toggles of
 * `F16_DAWN_TOGGLES` merged into its `enable-dawn-features=` list (one option: Dawn keeps only the last of a key).
 */
export function dawnOptions(base: string, precision: WebGPUMatMulPrecision): string[] {
  const options = base.split(/\s+/).filter(Boolean);
  if (precision !== 'f16-mixed') return options;
  const key = 'enable-dawn-features=';
  const i = options.findIndex((o) => o.startsWith(key));
  const have = i < 0 ? [] : options[i]!.slice(key.length).split(',').filter(Boolean);
  const merged = `${key}${[...new Set([...have, ...F16_DAWN_TOGGLES])].join(',')}`;
  if (i < 0) options.push(merged);
  else options[i] = merged;
  return options;
}

interface AdapterLike {
  readonly features: ReadonlySet<string>;
  readonly info?: unknown;
}

interface SubgroupMatrixConfig {
  M: number;
  N: number;
  K: number;
  componentType: string;
  resultComponentType: string;
}

/**
 * Whether the adapter can run the f16 kernel: the features of `F16_FEATURES`, 32-wide subgroups (the kernel numbers
 * its subgroups as local index / 32) and, where the adapter lists them, a 16×16×16 f16 → f32 subgroup matrix.
 * `reason` says what is missing.
 */
export function subgroupMatrixSupport(adapter: AdapterLike): { ok: boolean; reason: string } {
  const missing = F16_FEATURES.filter((f) => !adapter.features.has(f));
  if (missing.length)
    return {
      ok: false,
      reason: `the adapter lacks ${missing.join(', ')} (Dawn on NVIDIA offers them with enable-dawn-features=${F16_DAWN_TOGGLES.join(',')})`,
    };
  const info = (adapter.info ?? {}) as {
    subgroupMinSize?: number;
    subgroupMaxSize?: number;
    subgroupMatrixConfigs?: SubgroupMatrixConfig[];
  };
  if (info.subgroupMinSize !== undefined && (info.subgroupMinSize !== 32 || info.subgroupMaxSize !== 32))
    return {
      ok: false,
      reason: `subgroups are ${info.subgroupMinSize}–${info.subgroupMaxSize} wide; the kernel needs exactly 32`,
    };
  const configs = info.subgroupMatrixConfigs;
  if (
    configs &&
    !Array.from(configs).some(
      (c) =>
        c.M === 16 &&
        c.N === 16 &&
        c.K === 16 &&
        c.componentType === 'f16' &&
        c.resultComponentType === 'f32',
    )
  )
    return { ok: false, reason: 'no 16×16×16 f16→f32 subgroup matrix among the adapter’s configurations' };
  return { ok: true, reason: 'f16 operands, f32 accumulation on subgroup matrices (16×16×16)' };
}

/**
 * Moves WGSL global directives (`enable …;`, `diagnostic(…);`) found anywhere in a shader to its top, once each:
 * tfjs's prelude precedes a program's own code, and WGSL requires directives before any declaration.
 */
export function hoistShaderDirectives(code: string): string {
  const directive = /^[ \t]*((?:enable|requires)[ \t]+[\w, \t]+;|diagnostic[ \t]*\([\w., \t]+\);)[ \t]*$/gm;
  const found: string[] = [];
  const body = code.replace(directive, (_, d: string) => {
    if (!found.includes(d)) found.push(d);
    return '';
  });
  return found.length ? `${found.join('\n')}\n${body}` : code;
}

interface ShaderDevice {
  createShaderModule(descriptor: { code: string; label?: string }): unknown;
}

/** Wraps `device.createShaderModule` so every module gets `hoistShaderDirectives` (idempotent). */
export function installDirectiveHoisting(device: object): void {
  const d = device as ShaderDevice & { __kstarHoisting?: boolean };
  if (d.__kstarHoisting) return;
  const original = d.createShaderModule.bind(d);
  d.createShaderModule = (descriptor) =>
    original({ ...descriptor, code: hoistShaderDirectives(descriptor.code) });
  d.__kstarHoisting = true;
}

const supportByDevice = new WeakMap<object, { ok: boolean; reason: string }>();

/** Records what `subgroupMatrixSupport` found for the adapter a device came from (webgpu-node.ts). */
export function recordSubgroupMatrixSupport(device: object, support: { ok: boolean; reason: string }): void {
  supportByDevice.set(device, support);
}

/** The support recorded for a device; devices created elsewhere (a browser's) were not checked: not supported. */
export function deviceSubgroupMatrixSupport(device: object | undefined): { ok: boolean; reason: string } {
  return (
    (device && supportByDevice.get(device)) ?? {
      ok: false,
      reason: 'the device was not created with the f16 features (only the Node WebGPU backend requests them)',
    }
  );
}

let precisionSetting: WebGPUMatMulPrecision | null = null;

/** Parses a precision name (`KSTAR_WEBGPU_MATMUL_PRECISION`, `--matmul-precision`); throws naming the value. */
export function parseWebGPUMatMulPrecision(value: string): WebGPUMatMulPrecision {
  if (value === 'strict' || value === 'f16-mixed') return value;
  throw new Error(
    `the WebGPU matmul precision must be strict or f16-mixed; got '${value}' (tf32 is for --backend cuda)`,
  );
}

/** The precision of WebGPU matmuls: `setWebGPUMatMulPrecision`'s, else `KSTAR_WEBGPU_MATMUL_PRECISION`, else strict. */
export function webgpuMatMulPrecision(): WebGPUMatMulPrecision {
  if (precisionSetting) return precisionSetting;
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  return parseWebGPUMatMulPrecision((env?.KSTAR_WEBGPU_MATMUL_PRECISION ?? 'strict').trim() || 'strict');
}

/**
 * Sets the precision of WebGPU matmuls (`null`: back to the environment's). f16-mixed needs Dawn's toggles when the
 * device is created: set it before `selectBackend('webgpu')`.
 */
export function setWebGPUMatMulPrecision(precision: WebGPUMatMulPrecision | null): void {
  precisionSetting = precision;
}
