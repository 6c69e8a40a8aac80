/**
 * The image input of an ONNX model: its name, layout, size and batch as far as the file (and camstream.json)
 * tell, checked against what camstream feeds (one float32 RGB image batch).
 */
import { ModelLoadError } from '../../common/errors.ts';
import type { ModelFileConfig } from '../types.ts';
import type { GraphView } from './graph.ts';
import { DataType } from './proto.ts';

/** The image input of an ONNX model, as far as the file tells. */
export interface OnnxInput {
  name: string;
  /** Layout of the input tensor (from `camstream.json`, else from where the 3 channels sit). */
  layout: 'nchw' | 'nhwc';
  /** `[height, width]` when the model fixes them. */
  inputSize?: [number, number];
  /** The batch size when the model fixes it (many exports fix it to 1); undefined when symbolic. */
  fixedBatch?: number;
}

/**
 * Reads the model's single image input.
 * @throws ModelLoadError when the model has no or several data inputs, a non-float32 or non-4-D input, or
 *   a layout that neither the dims nor `fileConfig.layout` settle.
 */
export function discoverOnnxInput(view: GraphView, fileConfig: ModelFileConfig, source: string): OnnxInput {
  const inputs = view.dataInputs();
  if (inputs.length !== 1) {
    throw new ModelLoadError(
      `${source}: camstream needs a model with exactly one image input, this one has ${inputs.length}` +
        (inputs.length ? ` (${inputs.map((i) => i.name).join(', ')})` : ''),
    );
  }
  const [input] = inputs;
  if (input.elemType !== DataType.FLOAT) {
    throw new ModelLoadError(
      `${source}: input '${input.name}' has element type ${input.elemType}, camstream feeds float32 (type 1)`,
    );
  }
  if (input.dims.length !== 4) {
    throw new ModelLoadError(
      `${source}: input '${input.name}' has shape [${input.dims.join(', ')}], expected 4 dims (an image batch)`,
    );
  }
  const [n, d1, d2, d3] = input.dims;
  let layout = fileConfig.layout;
  if (layout === undefined) {
    if (d1 === 3) layout = 'nchw';
    else if (d3 === 3) layout = 'nhwc';
    else {
      throw new ModelLoadError(
        `${source}: cannot tell the layout of input '${input.name}' [${input.dims.join(', ')}]; ` +
          'set "layout": "nchw" or "nhwc" in camstream.json beside the model',
      );
    }
  }
  const channels = layout === 'nchw' ? d1 : d3;
  if (typeof channels === 'number' && channels !== 3) {
    throw new ModelLoadError(
      `${source}: input '${input.name}' [${input.dims.join(', ')}] has ${channels} channels in layout ${layout}; ` +
        'camstream feeds RGB (3 channels)',
    );
  }
  const [h, w] = layout === 'nchw' ? [d2, d3] : [d1, d2];
  return {
    name: input.name,
    layout,
    inputSize: typeof h === 'number' && typeof w === 'number' ? [h, w] : undefined,
    fixedBatch: typeof n === 'number' ? n : undefined,
  };
}
