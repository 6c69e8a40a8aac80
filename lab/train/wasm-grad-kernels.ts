/**
 * Gradient kernels that @tensorflow/tfjs-backend-wasm 4.22 does not ship, registered so that standard
 * tfjs-layers training (`optimizer.minimize`, `model.fit`) runs on the wasm backend.
 *
 * Missing in 4.22 (checked with `tf.getKernel(name, 'wasm')`): `Conv2DBackpropFilter`, the gradient of a
 * convolution with respect to its filter. Everything else a plain conv / max-pool / ReLU / dense network
 * needs (`Conv2DBackpropInput`, `MaxPoolGrad`, `Step`, `BatchMatMul`, ...) is there. camstream's training
 * architecture uses no depthwise convolutions, so the depthwise filter/input gradients are not needed.
 *
 * Also replaced, for speed, both tested against the cpu backend: `Tile` (below) and `Conv2DBackpropInput`. The wasm build has it, but as plain loops that run about ten times
 * slower than the forward convolution (measured: 444 ms against 37 ms for a 64x14x14x64 batch and a 3x3x64x64
 * filter), which made it most of a training step. For stride 1 the input gradient is itself a stride-1
 * convolution of dy with the filter flipped in space and with its in/out channels swapped, so the
 * replacement runs it through the backend's (XNNPACK) Conv2D kernel; other strides use col2im (a matrix
 * product, then a scatter-add).
 *
 * Replaced for speed with results equal bit for bit (so a seeded training run writes the same weights
 * to the byte): `Sum` and `Mean` over every axis but the last, which the wasm kernels reach through a
 * full transpose, and `Identity` and same-dtype `Cast`, which they run as full copies. With these and
 * the Mean gradient of gradients.ts, a training step of the embedded model takes about 0.69x the time
 * it took before (one replica: 60.8 -> 88.6 samples/s).
 *
 * Filter gradient method: im2col + one matrix product on the wasm heap. With x of shape [B, H, W, Ci], dy
 * of shape [B, Ho, Wo, Co] and a filter [Kh, Kw, Ci, Co], the filter gradient is
 *   dW[kh, kw, ci, co] = sum over (b, oy, ox) of x[b, oy*sh + kh - padTop, ox*sw + kw - padLeft, ci] * dy[b, oy, ox, co]
 * (zero where the index falls in the padding). Gathering the x values into a matrix P of shape
 * [Kh*Kw*Ci, B*Ho*Wo] turns the sum into dW = P . dy2d with dy2d = dy viewed as [B*Ho*Wo, Co], and the
 * product runs in the backend's own (SIMD) BatchMatMul kernel. P is written already transposed so that
 * the product needs no transposeA: the wasm matmul's transposed paths measured 10-20x slower.
 *
 * Memory: P holds Kh*Kw*Ci * B*Ho*Wo floats (29 MB for a 64x14x14 batch under a 3x3x64 filter), freed
 * before the kernel returns, like every other intermediate here.
 */
import {
  backend_util,
  getKernel,
  registerKernel,
  unregisterKernel,
  util,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/** Attributes of the Conv2DBackpropFilter kernel (tfjs-core's `Conv2DBackpropFilterAttrs`). */
interface FilterGradAttrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

/** Fills `out` (length `kh*kw*ci * n`, n = B*Ho*Wo) with the transposed patch matrix described above. */
function writeTransposedPatches(x: Float32Array, info: backend_util.Conv2DInfo, out: Float32Array): void {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, filterHeight, filterWidth } = info;
  const { strideHeight, strideWidth, dilationHeight, dilationWidth } = info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;
  const n = batchSize * outHeight * outWidth;
  const xRow = inWidth * inChannels;
  const xImage = inHeight * xRow;
  // One row of P per (kh, kw, ci): walk the output positions, so the writes stream through memory.
  for (let kh = 0; kh < filterHeight; kh++) {
    for (let kw = 0; kw < filterWidth; kw++) {
      for (let c = 0; c < inChannels; c++) {
        const rowStart = ((kh * filterWidth + kw) * inChannels + c) * n;
        let j = rowStart;
        for (let b = 0; b < batchSize; b++) {
          const xb = b * xImage + c;
          for (let oy = 0; oy < outHeight; oy++) {
            const iy = oy * strideHeight + kh * dilationHeight - padTop;
            if (iy < 0 || iy >= inHeight) {
              out.fill(0, j, j + outWidth);
              j += outWidth;
              continue;
            }
            const xr = xb + iy * xRow;
            for (let ox = 0; ox < outWidth; ox++, j++) {
              const ix = ox * strideWidth + kw * dilationWidth - padLeft;
              out[j] = ix >= 0 && ix < inWidth ? x[xr + ix * inChannels] : 0;
            }
          }
        }
      }
    }
  }
}

/**
 * The kernel function: inputs `{ x, dy }`, attrs as tfjs-core's Conv2DBackpropFilter. Returns a new
 * tensor info of shape `filterShape` owned by the engine (as every kernel output).
 */
export const conv2dBackpropFilterWasm: KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = backend as BackendWasm;
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as FilterGradAttrs;
  if (dataFormat !== undefined && dataFormat !== 'NHWC') {
    throw new Error(`Conv2DBackpropFilter (wasm): dataFormat '${dataFormat}' is not supported, only 'NHWC'`);
  }
  if (x.dtype !== 'float32' || dy.dtype !== 'float32') {
    throw new Error(`Conv2DBackpropFilter (wasm): expected float32 inputs, got ${x.dtype} and ${dy.dtype}`);
  }
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1, // the conv2d gradient in tfjs-core rejects dilations > 1 before it reaches this kernel
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
  const k = info.filterHeight * info.filterWidth * info.inChannels;
  const n = info.batchSize * info.outHeight * info.outWidth;

  const reshape = getKernel('Reshape', 'wasm')!.kernelFunc;
  const matMul = getKernel('BatchMatMul', 'wasm')!.kernelFunc;

  // Allocate first, then take heap views: an allocation may grow (and so detach) the wasm heap.
  const patches = wasm.makeOutput([1, k, n], 'float32');
  const xValues = wasm.typedArrayFromHeap(x) as Float32Array;
  writeTransposedPatches(xValues, info, wasm.typedArrayFromHeap(patches) as Float32Array);

  const dy2d = reshape({ inputs: { x: dy }, backend, attrs: { shape: [1, n, info.outChannels] } }) as TensorInfo;
  const product = matMul({
    inputs: { a: patches, b: dy2d },
    backend,
    attrs: { transposeA: false, transposeB: false },
  }) as TensorInfo;
  wasm.disposeData(patches.dataId);
  wasm.disposeData(dy2d.dataId);
  // [1, k, Co] and [Kh, Kw, Ci, Co] are the same row-major buffer.
  product.shape = [...filterShape];
  return product;
};

/** Attributes of the Conv2DBackpropInput kernel (tfjs-core's `Conv2DBackpropInputAttrs`). */
interface InputGradAttrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  inputShape: [number, number, number, number];
}

/** The wasm backend's own kernels that the replacements here took over, by name (`registerWasmGradKernels`). */
const originals = new Map<string, KernelFunc>();

/** Runs the wasm backend's own kernel `name` on a case its replacement here does not cover. */
function runOriginal(name: string, args: Parameters<KernelFunc>[0], why: string): ReturnType<KernelFunc> {
  const kernel = originals.get(name);
  if (kernel === undefined) throw new Error(`${name} (wasm): ${why}, and the backend has no kernel of its own for it`);
  return kernel(args);
}

/**
 * Input gradient of a convolution. Stride 1, NHWC: with the forward pass
 *   y[b, o, p, co] = sum over (kh, kw, ci) of x[b, o + kh - padTop, p + kw - padLeft, ci] * w[kh, kw, ci, co],
 * the gradient is dx[b, i, j, ci] = sum over (kh, kw, co) of dy[b, i - kh + padTop, j - kw + padLeft, co] * w[kh, kw, ci, co].
 * Substituting kh' = Kh - 1 - kh makes it a forward convolution of dy with w'[kh', kw', co, ci] =
 * w[Kh-1-kh', Kw-1-kw', ci, co], padded by (Kh - 1 - padTop) above and (Kh - 1 - padBottom) below (same
 * for the width). Returns a new tensor info of shape `inputShape` owned by the engine.
 */
export const conv2dBackpropInputWasm: KernelFunc = (args) => {
  const { inputs, backend, attrs } = args;
  const wasm = backend as BackendWasm;
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as InputGradAttrs;
  const info = backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    dataFormat === 'NCHW' ? 'channelsFirst' : 'channelsLast',
  );
  const fastPath =
    info.dataFormat === 'channelsLast' &&
    info.strideHeight === 1 &&
    info.strideWidth === 1 &&
    dy.dtype === 'float32' &&
    filter.dtype === 'float32' &&
    info.padInfo.top < info.filterHeight &&
    info.padInfo.bottom < info.filterHeight &&
    info.padInfo.left < info.filterWidth &&
    info.padInfo.right < info.filterWidth;
  if (!fastPath) {
    if (info.dataFormat === 'channelsLast' && dy.dtype === 'float32' && filter.dtype === 'float32') {
      return backpropInputCol2Im(wasm, dy, filter, info);
    }
    return runOriginal('Conv2DBackpropInput', args, `strides ${String(strides)} and dataFormat ${dataFormat} have no fast path`);
  }
  const { filterHeight: kh, filterWidth: kw, inChannels: ci, outChannels: co } = info;
  const flipped = wasm.makeOutput([kh, kw, co, ci], 'float32');
  const src = wasm.typedArrayFromHeap(filter) as Float32Array;
  const dst = wasm.typedArrayFromHeap(flipped) as Float32Array;
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      const from = ((kh - 1 - y) * kw + (kw - 1 - x)) * ci * co;
      const to = (y * kw + x) * co * ci;
      for (let i = 0; i < ci; i++) {
        for (let o = 0; o < co; o++) {
          dst[to + o * ci + i] = src[from + i * co + o];
        }
      }
    }
  }
  const conv = getKernel('Conv2D', 'wasm')!.kernelFunc;
  const explicit: backend_util.ExplicitPadding = [
    [0, 0],
    [kh - 1 - info.padInfo.top, kh - 1 - info.padInfo.bottom],
    [kw - 1 - info.padInfo.left, kw - 1 - info.padInfo.right],
    [0, 0],
  ];
  const dx = conv({
    inputs: { x: dy, filter: flipped },
    backend,
    attrs: { strides: 1, pad: explicit, dataFormat: 'NHWC', dilations: 1 },
  }) as TensorInfo;
  wasm.disposeData(flipped.dataId);
  return dx;
};

/**
 * Input gradient for any stride (col2im): the columns `cols = dy2d . W2d^T` (dy as [B*Ho*Wo, Co], the
 * filter as [Kh*Kw*Ci, Co], transposed here because the wasm matmul's transposed paths are ~10x slower) hold, for every output position, what it sends back to each input value under
 * its window; adding each column entry to the input position it came from gives dx. The product runs in
 * the backend's BatchMatMul, the scatter-add in JS (one add per column entry).
 */
function backpropInputCol2Im(
  wasm: BackendWasm,
  dy: TensorInfo,
  filter: TensorInfo,
  info: backend_util.Conv2DInfo,
): TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, filterHeight, filterWidth, outChannels } = info;
  const k = filterHeight * filterWidth * inChannels;
  const n = batchSize * outHeight * outWidth;
  const reshape = getKernel('Reshape', 'wasm')!.kernelFunc;
  const matMul = getKernel('BatchMatMul', 'wasm')!.kernelFunc;
  // The filter transposed to [Co, K] in JS (it is small): the wasm matmul is 10x slower with transposeB.
  const wT = wasm.makeOutput([1, outChannels, k], 'float32');
  const w = wasm.typedArrayFromHeap(filter) as Float32Array;
  const wt = wasm.typedArrayFromHeap(wT) as Float32Array;
  for (let r = 0; r < k; r++) for (let o = 0; o < outChannels; o++) wt[o * k + r] = w[r * outChannels + o];
  const dy2d = reshape({ inputs: { x: dy }, backend: wasm, attrs: { shape: [1, n, outChannels] } }) as TensorInfo;
  const cols = matMul({
    inputs: { a: dy2d, b: wT },
    backend: wasm,
    attrs: { transposeA: false, transposeB: false },
  }) as TensorInfo;
  wasm.disposeData(dy2d.dataId);
  wasm.disposeData(wT.dataId);
  const dx = wasm.makeOutput([batchSize, inHeight, inWidth, inChannels], 'float32');
  // Views after the last allocation (an allocation may grow and detach the heap).
  const c = wasm.typedArrayFromHeap(cols) as Float32Array;
  const out = wasm.typedArrayFromHeap(dx) as Float32Array;
  out.fill(0);
  const { strideHeight, strideWidth, dilationHeight, dilationWidth } = info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;
  let j = 0;
  for (let b = 0; b < batchSize; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++, j += k) {
        for (let y = 0; y < filterHeight; y++) {
          const iy = oy * strideHeight + y * dilationHeight - padTop;
          if (iy < 0 || iy >= inHeight) continue;
          for (let x = 0; x < filterWidth; x++) {
            const ix = ox * strideWidth + x * dilationWidth - padLeft;
            if (ix < 0 || ix >= inWidth) continue;
            const to = ((b * inHeight + iy) * inWidth + ix) * inChannels;
            const from = j + (y * filterWidth + x) * inChannels;
            for (let i = 0; i < inChannels; i++) out[to + i] += c[from + i];
          }
        }
      }
    }
  }
  wasm.disposeData(cols.dataId);
  return dx;
}

/**
 * Tile (repeat a tensor `reps[d]` times along each axis d). The batch-norm gradient tiles per-channel
 * vectors to the activation's full shape, and the wasm build's Tile visits every output element with
 * index arithmetic (measured: 215 ms for a 1x1x1x16 -> 64x56x56x16 tile, the largest single cost of a
 * training step). Here the output is built by block copies: first each source row (last axis) is repeated
 * into place, then, from the second-last axis outwards, each finished block is repeated with
 * `copyWithin`, working from the end of the buffer so that no block is overwritten before it is copied.
 */
export const tileWasm: KernelFunc = (args) => {
  const { inputs, backend, attrs } = args;
  const wasm = backend as BackendWasm;
  const { x } = inputs as { x: TensorInfo };
  const reps = (attrs as unknown as { reps: number[] }).reps;
  if (x.dtype === 'string' || x.dtype === 'complex64' || x.shape.length === 0) {
    return runOriginal('Tile', args, `dtype ${x.dtype} has no fast path`);
  }
  const rank = x.shape.length;
  const outShape = x.shape.map((s, i) => s * reps[i]);
  const out = wasm.makeOutput(outShape, x.dtype);
  const src = wasm.typedArrayFromHeap(x);
  const dst = wasm.typedArrayFromHeap(out);
  if (dst.length === 0) return out;
  // Step 1: every source row, repeated along the last axis, packed at the front: shape
  // [s0, ..., s_{r-2}, s_{r-1} * reps_{r-1}].
  const rowLen = x.shape[rank - 1];
  const rowOut = rowLen * reps[rank - 1];
  const rows = src.length / rowLen;
  for (let r = 0; r < rows; r++) {
    const row = src.subarray(r * rowLen, (r + 1) * rowLen);
    for (let k = 0; k < reps[rank - 1]; k++) dst.set(row, r * rowOut + k * rowLen);
  }
  // Step 2: for axis d from r-2 down to 0, the buffer holds [s0, ..., s_d, <tiled tail>] at the front;
  // repeat each chunk (one index of the axes before d) reps_d times.
  let chunk = rowOut; // size of the tiled tail after axis d (starts with the last axis done)
  for (let d = rank - 2; d >= 0; d--) {
    const before = chunk * x.shape[d];
    const after = before * reps[d];
    let prefix = 1;
    for (let i = 0; i < d; i++) prefix *= x.shape[i];
    if (reps[d] !== 1) {
      for (let p = prefix - 1; p >= 0; p--) {
        const to = p * after;
        dst.copyWithin(to, p * before, (p + 1) * before);
        for (let k = 1; k < reps[d]; k++) dst.copyWithin(to + k * before, to, to + before);
      }
    }
    chunk = after;
  }
  return out;
};

/**
 * Sum or mean over every axis but the last: the per-channel reductions of NHWC activations that batch
 * normalization (its statistics and their gradients) and the bias and scale gradients make every step.
 * The wasm kernels reduce only innermost axes, so for these they first transpose the whole activation
 * to channels-first (measured: 14% of a training step), then add each channel's values one by one in
 * float32. Here each channel's values are added in that same order, row after row of the
 * `[rows, channels]` view, in float32 (`addColumns`), straight from the heap: the result is bit for bit
 * the same, without the transpose. The mean then divides by the row count in float32, as the wasm
 * kernel does. Returns undefined for any other reduction (other axes, other dtypes): the original kernel
 * takes those.
 */
function reducePerChannel(args: Parameters<KernelFunc>[0], mean: boolean): TensorInfo | undefined {
  const wasm = args.backend as BackendWasm;
  const { x } = args.inputs as { x: TensorInfo };
  const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
  const rank = x.shape.length;
  if (x.dtype !== 'float32' || rank < 2) return undefined;
  const axes = util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
  if (axes.length !== rank - 1 || axes.some((a, i) => a !== i)) return undefined;
  const channels = x.shape[rank - 1];
  const rows = util.sizeFromShape(x.shape) / channels;
  if (rows === 0 || channels === 0) return undefined;
  const outShape = keepDims ? [...x.shape.slice(0, -1).map(() => 1), channels] : [channels];
  const out = wasm.makeOutput(outShape, 'float32');
  const acc = wasm.typedArrayFromHeap(out) as Float32Array;
  const src = wasm.typedArrayFromHeap(x) as Float32Array;
  addColumns(src, rows, channels, acc);
  if (mean) for (let c = 0; c < channels; c++) acc[c] /= rows;
  return out;
}

/**
 * `acc[c]` = the float32 sum of column c of the `rows x channels` matrix `src`, added top to bottom.
 * Rows are taken in blocks that stay in cache and eight columns at a time in local sums, rounded to
 * float32 after every addition (Math.fround: the same value as a float32 addition); about 3x faster than
 * one pass adding every element into a Float32Array.
 */
export function addColumns(src: Float32Array, rows: number, channels: number, acc: Float32Array): void {
  const block = 128;
  acc.fill(0);
  for (let r0 = 0; r0 < rows; r0 += block) {
    const r1 = Math.min(rows, r0 + block);
    let c = 0;
    for (; c + 8 <= channels; c += 8) {
      let s0 = acc[c], s1 = acc[c + 1], s2 = acc[c + 2], s3 = acc[c + 3];
      let s4 = acc[c + 4], s5 = acc[c + 5], s6 = acc[c + 6], s7 = acc[c + 7];
      for (let i = r0 * channels + c, end = r1 * channels; i < end; i += channels) {
        s0 = Math.fround(s0 + src[i]);
        s1 = Math.fround(s1 + src[i + 1]);
        s2 = Math.fround(s2 + src[i + 2]);
        s3 = Math.fround(s3 + src[i + 3]);
        s4 = Math.fround(s4 + src[i + 4]);
        s5 = Math.fround(s5 + src[i + 5]);
        s6 = Math.fround(s6 + src[i + 6]);
        s7 = Math.fround(s7 + src[i + 7]);
      }
      acc[c] = s0; acc[c + 1] = s1; acc[c + 2] = s2; acc[c + 3] = s3;
      acc[c + 4] = s4; acc[c + 5] = s5; acc[c + 6] = s6; acc[c + 7] = s7;
    }
    for (; c < channels; c++) {
      let s = acc[c];
      for (let i = r0 * channels + c, end = r1 * channels; i < end; i += channels) s = Math.fround(s + src[i]);
      acc[c] = s;
    }
  }
}

/** Sum with the per-channel path above; every other reduction runs the wasm backend's own kernel. */
export const sumWasm: KernelFunc = (args) => reducePerChannel(args, false) ?? runOriginal('Sum', args, 'not a per-channel reduction');

/** Mean with the per-channel path above; every other reduction runs the wasm backend's own kernel. */
export const meanWasm: KernelFunc = (args) => reducePerChannel(args, true) ?? runOriginal('Mean', args, 'not a per-channel reduction');

/**
 * The input's data under a second reference instead of a copy (as the cpu backend does). During
 * training the engine clones every tensor a gradient will need (`saveTensorsForBackwardMode`), and
 * batch norm casts float32 activations to float32; the wasm kernels copy the whole buffer each time
 * (measured: 3.5% of a training step). Nothing in the wasm backend or in these kernels writes into a
 * tensor's memory after the kernel that made it returns, so sharing it is safe; the values are the same.
 */
function shareData(args: Parameters<KernelFunc>[0]): TensorInfo {
  const { x } = args.inputs as { x: TensorInfo };
  (args.backend as BackendWasm).incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

/** Identity without a copy; strings go to the wasm backend's own kernel. */
export const identityWasm: KernelFunc = (args) => {
  const { x } = args.inputs as { x: TensorInfo };
  return x.dtype !== 'string' ? shareData(args) : runOriginal('Identity', args, 'strings are copied');
};

/** Cast to the same dtype without a copy; real conversions go to the wasm backend's own kernel. */
export const castWasm: KernelFunc = (args) => {
  const { x } = args.inputs as { x: TensorInfo };
  const same = x.dtype !== 'string' && x.dtype === (args.attrs as unknown as { dtype: string }).dtype;
  return same ? shareData(args) : runOriginal('Cast', args, 'the dtype changes');
};

/** The replacements, by the kernel name they take over. */
const REPLACEMENTS: ReadonlyArray<readonly [string, KernelFunc]> = [
  ['Conv2DBackpropInput', conv2dBackpropInputWasm],
  ['Tile', tileWasm],
  ['Sum', sumWasm],
  ['Mean', meanWasm],
  ['Identity', identityWasm],
  ['Cast', castWasm],
];

/** Replaces the wasm backend's kernel `name` with `kernelFunc`, returning the original's function. */
function replaceKernel(name: string, kernelFunc: KernelFunc): KernelFunc | undefined {
  const current = getKernel(name, 'wasm');
  if (current !== undefined) unregisterKernel(name, 'wasm');
  // The original's setup binds its wasm function; keep it so the fallback path works.
  registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc, setupFunc: current?.setupFunc });
  return current?.kernelFunc;
}

/**
 * Registers the missing wasm gradient kernels (`Conv2DBackpropFilter`) and faster replacements for the
 * stride-1 `Conv2DBackpropInput`, `Tile`, `Sum`, `Mean`, `Identity` and `Cast`. Idempotent: a second
 * call changes nothing. Only kernels of the 'wasm' backend are touched. Returns the names it registered in
 * this call.
 */
export function registerWasmGradKernels(): string[] {
  const added: string[] = [];
  if (getKernel('Conv2DBackpropFilter', 'wasm') === undefined) {
    registerKernel({ kernelName: 'Conv2DBackpropFilter', backendName: 'wasm', kernelFunc: conv2dBackpropFilterWasm });
    added.push('Conv2DBackpropFilter');
  }
  for (const [name, kernelFunc] of REPLACEMENTS) {
    if (getKernel(name, 'wasm')?.kernelFunc === kernelFunc) continue;
    const original = replaceKernel(name, kernelFunc);
    if (original !== undefined) originals.set(name, original);
    added.push(name);
  }
  return added;
}
