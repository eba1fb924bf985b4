// A probe of Dawn's f16 and subgroup-matrix support on the device machine (run from the bundle folder, where the
// `webgpu` package resolves): adapter features and subgroup-matrix configurations, then one 16×16×16 product per
// operand layout (row- and column-major left and right) through subgroupMatrixLoad / MultiplyAccumulate / Store,
// checked against a float64 product. Prints JSON. `node webgpu-f16-probe.mjs` (scripts/gpu-run.sh F16_PROBE=1).
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
const gpu = create(['enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia']);
const adapter = await gpu.requestAdapter();
const info = adapter.info;
const out = {
  features: [...adapter.features].sort(),
  vendor: info.vendor,
  architecture: info.architecture,
  description: info.description,
  subgroupMinSize: info.subgroupMinSize,
  subgroupMaxSize: info.subgroupMaxSize,
  subgroupMatrixConfigs: info.subgroupMatrixConfigs
    ? Array.from(info.subgroupMatrixConfigs, (c) => ({
        ...c,
        M: c.M,
        N: c.N,
        K: c.K,
        componentType: c.componentType,
        resultComponentType: c.resultComponentType,
      }))
    : null,
  layouts: [],
};
const wanted = ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix'].filter((f) =>
  adapter.features.has(f),
);
const device = await adapter.requestDevice({ requiredFeatures: wanted });
const A = Float32Array.from({ length: 256 }, (_, i) => Math.sin(i * 0.37) * 2);
const B = Float32Array.from({ length: 256 }, (_, i) => Math.cos(i * 0.11) * 1.5);
const ref = new Float64Array(256);
for (let r = 0; r < 16; r++)
  for (let c = 0; c < 16; c++) {
    let s = 0;
    for (let k = 0; k < 16; k++) s += Math.fround(A[r * 16 + k]) * B[k * 16 + c];
    ref[r * 16 + c] = s;
  }
for (const [aCol, bCol] of [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
]) {
  // Workgroup copies in the layout under test: row-major M[r][c] at r*16+c, column-major at c*16+r.
  const code = `enable f16;
enable chromium_experimental_subgroup_matrix;
@group(0) @binding(0) var<storage, read> A : array<f32>;
@group(0) @binding(1) var<storage, read> B : array<f32>;
@group(0) @binding(2) var<storage, read_write> C : array<f32>;
var<workgroup> As : array<f16, 256>;
var<workgroup> Bs : array<f16, 256>;
@compute @workgroup_size(32)
fn main(@builtin(local_invocation_index) li : u32) {
  for (var e = li; e < 256u; e = e + 32u) {
    let r = e / 16u; let c = e % 16u;
    As[${aCol ? 'c * 16u + r' : 'e'}] = f16(A[e]);
    Bs[${bCol ? 'c * 16u + r' : 'e'}] = f16(B[e]);
  }
  workgroupBarrier();
  let a = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>>(&As, 0u, ${aCol}, 16u);
  let b = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>>(&Bs, 0u, ${bCol}, 16u);
  var acc : subgroup_matrix_result<f32, 16, 16>;
  acc = subgroupMatrixMultiplyAccumulate(a, b, acc);
  subgroupMatrixStore(&C, 0u, acc, false, 16u);
}`;
  const row = { aColMajor: aCol, bColMajor: bCol, messages: [], maxRelErr: null, error: null };
  try {
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ code });
    const ci = await module.getCompilationInfo();
    row.messages = ci.messages.map((m) => `${m.type} ${m.lineNum}:${m.linePos} ${m.message}`);
    const pipeline = device.createComputePipeline({
      layout: 'auto',
      compute: { module, entryPoint: 'main' },
    });
    const buf = (data, usage) => {
      const b = device.createBuffer({ size: data.byteLength, usage, mappedAtCreation: true });
      new Float32Array(b.getMappedRange()).set(data);
      b.unmap();
      return b;
    };
    const S = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC;
    const bA = buf(A, S);
    const bB = buf(B, S);
    const bC = buf(new Float32Array(256), S);
    const read = device.createBuffer({
      size: 1024,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const bind = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [bA, bB, bC].map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bind);
    pass.dispatchWorkgroups(1);
    pass.end();
    enc.copyBufferToBuffer(bC, 0, read, 0, 1024);
    device.queue.submit([enc.finish()]);
    const err = await device.popErrorScope();
    if (err) row.error = err.message;
    await read.mapAsync(GPUMapMode.READ);
    const got = new Float32Array(read.getMappedRange().slice(0));
    let d = 0;
    let m = 0;
    for (let i = 0; i < 256; i++) {
      d = Math.max(d, Math.abs(got[i] - ref[i]));
      m = Math.max(m, Math.abs(ref[i]));
    }
    row.maxRelErr = d / m;
  } catch (e) {
    row.error = String(e?.message ?? e);
  }
  out.layouts.push(row);
}
console.log(JSON.stringify(out, null, 2));
device.destroy();
