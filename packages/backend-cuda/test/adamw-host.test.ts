import { afterAll, beforeAll, expect, it } from 'vitest';
import { adamwSource, adamwVec4Source } from '../src/kstar-sources.ts';
import * as host from './host-build.ts';

const { hostCxx } = host;

// The 128-bit AdamW (4 elements a thread) built for the host must write exactly what the one-element kernel writes:
// a swapped or skipped component shows as different bits. Needs a C++ compiler (skipped without).

const SHIMS = `${host.HOST_SHIMS_HEAD}struct float4 { float x, y, z, w; };
`;

const N = 24;
const MAIN = `
int main() {
  float p1[${N}], g[${N}], m1[${N}], v1[${N}], p4[${N}], m4[${N}], v4[${N}];
  for (int i = 0; i < ${N}; ++i) if (scanf("%f %f %f %f", &p1[i], &g[i], &m1[i], &v1[i]) != 4) return 2;
  memcpy(p4, p1, sizeof p1); memcpy(m4, m1, sizeof m1); memcpy(v4, v1, sizeof v1);
  const float c[8] = {0.9f, 0.1f, 0.999f, 0.001f, 0.999f, 0.0123f, 0.0316f, 1e-8f};
  k_one::one(p1, g, m1, v1, ${N}, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]);
  k_vec4::vec4((float4*)p4, (const float4*)g, (float4*)m4, (float4*)v4, ${N / 4}, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]);
  const float* all[6] = {p1, m1, v1, p4, m4, v4};
  for (const float* a : all) {
    for (int i = 0; i < ${N}; ++i) { unsigned int u; memcpy(&u, &a[i], 4); printf("%u ", u); }
    printf("\\n");
  }
}
`;

let dir = '';
beforeAll(() => {
  if (!hostCxx) return;
  const unit = host.namespacedUnit({ one: adamwSource('one'), vec4: adamwVec4Source('vec4') });
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

it.skipIf(!hostCxx)('the 128-bit AdamW equals the one-element kernel bit for bit', () => {
  const [p, g, m] = [1, 2, 3].map((s) => host.floats(N, s, -1, 1));
  const v = host.floats(N, 4, 0, 0.5);
  const input = Array.from({ length: N }, (_, i) => `${p![i]} ${g![i]} ${m![i]} ${v[i]}`).join('\n');
  const [p1, m1, v1, p4, m4, v4] = host.runHost(dir, [], input);
  expect(p1).toHaveLength(N);
  expect(p1).not.toEqual(host.bitsOf(p!)); // the update changed the parameters
  expect(p4).toEqual(p1);
  expect(m4).toEqual(m1);
  expect(v4).toEqual(v1);
});
