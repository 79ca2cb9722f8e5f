/** DOM surgery on signed responses, for building attacks in tests. */
import { DOMParser, XMLSerializer, type Document, type Element } from '@xmldom/xmldom';

export const SAMLP = 'urn:oasis:names:tc:SAML:2.0:protocol';
export const SAML = 'urn:oasis:names:tc:SAML:2.0:assertion';
export const DS = 'http://www.w3.org/2000/09/xmldsig#';

export function mutate(xml: string, fn: (doc: Document, root: Element) => void): string {
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  fn(doc, doc.documentElement!);
  return new XMLSerializer().serializeToString(doc);
}

export const first = (root: Element | Document, ns: string, local: string): Element => {
  const el = root.getElementsByTagNameNS(ns, local)[0];
  if (!el) throw new Error(`no ${local}`);
  return el;
};

export const childOf = (parent: Element, ns: string, local: string): Element | undefined => {
  for (let n = parent.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1 && (n as Element).namespaceURI === ns && (n as Element).localName === local) return n as Element;
  }
  return undefined;
};

/** Replaces the text of the (first) NameID under `el`. */
export function setNameId(el: Element, value: string): void {
  const nameId = first(el, SAML, 'NameID');
  while (nameId.firstChild) nameId.removeChild(nameId.firstChild);
  nameId.appendChild(nameId.ownerDocument!.createTextNode(value));
}
