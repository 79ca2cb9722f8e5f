/**
 * XML signature wrapping attacks XSW1–XSW8 (Somorovsky et al., "On Breaking SAML: Be Whoever You
 * Want to Be", USENIX Sec 2012, as catalogued by SAML Raider), as DOM surgery on signed responses.
 * Shared by the attack suite (each refused with its reason) and the verifier differential test.
 */
import type { Document, Element } from '@xmldom/xmldom';
import { DS, SAML, SAMLP, childOf, first, setNameId } from './dom.js';

export type XswCase = [name: string, signed: string, attack: (doc: Document, root: Element) => void, code: string];

export const assertionOf = (root: Element) => childOf(root, SAML, 'Assertion')!;
export const withoutSignature = (el: Element): Element => {
  const copy = el.cloneNode(true) as Element;
  const sig = childOf(copy, DS, 'Signature');
  if (sig) copy.removeChild(sig);
  return copy;
};
export const evilCopy = (orig: Element, doc: Document, keepSignature: boolean, id = '_evil-assertion'): Element => {
  const evil = keepSignature ? (orig.cloneNode(true) as Element) : withoutSignature(orig);
  evil.setAttribute('ID', id);
  setNameId(evil, 'admin@acme.test');
  void doc;
  return evil;
};


/** The eight placements, applied to a response with a signed Response and one with a signed Assertion. */
export function xswCases(signedResponse: string, signedAssertion: string): XswCase[] {
  return [
    [
      'XSW1: evil Response root, signed original Response copied into the Signature',
      signedResponse,
      (_doc, root) => {
        const sig = childOf(root, DS, 'Signature')!;
        sig.appendChild(withoutSignature(root));
        root.setAttribute('ID', '_evil-response');
        const a = assertionOf(root);
        a.setAttribute('ID', '_evil-assertion');
        setNameId(a, 'admin@acme.test');
      },
      'signature_invalid',
    ],
    [
      'XSW2: evil Response root, signed original Response as a sibling before the Signature',
      signedResponse,
      (_doc, root) => {
        const sig = childOf(root, DS, 'Signature')!;
        root.insertBefore(withoutSignature(root), sig);
        root.setAttribute('ID', '_evil-response');
        const a = assertionOf(root);
        a.setAttribute('ID', '_evil-assertion');
        setNameId(a, 'admin@acme.test');
      },
      'signature_invalid',
    ],
    [
      'XSW3: unsigned evil Assertion inserted before the signed original',
      signedAssertion,
      (doc, root) => {
        const orig = assertionOf(root);
        root.insertBefore(evilCopy(orig, doc, false), orig);
      },
      'multiple_assertions',
    ],
    [
      'XSW4: evil Assertion wraps the signed original',
      signedAssertion,
      (doc, root) => {
        const orig = assertionOf(root);
        const evil = evilCopy(orig, doc, false);
        root.replaceChild(evil, orig);
        evil.appendChild(orig);
      },
      'signature_invalid',
    ],
    [
      'XSW5: signature moved into the evil Assertion, original appended to the Response',
      signedAssertion,
      (doc, root) => {
        const orig = assertionOf(root);
        const evil = evilCopy(orig, doc, true);
        root.replaceChild(evil, orig);
        root.appendChild(withoutSignature(orig));
      },
      'signature_invalid',
    ],
    [
      'XSW6: signature in the evil Assertion, original inside that Signature',
      signedAssertion,
      (doc, root) => {
        const orig = assertionOf(root);
        const evil = evilCopy(orig, doc, true);
        childOf(evil, DS, 'Signature')!.appendChild(withoutSignature(orig));
        root.replaceChild(evil, orig);
      },
      'signature_invalid',
    ],
    [
      'XSW7: signed original hidden in samlp:Extensions, evil Assertion in its place',
      signedAssertion,
      (doc, root) => {
        const orig = assertionOf(root);
        const evil = evilCopy(orig, doc, false);
        const ext = doc.createElementNS(SAMLP, 'samlp:Extensions');
        root.replaceChild(evil, orig);
        ext.appendChild(orig);
        root.insertBefore(ext, first(root, SAMLP, 'Status'));
      },
      'signature_invalid',
    ],
    [
      'XSW8: signature in the evil Assertion, original inside a ds:Object of it',
      signedAssertion,
      (doc, root) => {
        const orig = assertionOf(root);
        const evil = evilCopy(orig, doc, true);
        const object = doc.createElementNS(DS, 'ds:Object');
        object.appendChild(withoutSignature(orig));
        childOf(evil, DS, 'Signature')!.appendChild(object);
        root.replaceChild(evil, orig);
      },
      'signature_invalid',
    ],
  ];
}

