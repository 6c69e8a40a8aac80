/**
 * The ffmpeg layer: the only code in camstream that starts processes. Locating binaries, a typed spawn
 * wrapper, probing, decoding to raw frames (a cold Observable) and encoding from raw frames (a sink).
 */
export { FfmpegError, type FfmpegFailure } from './errors.ts';
export { locateFfmpeg, type FfmpegTools, type LocateOptions, type ToolInfo, type ToolSource } from './locate.ts';
export {
  activeFfmpegPids,
  LOG_LEVELS,
  parseLogLine,
  runFfmpeg,
  shellQuote,
  shutdownFfmpeg,
  spawnFfmpeg,
  type ExitInfo,
  type FfmpegProcess,
  type LogLevel,
  type LogLine,
  type RunResult,
  type SpawnConfig,
  type ToolKind,
  type CpuTime,
} from './spawn.ts';
export { confineInput, isReferenceFormat, REFERENCE_FORMATS } from './confine.ts';
export { removeStaleTemps, tempPathFor } from './temp-files.ts';
export { INPUT_SCHEMES, readsOnce, resolveInput, STDIN_INPUT, type InputScheme, type ResolvedInput } from './input.ts';
export { formatRational, parseRational, rationalFromDecimal, rationalValue, toRational, type Rational } from './rational.ts';
export { parseFfmpegInputListing, probeAudioCodec, probeMedia, type FrameCountMode, type MediaInfo, type ProbeConfig } from './probe.ts';
export { FrameAssembler } from './frame-assembler.ts';
export {
  BYTES_PER_PIXEL,
  DEFAULT_DECODE_CONFIG,
  resolveDecodeConfig,
  type DecodeConfig,
  type DecodedFrame,
  type DecodeHandle,
  type DecodeOutputConfig,
  type DecodeStats,
  type PassthroughConfig,
  type PixFmt,
  type ResolvedDecodeConfig,
} from './decode-config.ts';
export { buildDecodeArgs, type SizedOutput } from './decode-args.ts';
export { decodeFrames, decodeFrames$ } from './decode.ts';
export {
  DEFAULT_ENCODE_CONFIG,
  encodeMp4,
  encodeVideo,
  mp4CopiesAudio,
  type AudioSource,
  type EncodeConfig,
  type EncodeInput,
  type EncodeMp4Config,
} from './encode.ts';
export { type EncodeResult, type VideoEncoder } from './encode-run.ts';
export { ENCODE_PIX_FMTS, rawFrameBytes, type EncodePixFmt } from './encode-args.ts';
