import { describe, expect, it } from 'vitest';

import { errorMessage, messageOf, parseBody } from '../http';

describe('parseBody', () => {
  it('parses JSON and gives null for an empty or non-JSON body', () => {
    expect(parseBody('{"message": "no"}')).toEqual({ message: 'no' });
    expect(parseBody('')).toBeNull();
    expect(parseBody('<html>502 Bad Gateway</html>')).toBeNull();
  });
});

describe('errorMessage', () => {
  it("shows the API's own message as is", () => {
    const body = parseBody('{"error": "bad_request", "message": "name: must not be blank"}');
    expect(errorMessage(400, 'Bad Request', body)).toBe('name: must not be blank');
  });

  it('falls back to the status when the body has no usable message', () => {
    expect(errorMessage(502, 'Bad Gateway', null)).toBe('502 Bad Gateway');
    expect(errorMessage(500, 'Internal Server Error', { message: '  ' })).toBe(
      '500 Internal Server Error'
    );
    expect(errorMessage(404, '', { message: 42 })).toBe('404');
    expect(errorMessage(403, 'Forbidden', ['not', 'an', 'object'])).toBe('403 Forbidden');
  });
});

describe('messageOf', () => {
  it('gives the message of an error, never its stack', () => {
    const error = new Error('The Jupyter server could not be reached');
    expect(messageOf(error)).toBe('The Jupyter server could not be reached');
    expect(messageOf('plain')).toBe('plain');
  });
});
