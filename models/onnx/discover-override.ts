/**
 * Checks a head named in camstream.json (`featureTensor`, `weights`) against the ONNX graph, so that an
 * override cannot silently turn an activated head into a linear one (ref: Zhou et al. 2016, sec. 2: the
 * CAM identity needs the classifier to be linear in the features, up to the class conv's own ReLU).
 */
import { ConfigError } from '../../common/errors.ts';
import type { GraphView } from './graph.ts';
import type { NodeProto } from './proto.ts';

const nameOf = (n: NodeProto): string => n.name || n.output[0];

/**
 * Ops that are not linear in their input: between the features and the pooled logits they break
 * mean(M_c) + b_c = logit_c, so an override naming tensors across one is refused (Relu after a class
 * conv excepted, see `checkOverridePath`).
 */
const NON_LINEAR = new Set([
  'Relu', 'LeakyRelu', 'PRelu', 'Clip', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Elu', 'Selu', 'Celu',
  'Gelu', 'Mish', 'Softplus', 'Softsign', 'Exp', 'Log', 'Abs', 'Max', 'Min', 'MaxPool', 'GlobalMaxPool',
]);

/**
 * Checks camstream.json's named head against the graph. From the op reading the weights, back to the named
 * features: no non-linear op may sit there. For a 1x1 conv kernel, forward from the conv to the pooling: a
 * single Relu makes the head activated (`relu`), any other non-linear op is refused.
 * @throws ConfigError naming the op and both tensors.
 */
export function checkOverridePath(
  view: GraphView,
  features: string,
  weightsName: string,
  source: string,
  isPooling: (n: NodeProto) => boolean,
): { activation?: 'relu' } {
  const reader = view.consumersOf(weightsName).find((n) => n.input[1] === weightsName);
  if (!reader) return {};
  const refuse = (n: NodeProto): ConfigError =>
    new ConfigError(
      `${source}: camstream.json names "featureTensor" '${features}' and "weights" '${weightsName}', but the ` +
        `non-linear op ${nameOf(n)} (${n.opType}) sits between them and the pooled logits: CAM would not match the ` +
        'model (mean(M_c) + b_c != logit_c). Name the tensors right before the classifier instead',
    );
  let t = reader.input[0];
  for (let steps = 0; t !== features && steps < 64; steps++) {
    const p = view.producer(t);
    if (!p) break;
    if (NON_LINEAR.has(p.opType)) throw refuse(p);
    t = p.input[0];
  }
  if (reader.opType !== 'Conv') return {};
  let activation: 'relu' | undefined;
  let out = reader.output[0];
  for (let steps = 0; steps < 64; steps++) {
    const next = view.consumersOf(out);
    if (next.length !== 1 || isPooling(next[0])) break;
    const n = next[0];
    if (n.opType === 'Relu' && activation === undefined) activation = 'relu';
    else if (NON_LINEAR.has(n.opType)) throw refuse(n);
    out = n.output[0];
  }
  return activation ? { activation } : {};
}
