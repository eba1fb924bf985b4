import { BackendUnavailableError } from '@kstar/core';
import { describe, expect, it } from 'vitest';
import { LIBRARY_CANDIDATES, loadCudaLibraries, openFirst, unavailableError } from '../src/native.ts';

describe('the unavailable error', () => {
  it('names the missing library, what each name said and what to install', () => {
    const r = openFirst(LIBRARY_CANDIDATES.nvrtc, (n) => {
      throw new Error(`${n}: cannot open shared object file`);
    });
    expect('errors' in r && r.errors).toHaveLength(3);
    const e = unavailableError('nvrtc', 'errors' in r ? r.errors : []);
    expect(e).toBeInstanceOf(BackendUnavailableError);
    expect(e.backend).toBe('cuda');
    expect(e.message).toMatch(/libnvrtc\.so\.13 could not be loaded/);
    expect(e.message).toMatch(/libnvrtc\.so\.12: libnvrtc\.so\.12: cannot open/);
    expect(e.message).toMatch(/KSTAR_LIBNVRTC/);
  });

  it('openFirst takes the first name that opens', () => {
    const r = openFirst(['a', undefined, 'b', 'c'], (n) => {
      if (n === 'a') throw new Error('no');
      return n.toUpperCase();
    });
    expect(r).toEqual({ lib: 'B', name: 'b' });
  });

  it('loading on a machine without libcuda throws BackendUnavailableError naming libcuda.so.1', async () => {
    const saved = process.env.KSTAR_LIBCUDA;
    process.env.KSTAR_LIBCUDA = '/nonexistent/libcuda.so.1';
    try {
      await loadCudaLibraries();
      // A machine with the driver loads it; only the error path is this test's business.
    } catch (e) {
      expect(e).toBeInstanceOf(BackendUnavailableError);
      expect((e as Error).message).toMatch(/could not be loaded .*\/nonexistent\/libcuda\.so\.1/);
    } finally {
      if (saved === undefined) delete process.env.KSTAR_LIBCUDA;
      else process.env.KSTAR_LIBCUDA = saved;
    }
  });
});
