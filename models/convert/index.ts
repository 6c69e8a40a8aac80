/**
 * Model conversion: TF.js layers models to ONNX (`camstream convert`), so TF.js models get ONNX Runtime
 * and INT8 quantization.
 */
import { readKerasModel } from './keras-topology.ts';
import { layersToOnnx } from './layers-to-onnx.ts';

export { readKerasModel, type KerasLayer, type KerasModel } from './keras-topology.ts';
export { layersToOnnx, CONVERTIBLE_LAYERS, CONVERT_OPSET } from './layers-to-onnx.ts';

/**
 * Reads the TF.js layers model at `path` (folder or model.json) and returns its ONNX form, serialized.
 * @throws ModelLoadError when the model cannot be read or has a layer convert does not handle.
 */
export async function convertTfjsToOnnx(path: string): Promise<Uint8Array> {
  return layersToOnnx(await readKerasModel(path), path);
}
