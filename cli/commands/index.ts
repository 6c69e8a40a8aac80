import type { Command } from 'commander';
import { imageCommand } from './image.ts';

/** Every subcommand, in the order `--help` lists them. */
export const commands: Array<() => Command> = [imageCommand];
