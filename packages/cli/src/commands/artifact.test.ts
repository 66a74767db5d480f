import { describe, expect, it } from 'vitest';
import { isInvalidArgument } from '@berth/core';
import { parseFileArg, titleFor } from './artifact.js';

describe('parseFileArg', () => {
  it('splits FILE:mediatype at the last colon when a media type follows', () => {
    expect(parseFileArg('notes.txt:text/plain')).toEqual({ path: 'notes.txt', mediaType: 'text/plain' });
    expect(parseFileArg('a:b.tar:application/vnd.example.layer.v1+tar')).toEqual({ path: 'a:b.tar', mediaType: 'application/vnd.example.layer.v1+tar' });
  });
  it('keeps a colon that is part of the file name', () => {
    expect(parseFileArg('weird:name')).toEqual({ path: 'weird:name' });
    expect(parseFileArg('c.json', 'application/vnd.unknown.config.v1+json')).toEqual({ path: 'c.json', mediaType: 'application/vnd.unknown.config.v1+json' });
  });
  it('refuses a malformed media type after the colon', () => {
    expect(() => parseFileArg('x:te xt/plain')).not.toThrow(); // not a media type: part of the name
    expect(() => parseFileArg('x:!bad/type')).toThrow();
    try {
      parseFileArg('x:!bad/type');
    } catch (err) {
      expect(isInvalidArgument(err)).toBe(true);
    }
  });
});

describe('titleFor', () => {
  it('titles a relative path as written, normalized, and an absolute one by its base name', () => {
    expect(titleFor('./dir/file.txt')).toBe('dir/file.txt');
    expect(titleFor('dir//sub/./f')).toBe('dir/sub/f');
    expect(titleFor('/tmp/x/data.bin')).toBe('data.bin');
    // `..` stays visible, so that the push refuses it rather than titling something else
    expect(titleFor('../up.txt')).toBe('../up.txt');
  });
});
