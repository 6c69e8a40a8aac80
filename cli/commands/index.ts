import type { Command } from 'commander';
import { imageCommand } from './image.ts';
import { videoCommand } from './video.ts';
import { serveCommand } from './serve.ts';
import { reviewCommand } from './review.ts';
import { generateCommand } from './generate.ts';
import { trainCommand } from './train.ts';
import { evalCommand } from './eval.ts';
import { convertCommand } from './convert.ts';
import { quantizeCommand } from './quantize.ts';
import { workerCommand } from './worker.ts';
import { jobsCommand } from './jobs.ts';

/** Every subcommand, in the order `--help` lists them. */
export const commands: Array<() => Command> = [
  imageCommand,
  videoCommand,
  serveCommand,
  reviewCommand,
  generateCommand,
  trainCommand,
  evalCommand,
  convertCommand,
  quantizeCommand,
  workerCommand,
  jobsCommand,
];
