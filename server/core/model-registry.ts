/**
 * The models a server offers its viewers: the one it started with (loaded by the caller, owned by it) and
 * the operator's list (`serve --models`), each loaded on first use through the model loader, then kept and
 * shared by every source that picks it, and disposed with the server. Viewers name a model by its id
 * only; the spec (a path or URL) stays here.
 */
import { resolve } from 'node:path';
import { load, type CamModel, type ResolveOptions } from '../../models/index.ts';
import type { ModelChoice } from '../../protocol/index.ts';

/** One model the operator offers (besides the server's own). */
export interface ModelEntry {
  /** Shown in the picker and the header; the id is made from it. */
  name: string;
  /** What the loader opens: a model folder, model.json, .onnx file, or http(s) URL (the operator's, never a viewer's). */
  spec: string;
  /** What the model is for, in a few words the page shows. */
  note?: string;
  /** Load options (engine, backend, threads, cache, camstream.json overrides); progress is the registry's. */
  options?: Omit<ResolveOptions, 'onProgress'>;
}

/** Progress of a load, for the viewers waiting on it: bytes fetched so far and in all (URL models). */
export interface LoadProgress {
  loaded: number;
  total: number | undefined;
}

/** A model the registry hands out: the model and its id in `choices`. */
export interface OfferedModel {
  id: string;
  name: string;
  note?: string;
  model: CamModel;
}

type Loader = (spec: string, options: ResolveOptions) => Promise<CamModel>;

interface Slot {
  choice: ModelChoice;
  entry: ModelEntry | undefined;
  model: CamModel | undefined;
  loading: Promise<CamModel> | undefined;
  listeners: Set<(p: LoadProgress) => void>;
}

/** Milliseconds between two progress reports of one load (the last bytes always report). */
const PROGRESS_EVERY_MS = 200;

/** An id from a name: lower case letters, digits, `.`, `_` and `-`, unique in `taken`. */
function makeId(name: string, taken: Set<string>): string {
  const base = name.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 48) || 'model';
  let id = base;
  for (let n = 2; taken.has(id); n++) id = `${base}-${n}`;
  taken.add(id);
  return id;
}

export class ModelRegistry {
  /** What viewers may pick, the server's own model first. */
  readonly choices: readonly ModelChoice[];
  /** Id of the server's own model. */
  readonly defaultId: string;
  private readonly slots = new Map<string, Slot>();
  private disposed = false;

  /**
   * @param main the server's own model (the caller owns it: `dispose` leaves it alone), its name and note.
   * @param entries the other models, loaded on first use with `loader` (models' `load` by default).
   */
  constructor(
    main: { model: CamModel; name: string; note?: string },
    entries: readonly ModelEntry[],
    private readonly loader: Loader = load,
  ) {
    const taken = new Set<string>();
    this.defaultId = makeId(main.name, taken);
    const mainChoice: ModelChoice = { id: this.defaultId, name: main.name, ...(main.note ? { note: main.note } : {}) };
    this.slots.set(this.defaultId, { choice: mainChoice, entry: undefined, model: main.model, loading: undefined, listeners: new Set() });
    for (const entry of entries) {
      const id = makeId(entry.name, taken);
      const choice: ModelChoice = { id, name: entry.name, ...(entry.note ? { note: entry.note } : {}) };
      this.slots.set(id, { choice, entry, model: undefined, loading: undefined, listeners: new Set() });
    }
    this.choices = Object.freeze([...this.slots.values()].map((s) => Object.freeze(s.choice)));
  }

  /** The choice with this id, or undefined (an id no one offered). */
  choice(id: string): ModelChoice | undefined {
    return this.slots.get(id)?.choice;
  }

  /** The server's own model. */
  get main(): OfferedModel {
    return this.offered(this.slots.get(this.defaultId)!, this.slots.get(this.defaultId)!.model!);
  }

  /** `text` (an error about the model `id`) with its spec replaced by its name: viewers never see the operator's paths. */
  redact(id: string, text: string): string {
    const slot = this.slots.get(id);
    const spec = slot?.entry?.spec;
    if (!slot || !spec) return text;
    const forms = [...new Set([spec, /^[a-z]+:\/\//i.test(spec) ? spec : resolve(spec)])].sort((a, b) => b.length - a.length);
    return forms.reduce((t, f) => t.split(f).join(slot.choice.name), text);
  }

  /** The model with this id if it is loaded already, else undefined. */
  loaded(id: string): OfferedModel | undefined {
    const slot = this.slots.get(id);
    return slot?.model ? this.offered(slot, slot.model) : undefined;
  }

  /** Every model loaded so far (the server's own included). */
  loadedModels(): CamModel[] {
    return [...this.slots.values()].flatMap((s) => (s.model ? [s.model] : []));
  }

  /**
   * The model with this id, loading it on first use (one load per id however many ask; a failed load is
   * not kept, so the next request tries again). `onProgress` hears the bytes of URL models while it loads.
   * Rejects with the loader's error (ModelLoadError, ConfigError), or an Error for an unknown id.
   */
  async get(id: string, onProgress?: (p: LoadProgress) => void): Promise<OfferedModel> {
    const slot = this.slots.get(id);
    if (!slot) throw new Error(`no model '${id}' is offered`);
    if (slot.model) return this.offered(slot, slot.model);
    if (this.disposed) throw new Error('the server is shutting down');
    if (onProgress) slot.listeners.add(onProgress);
    try {
      slot.loading ??= this.startLoad(slot);
      return this.offered(slot, await slot.loading);
    } finally {
      if (onProgress) slot.listeners.delete(onProgress);
    }
  }

  private startLoad(slot: Slot): Promise<CamModel> {
    const entry = slot.entry!;
    let last = -Infinity;
    const onProgress = (event: { loaded: number; total: number | undefined }): void => {
      const now = performance.now();
      const done = event.total !== undefined && event.loaded >= event.total;
      if (!done && now - last < PROGRESS_EVERY_MS) return;
      last = now;
      for (const l of slot.listeners) l({ loaded: event.loaded, total: event.total });
    };
    return this.loader(entry.spec, { ...entry.options, onProgress }).then(
      async (model) => {
        slot.loading = undefined;
        // Disposed while loading: nobody will ever dispose this one but us.
        if (this.disposed) {
          await model.dispose();
          throw new Error('the server is shutting down');
        }
        slot.model = model;
        return model;
      },
      (err: unknown) => {
        slot.loading = undefined;
        throw err;
      },
    );
  }

  private offered(slot: Slot, model: CamModel): OfferedModel {
    return { id: slot.choice.id, name: slot.choice.name, ...(slot.choice.note ? { note: slot.choice.note } : {}), model };
  }

  /** Waits for loads in flight and disposes every model loaded here (not the server's own). Idempotent. */
  async dispose(): Promise<void> {
    this.disposed = true;
    const pending = [...this.slots.values()].flatMap((s) => (s.loading ? [s.loading.catch(() => undefined)] : []));
    await Promise.all(pending);
    const owned = [...this.slots.values()].filter((s) => s.entry && s.model);
    for (const s of owned) {
      const model = s.model!;
      s.model = undefined;
      await model.dispose();
    }
  }
}
