/** Names the CLI offers as choices, in a module it reads without loading the generators (or sharp). */

/** Real-digit scene recipes (mnist-scenes.ts). */
export type MnistRecipe = 'dm100' | 'stn60' | 'webcam' | 'none';
export const MNIST_RECIPES: readonly MnistRecipe[] = ['dm100', 'stn60', 'webcam', 'none'];

/** Dataset folder layouts (write.ts). */
export type DatasetLayout = 'stanford40' | 'folders';
export const DATASET_LAYOUTS: readonly DatasetLayout[] = ['stanford40', 'folders'];

/** Where generated scenes come from (write.ts). */
export type SceneSource = 'procedural' | 'mnist';
export const SCENE_SOURCES: readonly SceneSource[] = ['procedural', 'mnist'];

/** The fixed split of the MNIST digits (mnist.ts). */
export type MnistSplit = 'train' | 'test';
export const MNIST_SPLITS: readonly MnistSplit[] = ['train', 'test'];
