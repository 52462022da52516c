import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A test PKI made with openssl, as AWS IoT Core's would be: a CA, the broker's certificate
 * (SAN localhost and 127.0.0.1) and client certificates signed by the CA, plus one from a CA the
 * broker does not know.
 */
export type TestPki = { dir: string; ca: string; file(name: string, ext: 'crt' | 'key'): string };

export function makeTestPki(dir: string, clients: string[]): TestPki {
  mkdirSync(dir, { recursive: true });
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ca = (name: string, cn: string) =>
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '30', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-subj', `/CN=${cn}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  const sign = (name: string, cn: string, extensions: string, by = 'ca') => {
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    writeFileSync(join(dir, `${name}.ext`), extensions);
    openssl('x509', '-req', '-sha256', '-days', '30', '-in', `${name}.csr`, '-CA', `${by}.crt`, '-CAkey', `${by}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-extfile', `${name}.ext`);
  };
  ca('ca', 'Fleet Test CA');
  sign('server', 'localhost', 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n');
  for (const client of clients) sign(client, client, 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
  ca('rogue-ca', 'Rogue CA');
  sign('rogue', 'rogue', 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n', 'rogue-ca');
  return { dir, ca: join(dir, 'ca.crt'), file: (name, ext) => join(dir, `${name}.${ext}`) };
}
