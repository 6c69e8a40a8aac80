/**
 * The one table of live source kinds. Each kind the wire protocol names (`SourceSpec['kind']`) has an entry
 * here saying whether its viewers share one pipeline, which input schemes ffmpeg may open for it, and how
 * a source of that kind is made. A new kind starts with a row in `SOURCE_KINDS` (the `satisfies` below
 * fails until every protocol kind has one); the server then checks its spec and calls `create`.
 */
import type { FfmpegTools, InputScheme, MediaInfo } from '../ffmpeg/index.ts';
import type { SourceSpec } from '../../protocol/index.ts';
import { FfmpegSource, type FfmpegInput } from './live-ffmpeg.ts';
import type { LiveSource, SourceContext } from './live-source.ts';
import { WebcamSource } from './webcam.ts';

/** What the server found out about an ffmpeg source's input before opening it. */
export interface FfmpegOpening {
  /** The path or URL ffmpeg opens (files: the confined real path). */
  input: string;
  /** For display (a URL without its credentials). */
  name: string;
  loop: boolean;
  /** From probing (files and URLs); devices have none. */
  probe: MediaInfo | undefined;
  tools: FfmpegTools | undefined;
}

/** One row of the table. */
export interface SourceKindEntry {
  /** True: one pipeline per input, shared by every viewer that selects it. False: one per client. */
  readonly shared: boolean;
  /** Input schemes ffmpeg may open for this kind (none for frames a browser sends). */
  readonly schemes: readonly InputScheme[];
  /** A new source (cold: nothing runs until its first viewer). */
  readonly create: (id: string, ctx: SourceContext, ...opening: never[]) => LiveSource;
}

function ffmpegKind(kind: FfmpegInput['kind'], schemes: readonly InputScheme[]) {
  return Object.freeze({
    shared: true,
    schemes,
    create: (id: string, ctx: SourceContext, opening: FfmpegOpening): FfmpegSource => new FfmpegSource(id, { kind, ...opening, schemes }, ctx),
  });
}

/** Every live source kind, by the name the protocol gives it. */
export const SOURCE_KINDS = Object.freeze({
  /** Frames pushed by one browser over its socket. */
  webcam: Object.freeze({
    shared: false,
    schemes: Object.freeze([]) as readonly InputScheme[],
    create: (id: string, ctx: SourceContext): WebcamSource => new WebcamSource(id, ctx),
  }),
  /** A file under the media root (pause, seek, loop). */
  file: ffmpegKind('file', Object.freeze(['file'])),
  /** An RTSP or HTTP(S) stream. */
  url: ffmpegKind('url', Object.freeze(['http', 'https', 'rtsp'])),
  /** A v4l2 camera on the server (`/dev/videoN`). */
  device: ffmpegKind('device', Object.freeze(['file'])),
} satisfies Record<SourceSpec['kind'], SourceKindEntry>);

/** A name the table knows. */
export type SourceKind = keyof typeof SOURCE_KINDS;
