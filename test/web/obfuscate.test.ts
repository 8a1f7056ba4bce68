// Address obfuscation: what is rewritten, what is left alone, and hostile input that must not take quadratic time.
import { describe, expect, it } from 'vitest';
import { containsAddress, obfuscateAddresses } from '../../src/web/obfuscate.ts';

describe('obfuscateAddresses', () => {
  it('writes addresses as "local at domain", in names, angle brackets and prose', () => {
    expect(obfuscateAddresses('Vendor PSIRT <security@vendor.example>')).toBe('Vendor PSIRT <security at vendor.example>');
    expect(obfuscateAddresses('mail first.last+tag@sub.example.co.uk, or b@c.io.')).toBe('mail first.last+tag at sub.example.co.uk, or b at c.io.');
    expect(containsAddress(obfuscateAddresses('x@y.example and z@w.example'))).toBe(false);
  });

  it('leaves text without an address, and percent-encoded Message-IDs in URLs, as they are', () => {
    expect(obfuscateAddresses('no address @ here, user@localhost')).toBe('no address @ here, user@localhost');
    expect(obfuscateAddresses('/lists/l/msg/abc%40host.example')).toBe('/lists/l/msg/abc%40host.example');
  });

  it('gets through a hostile megabyte (no "@", or thousands of them) in one pass', () => {
    const letters = 'a'.repeat(1_000_000);
    expect(obfuscateAddresses(letters)).toBe(letters);
    const ats = 'a@'.repeat(200_000);
    expect(obfuscateAddresses(ats)).toBe(ats);
    const labels = `x@${'a'.repeat(500_000)}`;
    expect(obfuscateAddresses(labels)).toBe(labels);
  });
});
