import { findKey, isPartnerKey, parseApiKeys } from '../../api/auth';

describe('API_KEYS', () => {
  const scopesOf = (text: string) => parseApiKeys(text).map((k) => [...k.scopes]);

  it('takes partner scopes, whose colon is not the end of the key', () => {
    expect(scopesOf('k1:partner:uber;k2:partner:uber,partner:doordash;k3:read,operate')).toEqual([['partner:uber'], ['partner:uber', 'partner:doordash'], ['read', 'operate']]);
    // A key may hold colons: it ends where the scopes begin.
    expect(findKey(parseApiKeys('a:b:partner:uber'), 'a:b')?.scopes).toEqual(new Set(['partner:uber']));
    expect(scopesOf('a:read:deploy')).toEqual([['deploy']]);
    expect(parseApiKeys('k:partner:uber;k:read').map(isPartnerKey)).toEqual([true, false]);
  });

  it("refuses a provider no module names, and a partner's key with internal scopes, naming the entry and never the key", () => {
    const refusal = (text: string) => {
      try {
        parseApiKeys(text);
      } catch (error) {
        return (error as Error).message;
      }
      return null;
    };
    expect(refusal('ok:read;secret-key:partner:lyft')).toBe(
      'API_KEYS: entry 2 has unknown scope "partner:lyft" (scopes: read, operate, deploy, partner:doordash, partner:uber)',
    );
    expect(refusal('secret:key:admin')).toBe('API_KEYS: entry 1 has unknown scope "admin" (scopes: read, operate, deploy, partner:doordash, partner:uber)');
    expect(refusal('secret-key:read,partner:uber')).toBe("API_KEYS: entry 1 mixes partner scopes with read/operate/deploy: a partner's key has partner scopes only");
    expect(refusal('secret-key:')).toBe('API_KEYS: entry 1 has no scope');
    for (const text of ['secret:key:admin', 'secret-key:partner:lyft', 'secret-key:read,partner:uber']) expect(refusal(text)).not.toMatch(/secret/);
  });
});
