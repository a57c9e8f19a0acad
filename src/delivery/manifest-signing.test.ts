import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { Header } from './delivery-format.ts';
import { generateSigningKeyPair, parseSigningKey, parseTrustedKey, signatureHeaders, verifyManifest } from './manifest-signing.ts';

const manifest = Buffer.from(
  JSON.stringify({ model: 'digits-mlp', version: 3, files: [{ path: 'model.onnx', size: 21005, sha256: 'a'.repeat(64), chunks: 1 }] }),
);

function pair() {
  const p = generateSigningKeyPair();
  return { signing: parseSigningKey(p.privateKeyPem, 'test.key'), trusted: parseTrustedKey(p.publicKeyPem, 'test.pub'), id: p.id };
}

describe('manifest signing', () => {
  it('verifies a manifest signed with the private half of a trusted key, naming the key', () => {
    const { signing, trusted, id } = pair();
    assert.equal(signing.id, id);
    assert.equal(trusted.id, id);
    assert.match(id, /^[0-9a-f]{16}$/);
    assert.deepEqual(verifyManifest(manifest, signatureHeaders(manifest, signing), [trusted]), { keyId: id });
  });

  it('refuses a manifest changed after signing (one byte of a file sha256) as bad-signature', () => {
    const { signing, trusted } = pair();
    const headers = signatureHeaders(manifest, signing);
    const tampered = Buffer.from(manifest.toString().replace('"sha256":"a', '"sha256":"b'));
    const verdict = verifyManifest(tampered, headers, [trusted]);
    assert.equal('code' in verdict && verdict.code, 'bad-signature');
    assert.match('reason' in verdict ? verdict.reason : '', /does not verify with trusted key [0-9a-f]{16} \(test\.pub\)/);
  });

  it('refuses a manifest signed by a key that is not trusted as untrusted-key', () => {
    const a = pair();
    const b = pair();
    const verdict = verifyManifest(manifest, signatureHeaders(manifest, b.signing), [a.trusted]);
    assert.equal('code' in verdict && verdict.code, 'untrusted-key');
    assert.match(
      'reason' in verdict ? verdict.reason : '',
      new RegExp(`signed by key ${b.id}, which is not one of the trusted keys \\(${a.id}\\)`),
    );
  });

  it('refuses a signature made by another key but labelled with the trusted key id as bad-signature', () => {
    const a = pair();
    const b = pair();
    const forged = signatureHeaders(manifest, b.signing).map(([k, v]) =>
      k === Header.SIGNING_KEY ? ([k, Buffer.from(a.id)] as const) : ([k, v] as const),
    );
    const verdict = verifyManifest(manifest, forged, [a.trusted]);
    assert.equal('code' in verdict && verdict.code, 'bad-signature');
  });

  it('refuses an unsigned manifest when keys are configured, and accepts it (unchecked) when none are', () => {
    const { trusted } = pair();
    const verdict = verifyManifest(manifest, [], [trusted]);
    assert.equal('code' in verdict && verdict.code, 'unsigned');
    assert.match('reason' in verdict ? verdict.reason : '', /not signed.*publish it with --sign-key/);
    assert.deepEqual(verifyManifest(manifest, [], []), { keyId: undefined });
  });

  it('refuses a garbled signature header without throwing', () => {
    const { trusted, id } = pair();
    const headers: Array<[string, Buffer]> = [
      [Header.SIGNATURE, Buffer.from('not base64 at all!')],
      [Header.SIGNING_KEY, Buffer.from(id)],
    ];
    const verdict = verifyManifest(manifest, headers, [trusted]);
    assert.equal('code' in verdict && verdict.code, 'bad-signature');
  });

  it('says what is wrong with a key file: a private key given as trusted, an RSA key, not PEM', () => {
    const p = generateSigningKeyPair();
    assert.throws(() => parseTrustedKey(p.privateKeyPem, 'release.key'), {
      code: 'INVALID_CONFIG',
      message: /trusted key release\.key: this is a private key; give followers the public key only/,
    });
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    assert.throws(() => parseTrustedKey(rsa, 'rsa.pub'), { code: 'INVALID_CONFIG', message: /an rsa key; expected an Ed25519 key/ });
    assert.throws(() => parseSigningKey('hello', 'x.key'), {
      code: 'INVALID_CONFIG',
      message: /signing key x\.key: not a PEM private key/,
    });
  });
});
