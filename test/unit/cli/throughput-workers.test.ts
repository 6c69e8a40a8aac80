/**
 * How `video` spreads the model over the cores (cli/model.ts throughputWorkers): an INT8 model on ONNX
 * Runtime's CPU provider gets one single-threaded session per core; an explicit --threads or --workers wins;
 * everything else keeps one session.
 */
import { describe, expect, it } from 'vitest';
import { throughputWorkers } from '../../../cli/model.ts';

describe('throughputWorkers', () => {
  it('gives an int8 model on the CPU one 1-thread session per core', () => {
    expect(throughputWorkers({ int8: true }, 2)).toEqual({ workers: 2, threads: 1 });
    expect(throughputWorkers({ int8: true, backend: 'cpu' }, 8)).toEqual({ workers: 8, threads: 1 });
  });

  it('keeps one session for fp32, another provider, an explicit --threads, or a single core', () => {
    expect(throughputWorkers({}, 2)).toEqual({ workers: 1, threads: undefined });
    expect(throughputWorkers({ int8: true, backend: 'cuda' }, 2)).toEqual({ workers: 1, threads: undefined });
    expect(throughputWorkers({ int8: true, threads: 2 }, 2)).toEqual({ workers: 1, threads: 2 });
    expect(throughputWorkers({ int8: true }, 1)).toEqual({ workers: 1, threads: undefined });
  });

  it('shares the cores out among explicit --workers unless --threads is given', () => {
    expect(throughputWorkers({ workers: 2 }, 2)).toEqual({ workers: 2, threads: 1 });
    expect(throughputWorkers({ workers: 2 }, 8)).toEqual({ workers: 2, threads: 4 });
    expect(throughputWorkers({ workers: 3 }, 2)).toEqual({ workers: 3, threads: 1 });
    expect(throughputWorkers({ workers: 2, threads: 2, int8: true }, 2)).toEqual({ workers: 2, threads: 2 });
    expect(throughputWorkers({ workers: 1, int8: true }, 2)).toEqual({ workers: 1, threads: 2 });
  });
});
