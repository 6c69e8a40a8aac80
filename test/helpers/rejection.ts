/**
 * The error a promise rejects with, for tests that assert on an error's class and message: the test fails
 * (with "expected a rejection") when the promise resolves instead.
 */
export async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}
