/**
 * Signed model versions. The publisher signs the manifest record's value — the exact bytes a
 * follower reads, so no canonical JSON is needed — with an Ed25519 private key (RFC 8032, via
 * node:crypto), and sends the signature in two headers of the manifest record:
 * `inflow-signature` (base64 of the 64-byte signature) and `inflow-signing-key` (the key id).
 * The manifest names every file with its size and sha256, the model, the version, the publish id
 * and the config, so a verified signature covers every byte that will be installed: a chunk
 * changed afterwards fails the file's sha256, a manifest changed afterwards fails the signature.
 *
 * Headers rather than a manifest field: followers of format 1 (strict schema) keep reading signed
 * manifests, and what is signed is not the thing that carries the signature.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { InflowError } from '../errors.ts';
import type { KafkaHeader } from '../kafka/types.ts';
import { Header, headerText, RejectReason } from './delivery-format.ts';

/** A public key a follower trusts, with its id. */
export interface TrustedKey {
  /** First 16 hex digits of the sha256 of the key's SubjectPublicKeyInfo (DER). */
  readonly id: string;
  readonly key: KeyObject;
  /** Where it was read from, for messages. */
  readonly source: string;
}

/** A private signing key, with the id of its public half. */
export interface SigningKey {
  readonly id: string;
  readonly key: KeyObject;
}

/** The key id of a public key: 16 hex digits of sha256(SPKI DER). */
export function keyId(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex')
    .slice(0, 16);
}

/** A new Ed25519 key pair as PEM text (PKCS#8 private, SPKI public), like `openssl genpkey -algorithm ed25519`. */
export function generateSigningKeyPair(): { privateKeyPem: string; publicKeyPem: string; id: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    id: keyId(publicKey),
  };
}

async function readKeyFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new InflowError('INVALID_CONFIG', `${what} ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
}

function requireEd25519(key: KeyObject, path: string, what: string): void {
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new InflowError(
      'INVALID_CONFIG',
      `${what} ${path}: an ${key.asymmetricKeyType ?? 'unknown'} key; expected an Ed25519 key (make one with "inflow models keygen" or "openssl genpkey -algorithm ed25519")`,
    );
  }
}

/** Parses an Ed25519 private key (PEM). @throws InflowError INVALID_CONFIG naming `source`. */
export function parseSigningKey(pem: string, source: string): SigningKey {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (error) {
    throw new InflowError('INVALID_CONFIG', `signing key ${source}: not a PEM private key (${(error as Error).message})`);
  }
  requireEd25519(key, source, 'signing key');
  return { id: keyId(createPublicKey(key)), key };
}

/** Parses an Ed25519 public key (PEM; a private key file is refused, so one is never copied to followers by mistake). */
export function parseTrustedKey(pem: string, source: string): TrustedKey {
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    throw new InflowError(
      'INVALID_CONFIG',
      `trusted key ${source}: this is a private key; give followers the public key only (openssl pkey -in ${source} -pubout)`,
    );
  }
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (error) {
    throw new InflowError('INVALID_CONFIG', `trusted key ${source}: not a PEM public key (${(error as Error).message})`);
  }
  requireEd25519(key, source, 'trusted key');
  return { id: keyId(key), key, source };
}

/** Reads a private key file for `inflow models publish --sign-key`. */
export async function loadSigningKey(path: string): Promise<SigningKey> {
  return parseSigningKey(await readKeyFile(path, 'signing key'), path);
}

/** Reads the trusted public key files of a follower. */
export async function loadTrustedKeys(paths: readonly string[]): Promise<TrustedKey[]> {
  return Promise.all(paths.map(async (p) => parseTrustedKey(await readKeyFile(p, 'trusted key'), p)));
}

/** The headers that sign `bytes` (a manifest or control value, or {@link tombstoneBytes}). */
export function signatureHeaders(bytes: Buffer, key: SigningKey): KafkaHeader[] {
  const signature = sign(null, bytes, key.key);
  return [
    [Header.SIGNATURE, Buffer.from(signature.toString('base64'))],
    [Header.SIGNING_KEY, Buffer.from(key.id)],
  ];
}

/** The signature a manifest record carries, if any (not verified). */
export function readSignature(headers: readonly KafkaHeader[]): { keyId: string; signature: string } | undefined {
  const signature = headerText(headers, Header.SIGNATURE);
  if (signature === undefined) return undefined;
  return { keyId: headerText(headers, Header.SIGNING_KEY) ?? '', signature };
}

/** Why a manifest is refused: a closed code (the metric's `reason` label) and a sentence. */
export interface Refusal {
  code: RejectReason;
  reason: string;
}

/**
 * What a tombstone's signature covers: its key, so a signed deletion of one version (or one
 * model's control) cannot be moved to another. Tombstones have no value to sign.
 */
export function tombstoneBytes(key: Buffer | null): Buffer {
  return Buffer.concat([Buffer.from('inflow-tombstone\n'), key ?? Buffer.alloc(0)]);
}

/** The bytes a models-topic record's signature covers: its value, or for a tombstone its key. */
export function signedBytes(key: Buffer | null, value: Buffer | null): Buffer {
  return value ?? tombstoneBytes(key);
}

/**
 * Checks a manifest record's signature against the trusted keys. With no trusted keys every
 * manifest passes (signed or not: there is nothing to check it with). With keys, an unsigned
 * manifest, one signed by another key and one whose signature does not verify are refused.
 * Returns the id of the key that verified it, or the refusal.
 */
export function verifyManifest(
  manifestValue: Buffer,
  headers: readonly KafkaHeader[],
  trusted: readonly TrustedKey[],
): { keyId: string | undefined } | Refusal {
  return verifySigned(manifestValue, headers, trusted, 'the version', 'installs only versions signed', 'the manifest');
}

/**
 * {@link verifyManifest} for any signed record: a control record (labels/routing) or a tombstone
 * (`bytes` = {@link tombstoneBytes}); `what` names it in the reason.
 */
export function verifySigned(
  bytes: Buffer,
  headers: readonly KafkaHeader[],
  trusted: readonly TrustedKey[],
  what: string,
  policy = 'applies only records signed',
  part = what,
): { keyId: string | undefined } | Refusal {
  const found = readSignature(headers);
  if (trusted.length === 0) return { keyId: undefined };
  const ids = trusted.map((k) => k.id).join(', ');
  if (!found) {
    return {
      code: RejectReason.UNSIGNED,
      reason: `${what} is not signed, and this follower ${policy} by a trusted key (${ids}); publish it with --sign-key`,
    };
  }
  const key = trusted.find((k) => k.id === found.keyId);
  if (!key) {
    return {
      code: RejectReason.UNTRUSTED_KEY,
      reason: `signed by key ${found.keyId.slice(0, 64) || '(no id)'}, which is not one of the trusted keys (${ids})`,
    };
  }
  const signature = Buffer.from(found.signature, 'base64');
  // Ed25519 signatures are 64 bytes (RFC 8032 §5.1.6); anything else cannot verify.
  if (signature.length !== 64 || !verify(null, bytes, key.key, signature)) {
    return {
      code: RejectReason.BAD_SIGNATURE,
      reason: `${part}'s signature does not verify with trusted key ${key.id} (${key.source}): ${part} was changed after signing, or the signature is not its own`,
    };
  }
  return { keyId: key.id };
}
