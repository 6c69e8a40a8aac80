/**
 * The skeleton both engines' models share: the frozen `info`, the disposed checks, the request checks at
 * the start of `infer`, `withHead`, and `dispose` (a loaded model owns the backbone or session; the models
 * `withHead` derives from it share it and own only their head).
 */
import { CamstreamError } from '../../common/errors.ts';
import type { CamModel, CamModelInfo, CamResult, Frame, HeadKind, InferOptions, LinearHead } from '../types.ts';
import { checkFrames, checkLinearHead, resolveRequest } from './engine-common.ts';

/** What a loaded model and the models derived from it share (the engine adds its backbone or session). */
export interface SharedCore {
  /** The model as the user named it, for messages. */
  where: string;
  /** `[h, w, k]` of the feature map feeding GAP. */
  featureShape: [number, number, number];
  /** Set once the owning model released the backbone or session. */
  disposed: boolean;
}

/** A linear head as an engine keeps it (the engine adds its weights). */
export interface EngineHead {
  kind: HeadKind;
  numClasses: number;
  labels: string[];
}

/** `CamModelInfo` without what comes from the head. */
export type BackboneInfo = Omit<CamModelInfo, 'head' | 'numClasses' | 'labels'>;

/** A checked `infer` request: which classes to map (or how many top ones) and whether features are wanted. */
export interface CheckedRequest {
  classes?: number[];
  k: number;
  wantFeatures: boolean;
}

/** Base of `TfjsCamModel` and `OnnxCamModel`; each engine supplies the forward pass and head storage. */
export abstract class EngineCamModel<C extends SharedCore, H extends EngineHead> implements CamModel {
  readonly info: CamModelInfo;
  private disposed = false;
  private released: Promise<void> | undefined;

  protected constructor(
    protected readonly core: C,
    protected readonly h: H,
    info: BackboneInfo,
    /** The loaded model owns the shared core; derived models only their head. */
    private readonly ownsCore: boolean,
  ) {
    this.info = Object.freeze({
      ...info,
      head: h.kind,
      numClasses: h.numClasses,
      labels: Object.freeze([...h.labels]) as string[],
    });
  }

  /** How the message names what the owning model released (`its session was released`). */
  protected abstract readonly releasedCore: string;

  abstract infer(frames: readonly Frame[], options?: InferOptions): Promise<CamResult[]>;
  abstract head(): LinearHead;

  /** The engine's form of a validated custom head with `c` classes on `k` feature channels. */
  protected abstract customHead(head: LinearHead, k: number, c: number, labels: string[]): H;
  /** A model of this engine on the same core with another head; it does not own the core. */
  protected abstract derive(h: H, info: BackboneInfo): CamModel;
  /** Frees what the head holds (tensors); nothing for heads kept as plain arrays. */
  protected abstract freeHead(): void;
  /** Releases the shared core; called once, by the owning model. */
  protected abstract freeCore(): Promise<void>;

  /** Throws a DISPOSED error once this model, or the model owning its core, was disposed. */
  protected assertUsable(): void {
    if (this.disposed || this.core.disposed) {
      throw new CamstreamError(
        'DISPOSED',
        `model ${this.core.where} was disposed${this.disposed ? '' : ` (${this.releasedCore} with the model it was derived from)`}`,
      );
    }
  }

  /** The checks at the start of every `infer`: usable model, well-formed frames, a valid request. */
  protected checkInfer(frames: readonly Frame[], options: InferOptions): CheckedRequest {
    this.assertUsable();
    checkFrames(frames);
    return { ...resolveRequest(options, this.h.numClasses), wantFeatures: options.features === true };
  }

  withHead(head: LinearHead): CamModel {
    this.assertUsable();
    const [, , k] = this.core.featureShape;
    const { numClasses: c, labels } = checkLinearHead(head, k);
    const { head: _kind, numClasses: _c, labels: _labels, ...rest } = this.info;
    return this.derive(this.customHead(head, k, c, labels), rest);
  }

  dispose(): Promise<void> {
    this.released ??= this.release();
    return this.released;
  }

  private async release(): Promise<void> {
    this.disposed = true;
    this.freeHead();
    if (!this.ownsCore || this.core.disposed) return;
    this.core.disposed = true;
    await this.freeCore();
  }
}
