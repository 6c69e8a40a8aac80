/** `hello.model.source` tells viewers which model runs without telling them the server's paths or a URL's secrets. */
import { describe, expect, it } from 'vitest';
import { defaultModelName, publicSource } from '../../../server/core/model-names.ts';

describe('publicSource', () => {
  it('keeps only the last name of a path (a model.json with its folder)', () => {
    expect(publicSource('/srv/camstream/models/zoo/digits-gap')).toBe('digits-gap');
    expect(publicSource('/home/me/nets/resnet50.onnx')).toBe('resnet50.onnx');
    expect(publicSource('/home/me/nets/darknet/model.json')).toBe('darknet model.json');
    expect(publicSource('C:\\models\\squeezenet.onnx')).toBe('squeezenet.onnx');
  });

  it('drops a URL\'s credentials, query and folders', () => {
    const shown = publicSource('https://user:s3cret@models.example.com/team/a/resnet18.onnx?X-Amz-Signature=abc#x');
    expect(shown).toBe('https://models.example.com/…/resnet18.onnx');
    expect(shown).not.toMatch(/s3cret|Signature|team/);
    expect(publicSource('http://host:8080/')).toBe('http://host:8080');
  });

  it('names a model by the same visible parts when no name is given', () => {
    expect(defaultModelName('/srv/camstream/models/zoo/digits-gap')).toBe('digits-gap');
    expect(defaultModelName('/home/me/nets/darknet/model.json')).toBe('darknet');
    expect(defaultModelName('/home/me/nets/resnet50.onnx')).toBe('resnet50.onnx');
    // A URL's query and credentials are no more a name than a source.
    expect(defaultModelName('https://u:s3cret@models.example.com/a/resnet18.onnx?X-Amz-Signature=abc')).toBe('resnet18.onnx');
    expect(defaultModelName('http://host:8080/')).toBe('host:8080');
  });
});
