/** The activation-range methods of INT8 calibration (calibrate.ts), in a module the CLI reads without ONNX Runtime. */
export const CALIBRATION_METHODS = Object.freeze(['minmax', 'percentile', 'mse'] as const);
export type CalibrationMethod = (typeof CALIBRATION_METHODS)[number];
