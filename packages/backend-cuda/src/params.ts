/**
 * Kernel parameters as cuLaunchKernel takes them: an array of pointers, one per parameter, each pointing at the
 * parameter's bytes. Scalars and by-value structs are laid out here (C alignment rules) as plain bytes; the device
 * copies them into native memory before the launch.
 */

export type Param =
  | { kind: 'ptr'; value: number }
  | { kind: 'i64'; value: number }
  | { kind: 'i32'; value: number }
  | { kind: 'f32'; value: number }
  | { kind: 'struct'; value: Uint8Array };

export const ptr = (value: number): Param => ({ kind: 'ptr', value });
export const i64 = (value: number): Param => ({ kind: 'i64', value });
export const i32 = (value: number): Param => ({ kind: 'i32', value });
export const f32 = (value: number): Param => ({ kind: 'f32', value });

/** Builds a C struct's bytes field by field: int arrays align to 4, long long arrays to 8, the end to the largest. */
export class StructBuilder {
  private readonly bytes: number[] = [];
  private align = 4;

  private pad(to: number): void {
    while (this.bytes.length % to !== 0) this.bytes.push(0);
  }

  int(values: readonly number[] | number, length = typeof values === 'number' ? 1 : values.length): this {
    this.pad(4);
    const b = new DataView(new ArrayBuffer(4 * length));
    for (let i = 0; i < length; i++)
      b.setInt32(4 * i, typeof values === 'number' ? values : (values[i] ?? 0), true);
    this.bytes.push(...new Uint8Array(b.buffer));
    return this;
  }

  float(values: readonly number[], length = values.length): this {
    this.pad(4);
    const b = new DataView(new ArrayBuffer(4 * length));
    for (let i = 0; i < length; i++) b.setFloat32(4 * i, values[i] ?? 0, true);
    this.bytes.push(...new Uint8Array(b.buffer));
    return this;
  }

  longLong(values: readonly number[], length = values.length): this {
    this.pad(8);
    this.align = 8;
    const b = new DataView(new ArrayBuffer(8 * length));
    for (let i = 0; i < length; i++) b.setBigInt64(8 * i, BigInt(values[i] ?? 0), true);
    this.bytes.push(...new Uint8Array(b.buffer));
    return this;
  }

  build(): Param {
    this.pad(this.align);
    return { kind: 'struct', value: Uint8Array.from(this.bytes) };
  }
}

/** Bytes each parameter occupies. */
export function paramSize(p: Param): number {
  switch (p.kind) {
    case 'ptr':
    case 'i64':
      return 8;
    case 'i32':
    case 'f32':
      return 4;
    case 'struct':
      return p.value.length;
  }
}

/**
 * Writes `params` into `view` (native memory at address `base`): the pointer array first, then each value at an
 * 8-byte aligned offset. Returns the address of the pointer array.
 */
export function packParams(params: readonly Param[], view: DataView, base: bigint): bigint {
  let offset = Math.ceil((params.length * 8) / 16) * 16;
  params.forEach((p, i) => {
    view.setBigUint64(8 * i, base + BigInt(offset), true);
    switch (p.kind) {
      case 'ptr':
      case 'i64':
        view.setBigInt64(offset, BigInt(p.value), true);
        break;
      case 'i32':
        view.setInt32(offset, p.value, true);
        break;
      case 'f32':
        view.setFloat32(offset, p.value, true);
        break;
      case 'struct':
        new Uint8Array(view.buffer, view.byteOffset + offset, p.value.length).set(p.value);
        break;
    }
    offset += Math.ceil(paramSize(p) / 8) * 8;
    if (offset > view.byteLength)
      throw new Error(`kernel parameters need more than ${view.byteLength} bytes`);
  });
  return base;
}
