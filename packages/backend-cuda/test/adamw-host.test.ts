import { afterAll, beforeAll, expect, it } from 'vitest';
import { ADAMW_GROUP, adamwMultiSource, adamwSource, adamwVec4Source } from '../src/kstar-sources.ts';
import * as host from './host-build.ts';

const { hostCxx } = host;

// The 128-bit AdamW (4 elements a thread) and the batched AdamW (two tensors in one launch, one through its 128-bit
// loop, one element a thread for the other) built for the host must write exactly what the one-element kernel writes:
// a swapped or skipped component, or a tensor's update landing in the other's buffers, shows as different bits. Needs a
// C++ compiler (skipped without).

const SHIMS = `${host.HOST_SHIMS_HEAD}struct float4 { float x, y, z, w; };
`;

const N = 24;
const MAIN = `
int main() {
  float p1[${N}], g[${N}], m1[${N}], v1[${N}], p4[${N}], m4[${N}], v4[${N}], p0[${N}], m0[${N}], v0[${N}];
  for (int i = 0; i < ${N}; ++i) if (scanf("%f %f %f %f", &p1[i], &g[i], &m1[i], &v1[i]) != 4) return 2;
  memcpy(p4, p1, sizeof p1); memcpy(m4, m1, sizeof m1); memcpy(v4, v1, sizeof v1);
  memcpy(p0, p1, sizeof p1); memcpy(m0, m1, sizeof m1); memcpy(v0, v1, sizeof v1);
  const float c[8] = {0.9f, 0.1f, 0.999f, 0.001f, 0.999f, 0.0123f, 0.0316f, 1e-8f};
  k_one::one(p1, g, m1, v1, ${N}, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]);
  k_vec4::vec4((float4*)p4, (const float4*)g, (float4*)m4, (float4*)v4, ${N / 4}, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]);
  // The batched kernel: tensor 0 = elements [0, 16) as float4s, tensor 1 = elements [16, N) one by one.
  float pb[${N}], mb[${N}], vb[${N}];
  memcpy(pb, p0, sizeof pb); memcpy(mb, m0, sizeof mb); memcpy(vb, v0, sizeof vb);
  k_multi::AdamwGroup u{};
  const long long starts[2] = {0, 16}, lengths[2] = {4, ${N} - 16};
  for (int t = 0; t < 2; ++t) {
    u.p[t] = (long long)(pb + starts[t]); u.g[t] = (long long)(g + starts[t]);
    u.m[t] = (long long)(mb + starts[t]); u.v[t] = (long long)(vb + starts[t]);
    u.n[t] = lengths[t]; u.vec4[t] = t == 0;
    for (int j = 0; j < 8; ++j) u.k[t][j] = c[j];
  }
  for (blockIdx.y = 0; blockIdx.y < 2; ++blockIdx.y) k_multi::multi(u);
  const float* all[9] = {p1, m1, v1, p4, m4, v4, pb, mb, vb};
  for (const float* a : all) {
    for (int i = 0; i < ${N}; ++i) { unsigned int u; memcpy(&u, &a[i], 4); printf("%u ", u); }
    printf("\\n");
  }
}
`;

let dir = '';
beforeAll(() => {
  if (!hostCxx) return;
  const unit = host.namespacedUnit({
    one: adamwSource('one'),
    vec4: adamwVec4Source('vec4'),
    multi: adamwMultiSource('multi'),
  });
  dir = host.buildHost(
    'kstar-adamw-host-',
    { 'main.cpp': `${SHIMS}${unit.replaceAll('extern "C" ', '')}${MAIN}` },
    hostCxx,
    ['-O1', '-ffp-contract=off'],
  );
});
afterAll(() => {
  if (dir) host.removeHostBuild(dir);
});

it.skipIf(!hostCxx)('the 128-bit and the batched AdamW equal the one-element kernel bit for bit', () => {
  const [p, g, m] = [1, 2, 3].map((s) => host.floats(N, s, -1, 1));
  const v = host.floats(N, 4, 0, 0.5);
  const input = Array.from({ length: N }, (_, i) => `${p![i]} ${g![i]} ${m![i]} ${v[i]}`).join('\n');
  const [p1, m1, v1, p4, m4, v4, pb, mb, vb] = host.runHost(dir, [], input);
  expect(p1).toHaveLength(N);
  expect(p1).not.toEqual(host.bitsOf(p!)); // the update changed the parameters
  expect(p4).toEqual(p1);
  expect(m4).toEqual(m1);
  expect(v4).toEqual(v1);
  expect(pb).toEqual(p1);
  expect(mb).toEqual(m1);
  expect(vb).toEqual(v1);
  expect(ADAMW_GROUP).toBe(32); // the struct the queue builds (adamw-queue.ts) has 32 rows
});
