/** The SP certificate (signing or encryption) a SAML connection's metadata at `base` publishes, as PEM. */
export async function spCertificate(base: string, connectionId: string, use: 'signing' | 'encryption'): Promise<string> {
  const metadata = await (await fetch(`${base}/saml/${connectionId}/metadata`)).text();
  const der = new RegExp(`use="${use}"[\\s\\S]*?<(?:ds:)?X509Certificate>([^<]+)<`).exec(metadata)![1]!.replace(/\s+/g, '');
  return `-----BEGIN CERTIFICATE-----\n${der.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
}
