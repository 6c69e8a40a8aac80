import type { Command } from 'commander';
import { imageCommand } from './image.ts';
import { reviewCommand } from './review.ts';
import { serveCommand } from './serve.ts';
import { videoCommand } from './video.ts';

/** Every subcommand, in the order `--help` lists them. */
export const commands: Array<() => Command> = [imageCommand, videoCommand, serveCommand, reviewCommand];
