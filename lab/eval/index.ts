/** `camstream eval`: classification and weakly supervised localization scores of a CAM model. */
export {
  evaluate,
  resolveEvalConfig,
  DEFAULT_EVAL_CONFIG,
  type EvalConfig,
  type EvalReport,
  type EvalSample,
  type EvalProgress,
  type LocalizationScores,
} from './evaluate.ts';
export { generatedSamples, mnistSamples, datasetSamples, decodeRgb, classMapping } from './samples.ts';
export { formatEvalMarkdown, evalJson, type EvalContext } from './report.ts';
