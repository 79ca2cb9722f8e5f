/**
 * EncryptedAssertion -> plaintext Assertion XML, with the SP's private key (xml-encryption).
 *
 *   decryptAssertion(encryptedAssertion: Element, spPrivateKey: string | undefined, maxBytes: number): string
 *       synchronous (xml-encryption calls back synchronously); throws decryption_failed. The result
 *       is untrusted XML: the caller parses it strictly and verifies its signature (or relies on the
 *       Response signature, which covered the ciphertext).
 */
import type { Element } from '@xmldom/xmldom';
import { XMLSerializer } from '@xmldom/xmldom';
import xmlenc from 'xml-encryption';
import { UpstreamError } from '../identity.js';
import { NS, allElements, childElements } from './xml.js';

/**
 * A real EncryptedAssertion holds about a dozen elements (EncryptedData, EncryptionMethod, KeyInfo,
 * EncryptedKey, CipherData, CipherValue, ...). xml-encryption searches its input with some ten `//`
 * XPath queries, each a walk of every node, before any key or signature is looked at: 9,500 empty
 * elements inside one (no text, within every pre-scan) cost an anonymous POST to any ACS 0.3-0.9 s
 * of the event loop (attacker review).
 */
const MAX_ENCRYPTED_ASSERTION_ELEMENTS = 64;

export function decryptAssertion(encryptedAssertion: Element, spPrivateKey: string | undefined, maxBytes: number): string {
  const failed = (m: string) => new UpstreamError('decryption_failed', m);
  if (!spPrivateKey) throw failed('the assertion is encrypted but no SP decryption key is configured');
  const data = childElements(encryptedAssertion, NS.xenc, 'EncryptedData');
  if (data.length !== 1) throw failed('EncryptedAssertion must hold exactly one EncryptedData');
  if (allElements(encryptedAssertion).length > MAX_ENCRYPTED_ASSERTION_ELEMENTS) throw failed(`EncryptedAssertion holds more than ${MAX_ENCRYPTED_ASSERTION_ELEMENTS} elements`);
  // Only the EncryptedAssertion subtree is handed over (xml-encryption searches its input with //).
  const xml = new XMLSerializer().serializeToString(encryptedAssertion);
  let result: string | undefined;
  let error: unknown;
  xmlenc.decrypt(
    xml,
    // RSA PKCS#1 v1.5 key transport and 3DES are refused (padding-oracle and weak-cipher attacks).
    { key: spPrivateKey, disallowDecryptionWithInsecureAlgorithm: true, warnInsecureAlgorithm: false },
    (err, out) => {
      error = err;
      result = out;
    },
  );
  if (error || typeof result !== 'string') throw failed('the assertion could not be decrypted with the SP key');
  if (Buffer.byteLength(result, 'utf8') > maxBytes) throw new UpstreamError('too_large', 'decrypted assertion is too large');
  return result;
}
